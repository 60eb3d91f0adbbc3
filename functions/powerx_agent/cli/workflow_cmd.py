"""``powerx-agent workflow list | show | retry | fill | stop``: manual takeover of workflows.

The logic is in :mod:`powerx_agent.ops.workflow`; see docs/operations-takeover.md.
(``workflow view`` lives in its own module.)
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from powerx_agent.cli.connect import connect
from powerx_agent.settings import Env

app = typer.Typer(help="Inspect workflows and take them over by hand: retry, fill, stop.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

FormatOpt = typer.Option("text", "--format", help="text | json")


def default_actor() -> str:
    return os.environ.get(Env.POWERX_ACTOR) or os.environ.get("USER") or "operator"


def check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"--format must be text or json, not {fmt!r}", param_hint="--format")


@contextlib.contextmanager
def session() -> Iterator[tuple[Any, Any]]:
    """Deps and a metrics recorder for one command; metrics are flushed at the end. Where the
    sink is stdout (the Lambda setting), the EMF lines go to stderr so stdout stays readable."""
    deps = connect()
    metrics = deps.metrics()
    try:
        yield deps, metrics
    finally:
        if deps.settings.metrics_sink == "logs":
            metrics.flush()
        else:
            with contextlib.redirect_stdout(sys.stderr):
                metrics.flush()


def run_logic(fn: Callable[[], Any]) -> Any:
    """Turn the takeover's refusals into a message and exit code 1 (nothing was changed)."""
    from powerx_agent.ops.takeover import TakeoverError

    try:
        return fn()
    except TakeoverError as exc:
        err.print(f"[red]{exc.code}[/red]: {exc.message}")
        raise typer.Exit(1) from None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _ms(value: Any) -> str:
    return f"{float(value):.0f} ms" if isinstance(value, int | float) else "—"


_STYLE = {"SUCCEEDED": "green", "FAILED": "red", "ESCALATED": "yellow", "STOPPED": "magenta", "SKIPPED": "dim",
          "RUNNING": "cyan"}


def _styled(status: str | None) -> str:
    style = _STYLE.get(status or "")
    return f"[{style}]{status}[/]" if style else str(status)


@app.command("list")
def list_cmd(tenant: str = typer.Option(None, "--tenant", help="only this tenant"),
             status: str = typer.Option(None, "--status", help="PENDING | RUNNING | SUCCEEDED | FAILED | "
                                                                "ESCALATED | STOPPED"),
             limit: int = typer.Option(100, "--limit", min=1, max=10_000),
             fmt: str = FormatOpt) -> None:
    """List workflows, newest first."""
    from powerx_agent.ops.workflow import list_workflows

    check_format(fmt)
    with session() as (deps, _metrics):
        items = list_workflows(deps, tenant, status, limit)
    rows = [{k: i.get(k) for k in ("workflow_id", "tenant_id", "strategy_id", "strategy_version", "status",
                                   "generation", "escalation_reason", "created_at")} for i in items]
    if fmt == "json":
        print_json(rows)
        return
    table = Table(show_edge=False)
    for column in ("workflow", "tenant", "strategy", "status", "gen", "escalation"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["workflow_id"], row["tenant_id"], f"{row['strategy_id']} v{row['strategy_version']}",
                      _styled(row["status"]), str(row.get("generation") or 1), row.get("escalation_reason") or "")
    console.print(table)
    console.print(f"{len(rows)} workflow(s)")


