"""``powerx-agent workflow list | show | retry | fill | stop``: manual takeover of workflows.

The logic is in :mod:`powerx_agent.ops.workflow`; see docs/operations-takeover.md.
(``workflow view`` lives in its own module.)
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from powerx_agent.cli._common import (
    ByAliasOpt,
    ByOpt,
    FormatOpt,
    ListFormatOpt,
    Output,
    QueryOpt,
    actor,
    check_statuses,
    check_window,
    run_logic,
    session,
    status_text,
    styled,
    table,
    with_timestamps,
)
from powerx_agent.status import WorkflowStatus

app = typer.Typer(help="Inspect workflows and take them over by hand: retry, fill, stop.", no_args_is_help=True)


def _ms(value: Any) -> str:
    return f"{float(value):.0f} ms" if isinstance(value, int | float) else "—"


@app.command("list")
def list_cmd(tenant: str = typer.Option(None, "--tenant", help="only this tenant"),
             status: str = typer.Option(None, "--status", help="PENDING | RUNNING | SUCCEEDED | FAILED | "
                                                                "ESCALATED | STOPPED",
                                        callback=check_statuses(tuple(WorkflowStatus))),
             strategy: str = typer.Option(None, "--strategy", help="only workflows of this strategy id"),
             since: str = typer.Option(None, "--since", help="created since an ISO time or 15m/2h/3d ago",
                                       callback=check_window),
             until: str = typer.Option(None, "--until", help="created until an ISO time or 15m/2h/3d ago",
                                       callback=check_window),
             event: str = typer.Option(None, "--event", help="started by this event (event id or idempotency key)"),
             limit: int = typer.Option(100, "--limit", min=1, max=10_000),
             fmt: str = ListFormatOpt, query: str = QueryOpt) -> None:
    """List workflows, newest first."""
    from powerx_agent.ops.workflow import list_workflows

    output = Output(fmt, query, ("text", "json", "jsonl"))
    with session() as (deps, _metrics):
        items = run_logic(lambda: list_workflows(deps, tenant, status, limit, strategy=strategy, since=since,
                                                 until=until, event=event))
    rows = with_timestamps([{k: i.get(k) for k in ("workflow_id", "tenant_id", "strategy_id", "strategy_version",
                                                   "status", "generation", "escalation_reason", "event_id",
                                                   "created_at")}
                            for i in items])
    for row in rows:
        row["generation"] = int(row.get("generation") or 1)

    def text(console: Console) -> None:
        console.print(table("workflow", "tenant", "strategy", "status", "gen", "created", "escalation",
                            ids=("workflow",), rows=[
                                (r["workflow_id"], r["tenant_id"], f"{r['strategy_id']} v{r['strategy_version']}",
                                 status_text(r["status"]), r["generation"], r["created_at"],
                                 r.get("escalation_reason") or "") for r in rows]))
        console.print(f"{len(rows)} workflow(s)")

    output.emit(rows, text)


@app.command("show")
def show_cmd(workflow_id: str = typer.Argument(..., help="workflow id (wf-...)"), fmt: str = FormatOpt,
             query: str = QueryOpt) -> None:
    """META, nodes (attempts, duration, error), execution status and decision summary."""
    from powerx_agent.ops.workflow import show_workflow

    output = Output(fmt, query)
    with session() as (deps, _metrics):
        shown = with_timestamps(run_logic(lambda: show_workflow(deps, workflow_id)))

    def text(console: Console) -> None:
        wf, execution, decision = shown["workflow"], shown["execution"], shown["decision"]
        facts = Table.grid(padding=(0, 2))
        facts.add_column(style="bold")
        facts.add_column()
        facts.add_row("workflow", f"{wf['workflow_id']}  tenant={wf.get('tenant_id')}  event={wf.get('event_id')}")
        status = styled("")
        status.append_text(status_text(wf.get("status")))
        status.append(f"  generation {wf.get('generation') or 1}"
                      + (f"  escalation: {wf['escalation_reason']}" if wf.get("escalation_reason") else ""))
        facts.add_row("status", status)
        facts.add_row("decision", f"{decision['strategy_id']} v{decision['version']} (weight {decision['weight']}, "
                                  f"library revision {decision['library_revision']}, "
                                  f"{decision['candidates']} candidate(s))")
        facts.add_row("created", str(wf.get("created_at") or "—"))
        facts.add_row("execution", f"{execution['status']}  {execution['arn']}" if execution else "—")
        if wf.get("failure"):
            facts.add_row("failure", json.dumps(wf["failure"], default=str))
        console.print(facts)
        console.print(table("node", "kind", "status", "attempts", "gen", "duration", "error / note", ids=("node",),
                            title="nodes", rows=[
                                (n["node_id"], n.get("kind") or "—", status_text(n["status"]), n["attempts"],
                                 n["generation"], _ms(n["duration_ms"]),
                                 n["error"] or n["reason"] or (f"filled by {n['filled_by']}" if n["filled_by"] else ""))
                                for n in shown["nodes"]]))
        for review in shown["open_reviews"]:
            console.print(f"open review {review['review_id']} queue={review.get('queue')} reason={review.get('reason')}")

    output.emit(shown, text)


@app.command("retry")
def retry_cmd(workflow_id: str = typer.Argument(...),
              from_node: str = typer.Option(None, "--from", help="re-run this node and every node after it"),
              by: str = ByOpt, by_alias: str = ByAliasOpt, fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Start a new attempt generation: nodes already SUCCEEDED are reused, the rest run again."""
    from powerx_agent.ops.workflow import retry_workflow

    output = Output(fmt, query)
    who = actor(by, by_alias)
    with session() as (deps, metrics):
        result = run_logic(lambda: retry_workflow(deps, metrics, workflow_id, who, from_node))
    output.emit(result, lambda console: console.print(
        f"retrying {workflow_id} as generation {result['generation']}: execution {result['execution_name']}\n"
        f"  run again: {', '.join(result['reset']) or '—'}\n  reused:    {', '.join(result['reuse']) or '—'}"))


