"""``powerx-agent review list | approve | reject``: the manual review queue from the command line.

approve / reject have exactly the effect of ``POST /internal/agent/callbacks`` with a review id
(see :func:`powerx_agent.ops.review.decide_review`), audited with ``--by`` as the actor.
"""

from __future__ import annotations

import json
import time

import typer
from rich.console import Console
from rich.table import Table

from powerx_agent.cli.workflow_cmd import check_format, print_json, run_logic, session

app = typer.Typer(help="Open manual reviews: list, approve, reject.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@app.command("list")
def list_cmd(queue: str = typer.Option(None, "--queue", help="only this queue"),
             fmt: str = typer.Option("text", "--format", help="text | json")) -> None:
    """Open reviews, oldest first (never shows task tokens)."""
    from powerx_agent.ops.review import list_reviews

    check_format(fmt)
    with session() as (deps, _metrics):
        reviews = list_reviews(deps, queue)
    if fmt == "json":
        print_json(reviews)
        return
    table = Table(show_edge=False)
    for column in ("review", "queue", "reason", "tenant", "workflow", "node", "waits", "age"):
        table.add_column(column)
    now = time.time()
    for review in reviews:
        age = now - float(review.get("created_at") or now)
        table.add_row(review["review_id"], str(review.get("queue")), str(review.get("reason")),
                      str(review.get("tenant_id")), str(review.get("workflow_id")), str(review.get("node_id") or "—"),
                      "yes" if review["waits_for_decision"] else "no", f"{age / 60:.0f} min")
    console.print(table)
    console.print(f"{len(reviews)} open review(s)")


def _decide(review_id: str, outcome: str, by: str, reason: str | None, fmt: str) -> None:
    from powerx_agent.ops.review import decide_review

    check_format(fmt)
    with session() as (deps, metrics):
        result = run_logic(lambda: decide_review(deps, metrics, review_id, outcome, by, reason))
    if fmt == "json":
        print_json({"status": result.status, **result.body})
    elif result.status == 200:
        console.print(f"review {review_id} {outcome} by {by}")
    else:
        err.print(f"[red]{result.body.get('code')}[/red]: "
                  + (f"already closed ({result.body['first_outcome']})" if "first_outcome" in result.body
                     else json.dumps(result.body)))
    if result.status != 200:
        raise typer.Exit(1)


@app.command("approve")
def approve_cmd(review_id: str = typer.Argument(...), by: str = typer.Option(..., "--by", help="reviewer"),
                reason: str = typer.Option(None, "--reason"),
                fmt: str = typer.Option("text", "--format", help="text | json")) -> None:
    """Approve: a waiting manual review node resumes."""
    _decide(review_id, "approved", by, reason, fmt)


@app.command("reject")
def reject_cmd(review_id: str = typer.Argument(...), by: str = typer.Option(..., "--by", help="reviewer"),
               reason: str = typer.Option(..., "--reason", help="why (required)"),
               fmt: str = typer.Option("text", "--format", help="text | json")) -> None:
    """Reject: a waiting manual review node fails and the workflow ends FAILED (audited)."""
    _decide(review_id, "rejected", by, reason, fmt)
