"""``powerx-agent smoke [--tenant T]``: the first command after ``cdk deploy`` (docs/deploy.md).

Sends a C-1- and a C-2-shaped event for a test tenant and checks their outcomes, one PASS/FAIL line
per check; exit 0 only when every check passed. The target is the root option, or ``--stack NAME``
given here: ``powerx-agent --stack PowerXAgent smoke`` and ``powerx-agent smoke --stack PowerXAgent``
are the same. ``--endpoint-url URL`` runs it against the embedded runtime.
"""

from __future__ import annotations

import typer
from rich.console import Console

from powerx_agent.cli._common import FormatOpt, Output, QueryOpt

console = Console(highlight=False, soft_wrap=True)

DEFAULT_TENANT = "smoke"


def register(app: typer.Typer) -> None:
    @app.command("smoke")
    def smoke_cmd(tenant: str = typer.Option(DEFAULT_TENANT, "--tenant",
                                             help="registered test tenant the events are sent for"),
                  stack: str = typer.Option(None, "--stack", help="deployed stack (same as the root option)"),
                  timeout: float = typer.Option(120.0, "--timeout", min=5, max=3600,
                                                help="seconds to wait for each outcome"),
                  fmt: str = FormatOpt, query: str = QueryOpt) -> None:
        """Send C-1 and C-2 for a test tenant and check every outcome: PASS/FAIL per line."""
        from powerx_agent.cli import connect as target
        from powerx_agent.ops.smoke import Smoke

        output = Output(fmt, query)
        if stack:
            target.set_target(target.Target(**{**vars(target.current_target()), "stack": stack}))
        deps = target.connect()

        def show(check) -> None:
            if not output.text:
                return
            colour = "green" if check.ok else "red"
            console.print(f"[{colour}]{'PASS' if check.ok else 'FAIL'}[/{colour}]  {check.scenario:<5} {check.what}"
                          + (f" [dim]({check.detail})[/dim]" if check.detail and not check.ok else ""))

        smoke = Smoke(deps, tenant, timeout=timeout, report=show)
        ok = smoke.run()
        passed = sum(c.ok for c in smoke.checks)
        if output.text:
            console.print(f"smoke {smoke.run_id}: {passed}/{len(smoke.checks)} checks passed")
        else:
            output.emit({"run_id": smoke.run_id, "passed": ok, "checks": [
                {"scenario": c.scenario, "what": c.what, "ok": c.ok, "detail": c.detail} for c in smoke.checks]})
        raise typer.Exit(0 if ok else 1)
