"""``powerx-agent workflow list|show|retry|fill|stop``: what an operator does when automation
cannot finish (docs/operations-takeover.md).

The CLI is a thin layer over these functions; they take ``deps`` (stores and clients) and a metrics
recorder, like the handlers do. Reviews are in :mod:`powerx_agent.ops.review`.

- ``retry``: a new attempt *generation*: a new execution of the same state machine named
  ``<workflow_id>-r<n>`` (moto has no ``RedriveExecution``; the same path works on AWS); nodes
  already SUCCEEDED are kept (the node Lambda returns their stored output without calling
  downstream), the others, and with ``from_node`` that node and every node after it, are reset to
  PENDING for the new generation. That reset is the one documented exception to forward-only
  status moves: conditional on a higher generation, the previous outcome kept in ``history``, and
  every move audited;
- ``fill``: record an outcome done by hand (resumes a node waiting on a task token);
- ``stop``: StopExecution for one workflow or every running workflow of a tenant.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from powerx_agent import spec
from powerx_agent.adapters.execution_logs import is_express_execution
from powerx_agent.audit.kinds import AuditKind
from powerx_agent.escalation.backlog import emit_backlog
from powerx_agent.nodes.runner import callback_id_for, small
from powerx_agent.ops.takeover import (
    TakeoverError,
    audit_takeover,
    close_reviews,
    meta_of,
    public_review,
)
from powerx_agent.status import WORKFLOW_ACTIVE, WORKFLOW_TERMINAL
from powerx_agent.strategy.loader import load_strategy_text, strategy_files

if TYPE_CHECKING:
    from powerx_agent.deps import Deps


def list_workflows(deps: Deps, tenant: str | None = None, status: str | None = None,
                   limit: int = 100) -> list[dict[str, Any]]:
    items = deps.workflows.list_workflows(tenant, limit=10_000 if status else limit)
    if status:
        items = [i for i in items if i.get("status") == status.upper()]
    return items[:limit]


def _execution(deps: Deps, execution_arn: str | None, started_after: float | None = None) -> dict[str, Any] | None:
    """DescribeExecution, or for an Express execution (which it does not serve) what its log records say."""
    return deps.state_machines.describe(execution_arn, started_after)  # type: ignore[no-any-return]


def show_workflow(deps: Deps, workflow_id: str) -> dict[str, Any]:
    """META, nodes (attempts, duration, error, generation), execution status, decision summary."""
    meta = meta_of(deps, workflow_id)
    execution = _execution(deps, meta.get("execution_arn"), meta.get("created_at"))
    decision = meta.get("decision") or {}
    selected = decision.get("selected") or {}
    nodes = []
    for node_id, item in sorted(meta.get("nodes", {}).items(),
                                key=lambda kv: (kv[1].get("last_attempt_at") or kv[1].get("updated_at") or 0)):
        nodes.append({"node_id": node_id, "kind": item.get("kind"), "status": item.get("status"),
                      "attempts": item.get("attempts", 0), "duration_ms": item.get("duration"),
                      "generation": item.get("generation", 1),
                      "error": (item.get("error") or {}).get("message") if item.get("error") else None,
                      "error_type": (item.get("error") or {}).get("type") if item.get("error") else None,
                      "reason": item.get("reason"), "filled_by": item.get("filled_by"),
                      "history": item.get("history", [])})
    reviews = [public_review(r) for r in deps.workflows.open_reviews_for(workflow_id)]
    meta_out = {k: v for k, v in meta.items() if k not in ("nodes", "decision", "pk", "sk", "gsi1pk", "gsi1sk")}
    return {
        "workflow": meta_out,
        "execution": ({"arn": execution["executionArn"], "status": execution["status"],
                       "started": str(execution.get("startDate")), "stopped": str(execution.get("stopDate") or "")}
                      if execution else None),
        "decision": {"strategy_id": selected.get("strategy_id"), "version": selected.get("version"),
                     "weight": selected.get("weight"), "library_revision": decision.get("library_revision"),
                     "candidates": len(decision.get("candidates") or [])},
        "nodes": nodes,
        "open_reviews": reviews,
    }


# -------------------------------------------------------------------------------------- retry


def flow_edges(deps: Deps, meta: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """node id → the nodes it runs after, from the strategy version the workflow was started with."""
    strategy_id, version = meta.get("strategy_id"), meta.get("strategy_version")
    text: str | None = None
    item = deps.strategies.version(strategy_id, int(version)) if strategy_id and version else None
    if item is not None:
        text = item["yaml"]
    else:  # a library read from the directory shipped with the code
        for path in strategy_files(deps.settings.strategies_dir):
            candidate = path.read_text()
            if f"id: {strategy_id}" in candidate:
                text = candidate
                break
    if text is None:
        raise TakeoverError(f"strategy {strategy_id} v{version} of workflow {meta['workflow_id']} is not available",
                            code="takeover.strategy_missing")
    compiled, findings = load_strategy_text(text, f"{strategy_id}@v{version}")
    if compiled is None or compiled.strategy.version != int(version):
        raise TakeoverError(f"strategy {strategy_id} v{version} cannot be loaded: "
                            + "; ".join(f.message for f in findings[:3]), code="takeover.strategy_invalid")
    return {n.id: tuple(n.after) for n in compiled.strategy.flow.nodes}


def descendants(edges: dict[str, Iterable[str]], start: str) -> set[str]:
    """``start`` and every node that runs after it, directly or transitively."""
    children: dict[str, set[str]] = {n: set() for n in edges}
    for node, after in edges.items():
        for parent in after:
            children.setdefault(parent, set()).add(node)
    seen, todo = {start}, [start]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def plan_retry(statuses: dict[str, str], edges: dict[str, Iterable[str]],
               from_node: str | None = None) -> tuple[list[str], list[str]]:
    """(nodes to reset and run again, nodes kept and reused). Every node that did not succeed runs
    again; with ``from_node`` that node and everything after it run again as well."""
    if from_node is not None and from_node not in statuses:
        raise TakeoverError(f"no node {from_node!r} in this workflow (nodes: {', '.join(sorted(statuses))})",
                            code="takeover.unknown_node")
    reset = {n for n, s in statuses.items() if s != "SUCCEEDED"}
    if from_node is not None:
        reset |= descendants(edges, from_node) & set(statuses)
    return sorted(reset), sorted(set(statuses) - reset)


def retry_workflow(deps: Deps, metrics: Any, workflow_id: str, by: str,
                   from_node: str | None = None) -> dict[str, Any]:
    meta = meta_of(deps, workflow_id)
    if meta.get("status") not in WORKFLOW_TERMINAL:
        raise TakeoverError(f"workflow {workflow_id} is {meta.get('status')}; retry a finished workflow "
                            "(stop it first: powerx-agent workflow stop)", code="takeover.not_finished")
    execution = _execution(deps, meta.get("execution_arn"), meta.get("created_at"))
    if execution is None:
        raise TakeoverError(f"the execution of {workflow_id} is gone; its input cannot be reused",
                            code="takeover.execution_missing")
    if execution["status"] in ("RUNNING", "UNKNOWN"):
        raise TakeoverError(f"execution {execution['executionArn']} is {execution['status']} (an Express "
                            "execution is UNKNOWN until its log records arrive); stop it or wait",
                            code="takeover.not_finished")
    if execution.get("source") == "logs" and "workflow" not in json.loads(execution.get("input") or "{}"):
        raise TakeoverError(f"the input of Express execution {execution['executionArn']} is not in its log records "
                            "(stateMachineLogExecutionData is off), so it cannot be reused; run the event again "
                            "with `powerx-agent replay --new-key`", code="takeover.input_unknown")
    statuses = {n: item.get("status", "PENDING") for n, item in meta.get("nodes", {}).items()}
    edges = flow_edges(deps, meta) if from_node else {}
    reset, reuse = plan_retry(statuses, edges, from_node)
    previous_generation = int(meta.get("generation") or 1)
    generation = previous_generation + 1
    execution_input = json.loads(execution.get("input") or "{}")
    execution_input.setdefault("workflow", {}).update(
        {"generation": generation, "reuse": reuse, "retry_of": execution["executionArn"]})
    name = f"{workflow_id}-r{generation - 1}"
    previous = {"generation": previous_generation, "status": meta.get("status"),
                "execution_arn": meta.get("execution_arn"), "finished_at": meta.get("finished_at"),
                "escalation_reason": meta.get("escalation_reason"), "failure": meta.get("failure"),
                "ended": round(time.time(), 3)}
    if not deps.workflows.begin_generation(workflow_id, generation, previous, retried_by=by,
                                           retried_at=round(time.time(), 3)):
        raise TakeoverError(f"workflow {workflow_id} changed meanwhile (another retry?); look again",
                            code="takeover.conflict")
    for node_id in reset:
        item = meta["nodes"][node_id]
        before = {"generation": item.get("generation", 1), "status": item.get("status"),
                  "attempts": item.get("attempts"), "error": item.get("error"), "filled_by": item.get("filled_by")}
        if deps.workflows.reset_node(workflow_id, node_id, generation, before):
            audit_takeover(deps, AuditKind.NODE_RESET, meta, node_id=node_id, status="PENDING",
                   data={"from_status": item.get("status"), "generation": generation, "actor": by,
                         "why": "retry from this node" if node_id == from_node else
                                ("after the retried node" if item.get("status") == "SUCCEEDED" else "did not succeed")})
    closed = close_reviews(deps, metrics, meta, "retried", by, f"retried as generation {generation}")
    try:
        # a workflow that ran on an Express head is retried on its Standard machine (the full flow)
        machine = meta.get("continuation_state_machine_arn") or meta["state_machine_arn"]
        started = deps.state_machines.start(machine, name,
                                            json.dumps(execution_input, separators=(",", ":"), default=str))
        if started.already:
            raise TakeoverError(f"execution {name} already exists: another retry started it",
                                code="takeover.conflict")
        arn = started.execution_arn
    except Exception as exc:
        deps.workflows.transition_workflow(workflow_id, "FAILED", failure={"error": "retry.start_failed",
                                                                           "message": str(exc)[:500]})
        audit_takeover(deps, AuditKind.WORKFLOW_FAILED, meta, status="FAILED",
               data={"reason": "retry could not start", "generation": generation, "error": str(exc)[:500]})
        raise
    deps.workflows.update_meta(workflow_id, execution_arn=arn)
    audit_takeover(deps, AuditKind.WORKFLOW_RETRIED, meta, status="RUNNING",
           data={"generation": generation, "from_status": meta.get("status"), "from_node": from_node,
                 "reset": reset, "reuse": reuse, "execution_arn": arn, "previous_execution": meta.get("execution_arn"),
                 "closed_reviews": closed, "actor": by})
    return {"workflow_id": workflow_id, "generation": generation, "execution_arn": arn, "execution_name": name,
            "reset": reset, "reuse": reuse, "closed_reviews": closed}


# --------------------------------------------------------------------------------------- fill


def fill_node(deps: Deps, metrics: Any, workflow_id: str, node_id: str, output: Any, by: str) -> dict[str, Any]:
    """Record an outcome done by hand. A node waiting on a task token (async plugin or manual
    review) is resumed with ``output`` (SendTaskSuccess); otherwise the node is marked SUCCEEDED
    with ``filled_by`` so that ``workflow retry`` reuses it instead of running it again."""
    if not by.strip():
        raise TakeoverError("say who filled the node (--by)", code="takeover.actor_required")
    meta = meta_of(deps, workflow_id)
    item = meta.get("nodes", {}).get(node_id)
    if item is None:
        raise TakeoverError(f"no node {node_id!r} in workflow {workflow_id} "
                            f"(nodes: {', '.join(sorted(meta.get('nodes', {})))})", code="takeover.unknown_node")
    status = item.get("status", "PENDING")
    if status == "SUCCEEDED":
        raise TakeoverError(f"node {node_id} already SUCCEEDED; nothing to fill", code="takeover.already_done")
    generation = int(meta.get("generation") or 1)
    token, via = None, "record"
    callback_id = callback_id_for(workflow_id, node_id, generation)
    callback = deps.workflows.get_callback(callback_id)
    if callback and callback.get("status") == "OPEN" and deps.workflows.close_callback(callback_id, "filled"):
        token, via = callback["task_token"], "callback"
    else:
        for review in deps.workflows.open_reviews_for(workflow_id):
            if review.get("node_id") == node_id and review.get("task_token") and \
                    deps.workflows.close_review(review["review_id"], "filled", by, "filled by hand"):
                token, via = review["task_token"], "review"
                emit_backlog(deps, metrics)
                break
    stored = small(output)
    if not deps.workflows.fill_node(workflow_id, node_id, stored, by, status):
        raise TakeoverError(f"node {node_id} changed meanwhile; look again", code="takeover.conflict")
    resumed = False
    if token is not None:
        resumed = deps.state_machines.succeed_task(token, json.dumps(stored, default=str))
    audit_takeover(deps, AuditKind.NODE_FILLED, meta, node_id=node_id, status="SUCCEEDED",
           data={"actor": by, "from_status": status, "via": via, "resumed": resumed, "generation": generation,
                 "output": stored})
    hint = None
    if not resumed and meta.get("status") in WORKFLOW_TERMINAL:
        hint = f"powerx-agent workflow retry {workflow_id}  (reuses {node_id} and runs what is left)"
    return {"workflow_id": workflow_id, "node_id": node_id, "from_status": status, "via": via,
            "resumed": resumed, "next": hint}


# --------------------------------------------------------------------------------------- stop


def stop_workflow(deps: Deps, metrics: Any, workflow_id: str, by: str, reason: str = "stopped by operator",
                  meta: dict[str, Any] | None = None) -> dict[str, Any]:
    meta = meta or meta_of(deps, workflow_id)
    if meta.get("status") not in WORKFLOW_ACTIVE:
        raise TakeoverError(f"workflow {workflow_id} is {meta.get('status')}, not running", code="takeover.not_running")
    execution_status = None
    generation = int(meta.get("generation") or 1)
    tokens = [r["task_token"] for r in deps.workflows.open_reviews_for(workflow_id) if r.get("task_token")]
    for node_id, item in meta.get("nodes", {}).items():
        callback = deps.workflows.get_callback(callback_id_for(workflow_id, node_id, generation)) \
            if item.get("status") == "RUNNING" else None
        if callback and callback.get("status") == "OPEN":
            tokens.append(callback["task_token"])
    if is_express_execution(meta.get("execution_arn")):
        # StopExecution does not serve Express executions: this one runs its remaining nodes to the end
        # (5 minutes at most); the workflow stays STOPPED (no transition moves a STOPPED workflow)
        execution_status = "NOT_STOPPABLE"
    elif meta.get("execution_arn"):
        if deps.state_machines.stop(meta["execution_arn"], "Agent.Stopped", f"{by}: {reason}"):
            execution_status = "ABORTED"
        else:
            execution = _execution(deps, meta["execution_arn"])
            execution_status = execution["status"] if execution else None
    for token in tokens:
        # release the task a stopped execution was waiting on (AWS answers that the token is no
        # longer valid; moto's executor only ends a stopped execution once its wait ends)
        deps.state_machines.fail_task(token, "Agent.Stopped", f"stopped by {by}")
    changed = deps.workflows.transition_workflow(workflow_id, "STOPPED", stopped_by=by, stop_reason=reason,
                                                 finished_at=round(time.time(), 3))
    # every node the stop settles is audited (and a failed one counted, as the node runner counts it), so the
    # chain and the figures hold each node's outcome and `repair` finds nothing missing
    for node_id, item in meta.get("nodes", {}).items():
        if item.get("status") == "RUNNING":
            error = {"type": "Stopped", "message": f"workflow stopped by {by}"}
            if deps.workflows.transition_node(workflow_id, node_id, "FAILED", error=error):
                metrics.add(spec.METRICS["node_failure"], 1, tenant=meta.get("tenant_id"),
                            strategy=meta.get("strategy_id"))
                audit_takeover(deps, "node.failed", meta, node_id=node_id, status="FAILED",
                               data={"error": error, "actor": by, "reason": reason})
            callback_id = callback_id_for(workflow_id, node_id, generation)
            if deps.workflows.get_callback(callback_id):  # a late plugin callback is then answered 409
                deps.workflows.close_callback(callback_id, "stopped")
        elif item.get("status") == "PENDING":
            skipped = f"workflow stopped by {by}"
            if deps.workflows.transition_node(workflow_id, node_id, "SKIPPED", reason=skipped):
                audit_takeover(deps, "node.skipped", meta, node_id=node_id, status="SKIPPED",
                               data={"reason": skipped, "actor": by})
    closed = close_reviews(deps, metrics, meta, "stopped", by, reason)
    if changed:
        audit_takeover(deps, AuditKind.WORKFLOW_STOPPED, meta, status="STOPPED",
               data={"actor": by, "reason": reason, "execution_status": execution_status, "closed_reviews": closed})
    return {"workflow_id": workflow_id, "status": "STOPPED", "execution_status": execution_status,
            "closed_reviews": closed, "changed": changed}


def stop_tenant(deps: Deps, metrics: Any, tenant_id: str, by: str,
                reason: str = "stopped by operator") -> list[dict[str, Any]]:
    stopped = []
    for meta in deps.workflows.list_workflows(tenant_id, limit=10_000):
        if meta.get("status") in WORKFLOW_ACTIVE:
            full = deps.workflows.get(meta["workflow_id"])
            if full and full.get("status") in WORKFLOW_ACTIVE:
                stopped.append(stop_workflow(deps, metrics, meta["workflow_id"], by, reason, meta=full))
    return stopped