@app.command("fill")
def fill_cmd(workflow_id: str = typer.Argument(...), node_id: str = typer.Argument(...),
             output_json: str = typer.Option(..., "--output", help="the node's outcome as a JSON object"),
             by: str = ByOpt, by_alias: str = ByAliasOpt, fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Record an outcome done by hand (resumes a node waiting for a callback or a review)."""
    from powerx_agent.ops.workflow import fill_node

    output = Output(fmt, query)
    who = actor(by, by_alias)
    try:
        value = json.loads(output_json)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--output") from None
    if not isinstance(value, dict):
        raise typer.BadParameter("give a JSON object", param_hint="--output")
    with session() as (deps, metrics):
        result = run_logic(lambda: fill_node(deps, metrics, workflow_id, node_id, value, who))

    def text(console: Console) -> None:
        console.print(f"node {node_id} of {workflow_id}: {result['from_status']} → SUCCEEDED (filled by {who}, "
                      f"{'execution resumed' if result['resumed'] else 'recorded'})")
        if result["next"]:
            console.print(f"next: {result['next']}")

    output.emit(result, text)


@app.command("stop")
def stop_cmd(workflow_id: str = typer.Argument(None, help="workflow id (or --tenant)"),
             tenant: str = typer.Option(None, "--tenant", help="stop every running workflow of this tenant"),
             by: str = ByOpt, by_alias: str = ByAliasOpt,
             reason: str = typer.Option("stopped by operator", "--reason"),
             wait: float = typer.Option(10.0, "--wait", min=0, max=300,
                                        help="seconds to wait for Step Functions to report the execution ended"),
             fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """StopExecution for one workflow, or for every RUNNING workflow of a tenant; reports the execution
    status Step Functions gives afterwards (exit 1 while an execution still runs: run stop again)."""
    from powerx_agent.ops.workflow import stop_tenant, stop_workflow

    output = Output(fmt, query)
    if (workflow_id is None) == (tenant is None):
        raise typer.BadParameter("give a workflow id or --tenant, not both", param_hint="WORKFLOW_ID / --tenant")
    who = actor(by, by_alias)
    with session() as (deps, metrics):
        if workflow_id:
            results = [run_logic(lambda: stop_workflow(deps, metrics, workflow_id, who, reason, wait=wait))]
        else:
            results = run_logic(lambda: stop_tenant(deps, metrics, tenant, who, reason, wait=wait))

    def text(console: Console) -> None:
        for result in results:
            execution = result["execution_status"] or "none"
            console.print(styled(f"stopped {result['workflow_id']}: Step Functions says the execution is ")
                          + status_text(execution)
                          + styled(f"; {len(result['nodes'])} node(s) settled, {len(result['closed_reviews'])} "
                                   "review(s) closed"))
            if result["next"]:
                console.print(styled(f"  next: {result['next']}", "yellow"))
        console.print(f"{len(results)} workflow(s) stopped"
                      + (f", {sum(not r['verified'] for r in results)} execution(s) still running"
                         if any(not r["verified"] for r in results) else ""))

    output.emit(results, text)
    if any(not r["verified"] for r in results):
        raise typer.Exit(1)
