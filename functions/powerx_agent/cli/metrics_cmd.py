"""Top-level operator command ``powerx-agent metrics``: the spec's figures from the audit trail,
cross-checked with the EMF totals.

``register(app)`` adds it to the root typer app (called from ``cli/main.py``).
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from powerx_agent.cli._common import FormatOpt, Output, QueryOpt, styled


def metrics_cmd(emf_log_group: str = typer.Option(None, "--emf-log-group",
                                                  help="EMF log group to cross-check (default: METRICS_LOG_GROUP)"),
                fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """The spec's metrics computed from the audit trail, cross-checked with the EMF totals.

    Exit 1 when an EMF total disagrees with the audit trail."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.metrics import compute

    output = Output(fmt, query)
    figures = compute(connect(), emf_log_group)

    def text(console: Console) -> None:
        table = Table(title="Agent automation (from the audit trail)")
        for column in ("figure", "metric", "audit trail", "EMF"):
            table.add_column(column)
        emf = figures.emf or {}
        emf_by_metric: dict[str, Any] = {}
        if figures.emf is not None:
            from powerx_agent import spec
            from powerx_agent.ops.metrics import EMF_COUNTS

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
            console.print(styled("MISMATCH", "red") + styled(f" {m['metric']}: audit trail {m['audit']} vs EMF "
                                                             f"{m['emf']:g}"))

    output.emit(figures.to_dict(), text)
    if figures.mismatches:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("metrics")(metrics_cmd)
