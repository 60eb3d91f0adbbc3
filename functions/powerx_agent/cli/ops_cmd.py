"""Top-level operator commands ``powerx-agent repair`` and ``powerx-agent metrics``.

``register(app)`` adds them to the root typer app (called from ``cli/main.py``).
"""

from __future__ import annotations

import getpass
import json
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

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
    from powerx_agent.audit.repair import repair
    from powerx_agent.cli.connect import connect

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


def metrics_cmd(fmt: str = typer.Option("text", "--format", help="text | json"),
                emf_log_group: str = typer.Option(None, "--emf-log-group",
                                                  help="EMF log group to cross-check (default: METRICS_LOG_GROUP)"),
                ) -> None:
    """The spec's metrics computed from the audit trail, cross-checked with the EMF totals.

    Exit 1 when an EMF total disagrees with the audit trail."""
    from powerx_agent.audit.figures import compute
    from powerx_agent.cli.connect import connect

    _check_format(fmt)
    figures = compute(connect(), emf_log_group)
    if fmt == "json":
        typer.echo(json.dumps(figures.to_dict(), indent=2))
    else:
        table = Table(title="Agent automation (from the audit trail)")
        for column in ("figure", "metric", "audit trail", "EMF"):
            table.add_column(column)
        emf = figures.emf or {}
        emf_by_metric: dict[str, Any] = {}
        if figures.emf is not None:
            from powerx_agent import spec
            from powerx_agent.audit.figures import EMF_COUNTS

            emf_by_metric = {spec.METRICS[k]: emf.get(k) for k in EMF_COUNTS}
        for label, metric, value in figures.rows():
            shown = "-" if value is None else (f"{value:.2%}" if "rate" in label and isinstance(value, float)
                                               else str(value))
            emf_value = emf_by_metric.get(metric)
            table.add_row(label, metric, shown, "" if emf_value is None else f"{emf_value:g}")
        console.print(table)
        if figures.backlog_items is not None:
            console.print(f"open review items in agent_workflows: {figures.backlog_items}")
        if figures.emf is None:
            console.print("EMF cross-check skipped: the metrics log group does not exist here")
        for m in figures.mismatches:
            console.print(f"[red]MISMATCH[/red] {m['metric']}: audit trail {m['audit']} vs EMF {m['emf']:g}")
    if figures.mismatches:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("repair")(repair_cmd)
    app.command("metrics")(metrics_cmd)
