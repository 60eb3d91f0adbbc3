"""``powerx-agent review list | approve | reject``: the manual review queue from the command line.

approve / reject have exactly the effect of ``POST /internal/agent/callbacks`` with a review id
(see :func:`powerx_agent.ops.review.decide_review`), audited with ``--by`` as the actor.
"""

from __future__ import annotations

import json
import time

import typer
from rich.console import Console

from powerx_agent.cli._common import (
    ByAliasOpt,
    ByOpt,
    FormatOpt,
    ListFormatOpt,
    Output,
    QueryOpt,
    actor,
    fail,
    run_logic,
    session,
    table,
    with_timestamps,
)

app = typer.Typer(help="Open manual reviews: list, approve, reject.", no_args_is_help=True)


@app.command("list")
def list_cmd(queue: str = typer.Option(None, "--queue", help="only this queue"),
             fmt: str = ListFormatOpt, query: str = QueryOpt) -> None:
    """Open reviews, oldest first (never shows task tokens)."""
    from powerx_agent.ops.review import list_reviews

    output = Output(fmt, query, ("text", "json", "jsonl"))
    with session() as (deps, _metrics):
        reviews = list_reviews(deps, queue)
    now = time.time()
    ages = [now - float(r.get("created_at") or now) for r in reviews]
    reviews = with_timestamps(reviews)

    def text(console: Console) -> None:
        console.print(table("review", "queue", "reason", "tenant", "workflow", "node", "waits", "created", "age",
                            ids=("review", "workflow"), rows=[
                                (r["review_id"], r.get("queue"), r.get("reason"), r.get("tenant_id"),
                                 r.get("workflow_id"), r.get("node_id") or "—",
                                 "yes" if r["waits_for_decision"] else "no", r.get("created_at"), f"{age / 60:.0f} min")
                                for r, age in zip(reviews, ages, strict=True)]))
        console.print(f"{len(reviews)} open review(s)")

    output.emit(reviews, text)


def _decide(review_id: str, outcome: str, by: str, reason: str | None, output: Output) -> None:
    from powerx_agent.ops.review import decide_review

    with session() as (deps, metrics):
        result = run_logic(lambda: decide_review(deps, metrics, review_id, outcome, by, reason))
    if result.status != 200:
        why = (f"already closed ({result.body['first_outcome']})" if "first_outcome" in result.body
               else result.body.get("message") or json.dumps(result.body))
        if not output.text:
            output.emit({"status": result.status, **result.body})
        raise fail(f"{result.body.get('code')}: {why}")
    output.emit({"status": result.status, **result.body},
                lambda console: console.print(f"review {review_id} {outcome} by {by}"))


@app.command("approve")
def approve_cmd(review_id: str = typer.Argument(...), by: str = ByOpt, by_alias: str = ByAliasOpt,
                reason: str = typer.Option(None, "--reason"), fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Approve: a waiting manual review node resumes."""
    output = Output(fmt, query)
    _decide(review_id, "approved", actor(by, by_alias), reason, output)


@app.command("reject")
def reject_cmd(review_id: str = typer.Argument(...), by: str = ByOpt, by_alias: str = ByAliasOpt,
               reason: str = typer.Option(..., "--reason", help="why (required)"),
               fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Reject: a waiting manual review node fails and the workflow ends FAILED (audited)."""
    output = Output(fmt, query)
    _decide(review_id, "rejected", actor(by, by_alias), reason, output)