@app.command("show")
def show_cmd(workflow_id: str = typer.Argument(..., help="workflow id (wf-...)"), fmt: str = FormatOpt) -> None:
    """META, nodes (attempts, duration, error), execution status and decision summary."""
    from powerx_agent.ops.workflow import show_workflow

    check_format(fmt)
    with session() as (deps, _metrics):
        shown = run_logic(lambda: show_workflow(deps, workflow_id))
    if fmt == "json":
        print_json(shown)
        return
    wf, execution, decision = shown["workflow"], shown["execution"], shown["decision"]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("workflow", f"{wf['workflow_id']}  tenant={wf.get('tenant_id')}  event={wf.get('event_id')}")
    facts.add_row("status", f"{_styled(wf.get('status'))}  generation {wf.get('generation') or 1}"
                  + (f"  escalation: {wf['escalation_reason']}" if wf.get("escalation_reason") else ""))
    facts.add_row("decision", f"{decision['strategy_id']} v{decision['version']} (weight {decision['weight']}, "
                              f"library revision {decision['library_revision']}, "
                              f"{decision['candidates']} candidate(s))")
    facts.add_row("execution", f"{execution['status']}  {execution['arn']}" if execution else "—")
    if wf.get("failure"):
        facts.add_row("failure", json.dumps(wf["failure"], default=str)[:200])
    console.print(facts)
    nodes = Table(title="nodes", title_justify="left", show_edge=False)
    for column in ("node", "kind", "status", "attempts", "gen", "duration", "error / note"):
        nodes.add_column(column)
    for node in shown["nodes"]:
        note = node["error"] or node["reason"] or (f"filled by {node['filled_by']}" if node["filled_by"] else "")
        nodes.add_row(node["node_id"], node.get("kind") or "—", _styled(node["status"]), str(node["attempts"]),
                      str(node["generation"]), _ms(node["duration_ms"]), str(note or "")[:70])
    console.print(nodes)
    for review in shown["open_reviews"]:
        console.print(f"open review {review['review_id']} queue={review.get('queue')} reason={review.get('reason')}")


@app.command("retry")
def retry_cmd(workflow_id: str = typer.Argument(...),
              from_node: str = typer.Option(None, "--from", help="re-run this node and every node after it"),
              by: str = typer.Option(None, "--by", help="who retries (audited); default $USER"),
              fmt: str = FormatOpt) -> None:
    """Start a new attempt generation: nodes already SUCCEEDED are reused, the rest run again."""
    from powerx_agent.ops.workflow import retry_workflow

    check_format(fmt)
    with session() as (deps, metrics):
        result = run_logic(lambda: retry_workflow(deps, metrics, workflow_id, by or default_actor(), from_node))
    if fmt == "json":
        print_json(result)
        return
    console.print(f"retrying {workflow_id} as generation {result['generation']}: execution "
                  f"{result['execution_name']}\n  run again: {', '.join(result['reset']) or '—'}\n"
                  f"  reused:    {', '.join(result['reuse']) or '—'}")


@app.command("fill")
def fill_cmd(workflow_id: str = typer.Argument(...), node_id: str = typer.Argument(...),
             output: str = typer.Option(..., "--output", help="the node's outcome as a JSON object"),
             by: str = typer.Option(..., "--by", help="who did the work by hand (audited)"),
             fmt: str = FormatOpt) -> None:
    """Record an outcome done by hand (resumes a node waiting for a callback or a review)."""
    from powerx_agent.ops.workflow import fill_node

    check_format(fmt)
    try:
        value = json.loads(output)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--output") from None
    if not isinstance(value, dict):
        raise typer.BadParameter("give a JSON object", param_hint="--output")
    with session() as (deps, metrics):
        result = run_logic(lambda: fill_node(deps, metrics, workflow_id, node_id, value, by))
    if fmt == "json":
        print_json(result)
        return
    console.print(f"node {node_id} of {workflow_id}: {result['from_status']} → SUCCEEDED (filled by {by}, "
                  f"{'execution resumed' if result['resumed'] else 'recorded'})")
    if result["next"]:
        console.print(f"next: {result['next']}")


@app.command("stop")
def stop_cmd(workflow_id: str = typer.Argument(None, help="workflow id (or --tenant)"),
             tenant: str = typer.Option(None, "--tenant", help="stop every running workflow of this tenant"),
             by: str = typer.Option(None, "--by", help="who stops (audited); default $USER"),
             reason: str = typer.Option("stopped by operator", "--reason"),
             fmt: str = FormatOpt) -> None:
    """StopExecution for one workflow, or for every RUNNING workflow of a tenant."""
    from powerx_agent.ops.workflow import stop_tenant, stop_workflow

    check_format(fmt)
    if (workflow_id is None) == (tenant is None):
        raise typer.BadParameter("give a workflow id or --tenant, not both", param_hint="WORKFLOW_ID / --tenant")
    actor = by or default_actor()
    with session() as (deps, metrics):
        if workflow_id:
            results = [run_logic(lambda: stop_workflow(deps, metrics, workflow_id, actor, reason))]
        else:
            results = run_logic(lambda: stop_tenant(deps, metrics, tenant, actor, reason))
    if fmt == "json":
        print_json(results)
        return
    for result in results:
        console.print(f"stopped {result['workflow_id']} (execution {result['execution_status']}, "
                      f"{len(result['closed_reviews'])} review(s) closed)")
    console.print(f"{len(results)} workflow(s) stopped")
