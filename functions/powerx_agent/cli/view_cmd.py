"""``powerx-agent workflow view ID --out view.html``: the orchestration view of one workflow.

``register(workflow_app)`` adds the ``view`` command to the ``workflow`` sub-app.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

console = Console(highlight=False, soft_wrap=True)


def view_cmd(workflow_id: str = typer.Argument(..., help="workflow id (wf-...)"),
             out: Path = typer.Option(Path("view.html"), "--out", help="where to write the HTML page")) -> None:
    """One self-contained HTML page: graph by status, nodes, decision, event (redacted), timeline."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.errors import AgentError
    from powerx_agent.ops.view import render_view

    try:
        html = render_view(connect(), workflow_id)
    except AgentError as exc:
        console.print(f"[red]error[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    out.write_text(html, encoding="utf-8")
    console.print(f"wrote {out} ({len(html.encode()):,} bytes)")


def register(workflow_app: typer.Typer) -> None:
    workflow_app.command("view")(view_cmd)
