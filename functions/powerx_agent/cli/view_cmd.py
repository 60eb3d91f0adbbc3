"""``powerx-agent workflow view ID --out view.html``: the orchestration view of one workflow.

``register(workflow_app)`` adds the ``view`` command to the ``workflow`` sub-app.
"""

from __future__ import annotations

from pathlib import Path

import typer

from powerx_agent.cli._common import FormatOpt, Output, QueryOpt, run_logic


def view_cmd(workflow_id: str = typer.Argument(..., help="workflow id (wf-...)"),
             out: Path = typer.Option(Path("view.html"), "--out", help="where to write the HTML page"),
             fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """One self-contained HTML page: graph by status, nodes, decision, event (redacted), timeline."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.view import render_view

    output = Output(fmt, query)
    html = run_logic(lambda: render_view(connect(), workflow_id))
    out.write_text(html, encoding="utf-8")
    size = len(html.encode())
    output.emit({"workflow_id": workflow_id, "out": str(out), "bytes": size},
                lambda console: console.print(f"wrote {out} ({size:,} bytes)"))


def register(workflow_app: typer.Typer) -> None:
    workflow_app.command("view")(view_cmd)
