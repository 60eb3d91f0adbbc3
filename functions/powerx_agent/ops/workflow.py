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
from powerx_agent.audit.chain import effective_kinds
from powerx_agent.audit.completeness import current_generation
from powerx_agent.audit.records import workflow_chain
from powerx_agent.errors import AgentError
from powerx_agent.escalation.backlog import emit_backlog
from powerx_agent.nodes.runner import callback_id_for, small
from powerx_agent.ops.change import Change
from powerx_agent.ops.takeover import (
    TakeoverError,
    audit_takeover,
    close_reviews,
    meta_of,
    public_review,
)
from powerx_agent.status import WORKFLOW_ACTIVE, WORKFLOW_TERMINAL
from powerx_agent.strategy.decision import candidates_total
from powerx_agent.strategy.loader import load_strategy_text, strategy_files
from powerx_agent.taskflow.limits import check_execution_input

if TYPE_CHECKING:
    from powerx_agent.deps import Deps


WORKFLOW_STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "ESCALATED", "STOPPED")


def list_workflows(deps: Deps, tenant: str | None = None, status: str | None = None, limit: int = 100, *,
                   strategy: str | None = None, since: str | None = None, until: str | None = None,
                   event: str | None = None) -> list[dict[str, Any]]:
    """Workflows, newest first: of a tenant, with a status, of a strategy, created in a window
    (``since``/``until``: ISO time or 15m/2h/3d), or started by one event (event id or idempotency key)."""
    from powerx_agent.ops.audit import _epoch, normalise_since

    if status and status.upper() not in WORKFLOW_STATUSES:
        raise TakeoverError(f"unknown status {status!r}: one of {', '.join(WORKFLOW_STATUSES)}",
                            code="workflow.bad_status")
    try:
        start = _epoch(normalise_since(since) or "") if since else None
        end = _epoch(normalise_since(until) or "") if until else None
    except ValueError as exc:
        raise TakeoverError(str(exc), code="workflow.bad_window") from None
    filtered = bool(status or strategy or end is not None or event)
    items = deps.workflows.list_workflows(tenant, limit=10_000 if filtered else limit, since=start)
    return [i for i in items
            if (not status or i.get("status") == status.upper())
            and (not strategy or i.get("strategy_id") == strategy)
            and (end is None or float(i.get("created_at") or 0) <= end)
            and (not event or event in (i.get("event_id"), i.get("idempotency_key"), i.get("workflow_id")))][:limit]


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
    meta_out = {k: v for k, v in meta.items() if k not in ("nodes", "decision", *spec.WORKFLOWS_TABLE.key_attributes)}
    return {
        "workflow": meta_out,
        "execution": ({"arn": execution["executionArn"], "status": execution["status"],
                       "started": str(execution.get("startDate")), "stopped": str(execution.get("stopDate") or "")}
                      if execution else None),
        "decision": {"strategy_id": selected.get("strategy_id"), "version": selected.get("version"),
                     "weight": selected.get("weight"), "library_revision": decision.get("library_revision"),
                     "candidates": candidates_total(decision)},
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
    """Checks everything first (a finished workflow and execution, its input and state machine, a free
    execution name); then, as one :class:`Change`, moves the workflow and the nodes to run again to the
    new generation and starts the execution. Should the start fail, the workflow and its nodes are put
    back as they were (audited as ``workflow.retry_failed``); once the execution runs, the retry stands."""
    meta = meta_of(deps, workflow_id)
    if meta.get("status") not in WORKFLOW_TERMINAL:
        raise TakeoverError(f"workflow {workflow_id} is {meta.get('status')}; retry a finished workflow "
                            f"(stop it first: powerx-agent workflow stop {workflow_id})", code="takeover.not_finished")
    execution = _execution(deps, meta.get("execution_arn"), meta.get("created_at"))
    if execution is None:
        raise TakeoverError(f"the execution of {workflow_id} is gone; its input cannot be reused",
                            code="takeover.execution_missing")
    if execution["status"] in ("RUNNING", "UNKNOWN"):
        state = "still RUNNING" if execution["status"] == "RUNNING" else \
            "UNKNOWN (an Express execution is UNKNOWN until its log records arrive)"
        raise TakeoverError(f"execution {execution['executionArn']} is {state} although the workflow is "
                            f"{meta.get('status')}; stop it first (powerx-agent workflow stop {workflow_id}) or wait",
                            code="takeover.not_finished")
    if execution.get("source") == "logs" and "workflow" not in json.loads(execution.get("input") or "{}"):
        raise TakeoverError(f"the input of Express execution {execution['executionArn']} is not in its log records "
                            "(stateMachineLogExecutionData is off), so it cannot be reused; run the event again "
                            "with `powerx-agent replay --new-key`", code="takeover.input_unknown")
    # a workflow that ran on an Express head is retried on its Standard machine (the full flow)
    machine = meta.get("continuation_state_machine_arn") or meta["state_machine_arn"]
    if deps.state_machines.definition(machine) is None:
        raise TakeoverError(f"state machine {machine} is gone; the workflow cannot run again",
                            code="takeover.state_machine_missing")
    statuses = {n: item.get("status", "PENDING") for n, item in meta.get("nodes", {}).items()}
    edges = flow_edges(deps, meta) if from_node else {}
    reset, reuse = plan_retry(statuses, edges, from_node)
    previous_generation = int(meta.get("generation") or 1)
    generation = previous_generation + 1
    execution_input = json.loads(execution.get("input") or "{}")
    if not isinstance(execution_input, dict) or not execution_input:
        raise TakeoverError(f"the input of execution {execution['executionArn']} is not known; run the event again "
                            "with `powerx-agent replay --new-key`", code="takeover.input_unknown")
    execution_input.setdefault("workflow", {}).update(
        {"generation": generation, "reuse": reuse, "retry_of": execution["executionArn"]})
    input_json = json.dumps(execution_input, separators=(",", ":"), default=str)
    try:
        check_execution_input(input_json)
    except AgentError as exc:
        raise TakeoverError(f"the retry's input is refused: {exc.message}", code="takeover.input_too_large") from None
    name = f"{workflow_id}-r{generation - 1}"
    new_arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    if _execution(deps, new_arn) is not None:
        raise TakeoverError(f"execution {name} already exists: another retry started it; look again",
                            code="takeover.conflict")
    previous = {"generation": previous_generation, "status": meta.get("status"),
                "execution_arn": meta.get("execution_arn"), "finished_at": meta.get("finished_at"),
                "escalation_reason": meta.get("escalation_reason"), "failure": meta.get("failure"),
                "ended": round(time.time(), 3)}
    befores: dict[str, dict[str, Any]] = {}

    def begin() -> None:
        if not deps.workflows.begin_generation(workflow_id, generation, previous, retried_by=by,
                                               retried_at=round(time.time(), 3), execution_arn=new_arn):
            raise TakeoverError(f"workflow {workflow_id} changed meanwhile (another retry?); look again",
                                code="takeover.conflict")

    def reset_one(node_id: str) -> None:
        item = meta["nodes"][node_id]
        before = {"generation": item.get("generation", 1), "status": item.get("status"),
                  "attempts": item.get("attempts"), "error": item.get("error"), "filled_by": item.get("filled_by")}
        if not deps.workflows.reset_node(workflow_id, node_id, generation, before):
            raise TakeoverError(f"node {node_id} changed meanwhile; look again", code="takeover.conflict")
        befores[node_id] = item

    def start() -> str:
        started = deps.state_machines.start(machine, name, input_json)
        if started.already:
            raise TakeoverError(f"execution {name} already exists: another retry started it",
                                code="takeover.conflict")
        return str(started.execution_arn)

    with Change(f"retry {workflow_id}", "takeover.retry_failed",
                on_failure=lambda d: audit_takeover(deps, "workflow.retry_failed", meta, status=meta.get("status"),
                                                    data={**d, "generation": generation, "actor": by})) as change:
        change.step("generation", begin, lambda _: deps.workflows.put_back(_stored(meta), generation))
        for node_id in reset:
            change.step(f"reset {node_id}", lambda n=node_id: reset_one(n),
                        lambda _, n=node_id: deps.workflows.put_back(befores[n], generation))
        # the chain says the retry before the execution can write a record of the new generation (a
        # failed start follows it with workflow.retry_failed, which voids it)
        change.step("audit", lambda: audit_retry(deps, meta, reset, reuse, from_node, generation, new_arn, by))
        arn = change.step("start", start)
        change.settled(f"the retry runs as {name}; powerx-agent repair --apply records what is missing")
        if arn != new_arn:  # an Express execution's ARN carries a run id of its own
            change.step("record execution", lambda: deps.workflows.update_meta(workflow_id, execution_arn=arn))
        closed = change.step("close reviews", lambda: close_reviews(deps, metrics, meta, "retried", by,
                                                                    f"retried as generation {generation}"))
    return {"workflow_id": workflow_id, "generation": generation, "execution_arn": arn, "execution_name": name,
            "reset": reset, "reuse": reuse, "closed_reviews": closed}


def audit_retry(deps: Deps, meta: dict[str, Any], reset: list[str], reuse: list[str], from_node: str | None,
                generation: int, execution_arn: str, by: str) -> None:
    """``node.reset`` for every node that runs again, then ``workflow.retried``."""
    for node_id in reset:
        item = meta["nodes"][node_id]
        audit_takeover(deps, "node.reset", meta, node_id=node_id, status="PENDING",
                       data={"from_status": item.get("status"), "generation": generation, "actor": by,
                             "why": "retry from this node" if node_id == from_node else
                                    ("after the retried node" if item.get("status") == "SUCCEEDED"
                                     else "did not succeed")})
    audit_takeover(deps, "workflow.retried", meta, status="RUNNING",
                   data={"generation": generation, "from_status": meta.get("status"), "from_node": from_node,
                         "reset": reset, "reuse": reuse, "execution_arn": execution_arn,
                         "previous_execution": meta.get("execution_arn"), "actor": by})


def _stored(meta: dict[str, Any]) -> dict[str, Any]:
    """META as stored (without the node items ``get`` adds)."""
    return {k: v for k, v in meta.items() if k != "nodes"}


# --------------------------------------------------------------------------------------- fill


def fill_node(deps: Deps, metrics: Any, workflow_id: str, node_id: str, output: Any, by: str) -> dict[str, Any]:
    """Record an outcome done by hand. A node waiting on a task token (async plugin or manual
    review) is resumed with ``output`` (SendTaskSuccess); otherwise the node is marked SUCCEEDED
    with ``filled_by`` so that ``workflow retry`` reuses it instead of running it again.

    The callback or review holding the token is *claimed* first (OPEN → CLOSING) and closed last; a
    failure before the execution resumes releases the claim and puts the node back."""
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
    stored = small(output)
    holder: dict[str, Any] | None = None  # the callback or review that holds the node's task token
    callback_id = callback_id_for(workflow_id, node_id, generation)
    callback = deps.workflows.get_callback(callback_id)
    if callback and callback.get("status") == "OPEN":
        holder = {"pk": f"CB#{callback_id}", "token": callback["task_token"], "via": "callback"}
    else:
        review = next((r for r in deps.workflows.open_reviews_for(workflow_id)
                       if r.get("node_id") == node_id and r.get("task_token")), None)
        if review is not None:
            holder = {"pk": f"REVIEW#{review['review_id']}", "token": review["task_token"], "via": "review",
                      "review_id": review["review_id"]}
    via = holder["via"] if holder else "record"

    def claim() -> None:
        if holder and not deps.workflows.claim(holder["pk"], "filled"):
            raise TakeoverError(f"the {holder['via']} of node {node_id} was answered meanwhile; look again",
                                code="takeover.conflict")

    def fill() -> None:
        if not deps.workflows.fill_node(workflow_id, node_id, stored, by, status):
            raise TakeoverError(f"node {node_id} changed meanwhile; look again", code="takeover.conflict")

    def finish() -> None:
        if holder and holder["via"] == "review":
            deps.workflows.finish_claim(holder["pk"], "filled", remove=("gsi1pk", "gsi1sk"), closed_by=by,
                                        reason="filled by hand")
            emit_backlog(deps, metrics)
        elif holder:
            deps.workflows.finish_claim(holder["pk"], "filled")

    with Change(f"fill {workflow_id} {node_id}", "takeover.fill_failed") as change:
        change.step("claim", claim, lambda _: holder and deps.workflows.release_claim(holder["pk"], "filled"))
        change.step("fill", fill, lambda _: deps.workflows.restore_node(item, status))
        resumed = change.step("resume", lambda: bool(holder) and deps.state_machines.succeed_task(
            holder["token"], json.dumps(stored, default=str)))
        if resumed:
            change.settled("the execution resumed with the output given; powerx-agent repair --apply records "
                           "what is missing")
        change.step("audit", lambda: audit_takeover(
            deps, "node.filled", meta, node_id=node_id, status="SUCCEEDED",
            data={"actor": by, "from_status": status, "via": via, "resumed": resumed, "generation": generation,
                  "output": stored}))
        change.step("close", finish)
    hint = None
    if not resumed and meta.get("status") in WORKFLOW_TERMINAL:
        hint = f"powerx-agent workflow retry {workflow_id}  (reuses {node_id} and runs what is left)"
    return {"workflow_id": workflow_id, "node_id": node_id, "from_status": status, "via": via,
            "resumed": resumed, "next": hint}


# --------------------------------------------------------------------------------------- stop

STOP_WAIT_SECONDS = 10.0
"""How long ``stop`` waits for Step Functions to report the execution ended before saying it has not."""


def wait_for_end(deps: Deps, execution_arn: str, wait: float, started_after: float | None = None,
                 poll: float = 0.25) -> str | None:
    """The execution's status once it is no longer RUNNING, or RUNNING when ``wait`` seconds passed
    (None: there is no such execution)."""
    deadline = time.monotonic() + wait
    while True:
        status = deps.state_machines.status(execution_arn, started_after)
        if status != "RUNNING" or time.monotonic() >= deadline:
            return status  # type: ignore[no-any-return]
        time.sleep(poll)


def _unsettled(meta: dict[str, Any]) -> list[str]:
    return sorted(n for n, item in meta.get("nodes", {}).items() if item.get("status") in ("PENDING", "RUNNING"))


def stop_workflow(deps: Deps, metrics: Any, workflow_id: str, by: str, reason: str = "stopped by operator",
                  meta: dict[str, Any] | None = None, wait: float = STOP_WAIT_SECONDS) -> dict[str, Any]:
    """Stop the execution, release the task token it waits on, then settle the workflow: STOPPED,
    running nodes ``node.stopped`` (FAILED), pending ones ``node.skipped``, reviews and callbacks closed,
    ``workflow.stopped`` audited. Reports what Step Functions *says* after the stop (polled for up to
    ``wait`` seconds), never what was asked: ``execution_status`` RUNNING means it has not ended yet,
    and ``next`` says what to do.

    Safe to run again: a workflow already STOPPED whose execution still runs, or whose nodes or
    reviews were not all settled (a failure midway), is stopped and settled again; the rest is refused."""
    meta = meta or meta_of(deps, workflow_id)
    arn = meta.get("execution_arn")
    started_after = meta.get("created_at")
    express = is_express_execution(arn)
    before = deps.state_machines.status(arn, started_after) if arn else None
    open_reviews = deps.workflows.open_reviews_for(workflow_id)
    if meta.get("status") not in WORKFLOW_ACTIVE and before != "RUNNING" and not _unsettled(meta) and not open_reviews:
        raise TakeoverError(f"workflow {workflow_id} is {meta.get('status')} and its execution is "
                            f"{before or 'gone'}: nothing to stop", code="takeover.not_running")
    generation = int(meta.get("generation") or 1)
    tokens = _waiting_tokens(deps, meta, generation, open_reviews) if before == "RUNNING" else []
    settled: dict[str, str] = {}
    with Change(f"stop {workflow_id}", "takeover.stop_failed") as change:
        if before == "RUNNING" and not express:
            change.step("stop execution", lambda: deps.state_machines.stop(arn, "Agent.Stopped", f"{by}: {reason}"))
        # release the task a stopped execution was waiting on (AWS answers that the token is no longer
        # valid; moto's executor only ends a stopped execution once its wait ends)
        change.step("release task tokens", lambda: [deps.state_machines.fail_task(t, "Agent.Stopped",
                                                                                 f"stopped by {by}") for t in tokens])
        change.settled(f"run powerx-agent workflow stop {workflow_id} again: it finishes what is left")
        changed = change.step("mark STOPPED", lambda: deps.workflows.transition_workflow(
            workflow_id, "STOPPED", stopped_by=by, stop_reason=reason, finished_at=round(time.time(), 3)))
        # StopExecution does not serve Express executions: one runs its remaining nodes to the end (5 minutes
        # at most) while the workflow stays STOPPED (no transition moves a STOPPED workflow)
        verified = "NOT_STOPPABLE" if express else change.step(
            "verify", lambda: wait_for_end(deps, arn, wait, started_after) if arn else None)
        # the nodes as they are once the execution ended (a node may have started while it was stopping)
        now = change.step("read nodes", lambda: deps.workflows.get(workflow_id) or meta)
        for node_id, item in sorted(now.get("nodes", {}).items()):
            if item.get("status") in ("RUNNING", "PENDING"):
                outcome = change.step(f"settle {node_id}", lambda n=node_id, s=item["status"]: _stop_node(
                    deps, meta, n, s, by, generation))
                if outcome in ("FAILED", "SKIPPED"):
                    settled[node_id] = outcome
        closed = change.step("close reviews", lambda: close_reviews(deps, metrics, meta, "stopped", by, reason))
        # a first stop that failed midway left STOPPED without its record: the one that finishes writes it
        first = bool(changed) or (meta.get("status") == "STOPPED" and "workflow.stopped" not in effective_kinds(
            current_generation(deps.audit.chain(workflow_chain(workflow_id)))))
        change.step("audit", lambda: audit_takeover(
            deps, "workflow.stopped" if first else "workflow.stop_reissued", meta,
            status="STOPPED" if first else meta.get("status"),
            data={"actor": by, "reason": reason, "execution_status": verified, "execution_before": before,
                  "closed_reviews": closed, "nodes": settled}))
    hint = None
    if express and before in ("RUNNING", "UNKNOWN"):
        hint = (f"Express execution {arn} cannot be stopped (Step Functions said {before}): it runs its remaining "
                "nodes to the end, 5 minutes at most; the workflow stays STOPPED")
    elif verified == "RUNNING":
        hint = (f"Step Functions still reports execution {arn} RUNNING after {wait:g} s; run "
                f"`powerx-agent workflow stop {workflow_id}` again to re-issue the stop (retry and fill wait for "
                "it to end)")
    return {"workflow_id": workflow_id, "status": "STOPPED", "execution_arn": arn, "execution_status": verified,
            "verified": verified != "RUNNING", "nodes": settled, "closed_reviews": closed, "changed": bool(changed),
            "next": hint}


def _waiting_tokens(deps: Deps, meta: dict[str, Any], generation: int, open_reviews: list[dict[str, Any]]) -> list[str]:
    """Every task token this generation of the workflow handed out (its reviews, open or closed, as the
    chain names them, and its nodes' callbacks): a running execution may wait on any of them. Failing a
    token whose task already ended is refused by Step Functions and changes nothing."""
    workflow_id = meta["workflow_id"]
    review_ids = {r["review_id"] for r in open_reviews}
    for record in current_generation(deps.audit.chain(workflow_chain(workflow_id))):
        if record.get("kind") == "review.requested" and (record.get("data") or {}).get("review_id"):
            review_ids.add(record["data"]["review_id"])
    tokens = []
    for review_id in sorted(review_ids):
        review = next((r for r in open_reviews if r["review_id"] == review_id), None) or \
            deps.workflows.get_review(review_id) or {}
        if review.get("task_token"):
            tokens.append(review["task_token"])
    for node_id in sorted(meta.get("nodes", {})):
        callback = deps.workflows.get_callback(callback_id_for(workflow_id, node_id, generation))
        if callback and callback.get("task_token") and callback.get("outcome") in (None, "stopped"):
            tokens.append(callback["task_token"])
    return tokens


def _stop_node(deps: Deps, meta: dict[str, Any], node_id: str, status: str, by: str, generation: int) -> str:
    """One node a stop settles: RUNNING → FAILED (``node.stopped``: not a failure of its own), PENDING →
    SKIPPED (``node.skipped``; one that started meanwhile is settled as RUNNING); a late plugin callback
    is then answered 409. Returns the status the node was given (its own, when it ended by itself)."""
    workflow_id = meta["workflow_id"]
    why = f"workflow stopped by {by}"
    if status == "PENDING":
        if deps.workflows.transition_node(workflow_id, node_id, "SKIPPED", reason=why):
            audit_takeover(deps, "node.skipped", meta, node_id=node_id, status="SKIPPED",
                           data={"reason": why, "actor": by})
            return "SKIPPED"
    moved = deps.workflows.transition_node(workflow_id, node_id, "FAILED", error={"type": "Stopped", "message": why})
    callback_id = callback_id_for(workflow_id, node_id, generation)
    if deps.workflows.get_callback(callback_id):
        deps.workflows.close_callback(callback_id, "stopped")
    if moved:
        audit_takeover(deps, "node.stopped", meta, node_id=node_id, status="FAILED", data={"reason": why, "actor": by})
        return "FAILED"
    item = (deps.workflows.get(workflow_id) or {}).get("nodes", {}).get(node_id) or {}
    return str(item.get("status") or status)


def stop_tenant(deps: Deps, metrics: Any, tenant_id: str, by: str, reason: str = "stopped by operator",
                wait: float = STOP_WAIT_SECONDS) -> list[dict[str, Any]]:
    stopped = []
    for meta in deps.workflows.list_workflows(tenant_id, limit=10_000):
        if meta.get("status") in WORKFLOW_ACTIVE:
            full = deps.workflows.get(meta["workflow_id"])
            if full and full.get("status") in WORKFLOW_ACTIVE:
                stopped.append(stop_workflow(deps, metrics, meta["workflow_id"], by, reason, meta=full, wait=wait))
    return stopped
