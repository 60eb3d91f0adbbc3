"""Top-level operator command ``powerx-agent repair [--apply]``.

``register(app)`` adds them to the root typer app (called from ``cli/main.py``).
"""

from __future__ import annotations

import typer
from rich.console import Console

from powerx_agent.cli._common import (
    ByAliasOpt,
    ByOpt,
    FormatOpt,
    Output,
    QueryOpt,
    actor,
    check_window,
    styled,
)


def repair_cmd(apply: bool = typer.Option(False, "--apply", help="perform the fixes (default: dry run)"),
               tenant: str = typer.Option(None, "--tenant", help="only this tenant's workflows and chains"),
               since: str = typer.Option(None, "--since", help="only records since an ISO time or 15m/2h/3d",
                                         callback=check_window),
               by: str = ByOpt, by_alias: str = ByAliasOpt, fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Validate agent_workflows against Step Functions and the audit trail; fix with --apply.

    Exit 0 when nothing is wrong (or everything found was fixed), 1 otherwise."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.repair import repair

    output = Output(fmt, query)
    who = actor(by, by_alias)
    try:
        findings = repair(connect(), apply=apply, by=who, tenant=tenant, since=since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None

    def text(console: Console) -> None:
        for finding in findings:
            state = (styled("fixed", "green") if finding.applied else styled("failed", "red") if finding.error
                     else styled("not fixable", "red") if not finding.fixable else styled("would fix", "yellow"))
            console.print(state + styled(f" [{finding.code}] {finding.subject}: {finding.problem}"))
            console.print(f"    fix: {finding.fix}" + (f" (error: {finding.error})" if finding.error else ""))
        fixed = sum(1 for f in findings if f.applied)
        console.print(f"{len(findings)} finding(s); " + (f"{fixed} fixed" if apply else "dry run: nothing changed "
                                                          "(run with --apply)"))

    output.emit({"apply": apply, "findings": [f.to_dict() for f in findings]}, text)
    if any(not f.applied for f in findings):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("repair")(repair_cmd)
