"""Top-level operator command ``powerx-agent repair [--apply]``.

``register(app)`` adds them to the root typer app (called from ``cli/main.py``).
"""

from __future__ import annotations

import getpass
import json

import typer
from rich.console import Console
from rich.markup import escape

console = Console(highlight=False, soft_wrap=True)


def _check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"--format must be text or json, not {fmt!r}", param_hint="--format")


def repair_cmd(apply: bool = typer.Option(False, "--apply", help="perform the fixes (default: dry run)"),
               tenant: str = typer.Option(None, "--tenant", help="only this tenant's workflows and chains"),
               since: str = typer.Option(None, "--since", help="only records since an ISO time or 15m/2h/3d"),
               by: str = typer.Option(None, "--by", help="who runs the repair (audited; default: $USER)"),
               fmt: str = typer.Option("text", "--format", help="text | json")) -> None:
    """Validate agent_workflows against Step Functions and the audit trail; fix with --apply.

    Exit 0 when nothing is wrong (or everything found was fixed), 1 otherwise."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.repair import repair

    _check_format(fmt)
    actor = by or getpass.getuser()
    try:
        findings = repair(connect(), apply=apply, by=actor, tenant=tenant, since=since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    if fmt == "json":
        typer.echo(json.dumps({"apply": apply, "findings": [f.to_dict() for f in findings]}, indent=2))
    else:
        for finding in findings:
            state = ("[green]fixed[/green]" if finding.applied else "[red]failed[/red]" if finding.error
                     else "[red]not fixable[/red]" if not finding.fixable else "[yellow]would fix[/yellow]")
            console.print(f"{state} " + escape(f"[{finding.code}] {finding.subject}: {finding.problem}"))
            console.print(escape(f"    fix: {finding.fix}" + (f" (error: {finding.error})" if finding.error else "")))
        fixed = sum(1 for f in findings if f.applied)
        console.print(f"{len(findings)} finding(s); " + (f"{fixed} fixed" if apply else "dry run: nothing changed "
                                                          "(run with --apply)"))
    unresolved = [f for f in findings if not f.applied]
    if unresolved:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("repair")(repair_cmd)
