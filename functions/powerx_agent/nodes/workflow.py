"""Workflow-level transitions invoked by the state machine: skip a node, complete, escalate, and an Express
head's hand-off to its Standard continuation."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from powerx_agent import spec, telemetry
from powerx_agent.audit.records import AuditEntry, workflow_chain
from powerx_agent.escalation.service import escalate
from powerx_agent.nodes.runner import callback_id_for, generation_of

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

# a reviewer's decision is final: the workflow fails (audited) instead of escalating to people again
DECIDED_BY_PEOPLE = ("ReviewRejected",)


def _duration_ms(meta: dict[str, Any] | None) -> float | None:
    if not meta or not meta.get("created_at"):
        return None
    return round((time.time() - float(meta["created_at"])) * 1000, 3)


def people_involved(meta: dict[str, Any] | None) -> list[str]:
    """Why a workflow did not finish on automation alone: an operator retried it, filled a node by hand,
    or a manual review node was approved by a person (a review skipped by its ``when`` involves nobody)."""
    meta = meta or {}
    why = [f"retried by an operator (generation {meta['generation']})"] if int(meta.get("generation") or 1) > 1 else []
    for node_id, item in sorted((meta.get("nodes") or {}).items()):
        if item.get("filled_by"):
            why.append(f"{node_id}: filled by hand")
        elif item.get("kind") == "manual_review" and item.get("status") == "SUCCEEDED":
            why.append(f"{node_id}: approved by a person")
    return why


def _failure_summary(failure: dict[str, Any] | None) -> dict[str, Any]:
    failure = failure or {}
    cause = failure.get("Cause")
    try:
        parsed = json.loads(cause) if isinstance(cause, str) else cause
    except ValueError:
        parsed = cause
    message = parsed.get("errorMessage") if isinstance(parsed, dict) else parsed
    return {"error": failure.get("Error"), "message": str(message)[:1000] if message else None}


class WorkflowActions:
    def __init__(self, deps: Deps, metrics: Any) -> None:
        self.deps = deps
        self.metrics = metrics

    def handle(self, payload: dict[str, Any]) -> dict[str, Any]:
        wf = payload.get("workflow") or {}
        with telemetry.work("workflow", tenant_id=wf.get("tenant_id"), event_id=wf.get("event_id"),
                            workflow_id=wf.get("workflow_id"), traceparent=wf.get("traceparent"),
                            strategy_id=wf.get("strategy_id"), action=payload.get("action")):
            result = self._handle(payload)
            status = str(result.get("status") or "")
            extra = {k: result[k] for k in ("status", "node_id", "reason", "review_id") if result.get(k)}
            if status in ("ESCALATED", "FAILED"):
                telemetry.logger.warning(f"workflow {status.lower()}", extra=extra)
            else:
                telemetry.logger.info(f"workflow {payload.get('action')}: {status.lower()}", extra=extra)
            return result

    def _handle(self, payload: dict[str, Any]) -> dict[str, Any]:
        action = payload.get("action")
        if action == "skip":
            return self.skip(payload["workflow"], payload["node_id"])
        if action == "complete":
            return self.complete(payload["workflow"])
        if action == "hand_off":
            return self.hand_off(payload)
        if action == "escalate":
            return self.escalate(payload["workflow"], payload.get("failure"), payload.get("escalation") or {})
        raise ValueError(f"unknown workflow action {action!r}")

    def _audit(self, kind: str, wf: dict[str, Any], **fields: Any) -> None:
        self.deps.audit.append(AuditEntry(kind, workflow_chain(wf["workflow_id"]), tenant_id=wf["tenant_id"],
                                          event_id=wf.get("event_id"), workflow_id=wf["workflow_id"],
                                          strategy_id=wf.get("strategy_id"), **fields))

    def _finished(self, wf: dict[str, Any], automated: bool) -> None:
        """The automated-success figure per workflow (succeeded without a person ÷ finished)."""
        dims = {"tenant": wf["tenant_id"], "strategy": wf.get("strategy_id")}
        self.metrics.add(spec.METRICS["workflow_finished"], 1, **dims)
        if automated:
            self.metrics.add(spec.METRICS["workflow_automated"], 1, **dims)

    def skip(self, wf: dict[str, Any], node_id: str) -> dict[str, Any]:
        if self.deps.workflows.transition_node(wf["workflow_id"], node_id, "SKIPPED", reason="when condition false"):
            self._audit("node.skipped", wf, node_id=node_id, status="SKIPPED", data={"reason": "when condition false"})
        return {"node_id": node_id, "status": "SKIPPED"}

    def hand_off(self, payload: dict[str, Any]) -> dict[str, Any]:
        """An Express head's node needs a retry the head has no time for: start the Standard machine of
        the full flow with the same input, named by the workflow id (a second hand-off of the same
        workflow, Express being at-least-once, finds it started). The workflow's execution is then
        that one; the nodes that succeeded in the head are reused there, not run again."""
        wf = payload["workflow"]
        workflow_id = wf["workflow_id"]
        meta = self.deps.workflows.get(workflow_id) or {}
        if meta.get("status") not in ("PENDING", "RUNNING"):  # ended meanwhile (stopped, escalated): nothing to continue
            return {"workflow_id": workflow_id, "status": meta.get("status"), "handed_off": False}
        nodes = meta.get("nodes") or {}
        before = {n: int(item["attempts"]) for n, item in sorted(nodes.items())
                  if item.get("status") in ("RUNNING", "FAILED") and item.get("attempts")}
        if before:  # the continuation numbers those nodes' attempts on from there
            wf = {**wf, "attempts_before": before}
        # nodes that failed for good in the head (a parallel sibling's hand-off started the continuation):
        # the continuation does not call them again, it escalates on them
        failed = sorted(n for n, item in nodes.items() if item.get("status") == "FAILED"
                        and not item.get("stopped_by_failure"))
        if failed:
            wf = {**wf, "failed_before": failed}
        execution_input = {"workflow": wf, "variables": payload.get("variables") or {},
                           "when": payload.get("when") or {}}
        machine = str(payload["continuation"])  # the matcher put the Standard machine's ARN in the head's input
        started = self.deps.state_machines.start(machine, workflow_id,
                                                 json.dumps(execution_input, separators=(",", ":"), default=str))
        summary = _failure_summary(payload.get("failure"))
        if self.deps.workflows.hand_off(workflow_id, execution_arn=started.execution_arn, state_machine_arn=machine,
                                        state_machine_type="STANDARD", head_execution_arn=payload.get("execution_id"),
                                        handed_off_because=summary):
            self._audit("workflow.handed_off", wf, status="RUNNING",
                        data={"execution_arn": started.execution_arn, "from_execution": payload.get("execution_id"),
                              "state_machine_arn": machine, **summary})
        return {"workflow_id": workflow_id, "status": "RUNNING", "execution_arn": started.execution_arn}

    def complete(self, wf: dict[str, Any]) -> dict[str, Any]:
        # only created_at is read (for the duration): it never changes, an eventually consistent read will do
        meta = self.deps.workflows.get(wf["workflow_id"], consistent=False)
        duration = _duration_ms(meta)
        if self.deps.workflows.transition_workflow(wf["workflow_id"], "SUCCEEDED", finished_at=round(time.time(), 3),
                                                   duration=duration):
            people = people_involved(meta)
            self._audit("workflow.succeeded", wf, status="SUCCEEDED", duration=duration,
                        data={"automated": not people, "people": people})
            self._finished(wf, automated=not people)
        return {"workflow_id": wf["workflow_id"], "status": "SUCCEEDED"}

    def escalate(self, wf: dict[str, Any], failure: dict[str, Any] | None,
                 escalation: dict[str, Any]) -> dict[str, Any]:
        workflow_id = wf["workflow_id"]
        meta = self.deps.workflows.get(workflow_id) or {"nodes": {}}
        summary = _failure_summary(failure)
        nodes = meta.get("nodes", {})
        # ESCALATED too: a retried Escalate state finds the nodes the first attempt already moved on,
        # and must name the same failing node (so the same review id: counted once)
        # (not the parallel siblings an earlier attempt stopped: they did not fail, see below)
        failing = sorted(n for n, item in nodes.items()
                         if item["status"] in ("FAILED", "ESCALATED") and not item.get("stopped_by_failure"))
        running = sorted(n for n, item in nodes.items() if item["status"] == "RUNNING")
        if not failing and running:  # a task that timed out never wrote FAILED itself
            failing, running = running, []
            for node_id in failing:
                if self.deps.workflows.transition_node(workflow_id, node_id, "FAILED", error=summary):
                    self.metrics.add(spec.METRICS["node_failure"], 1, tenant=wf["tenant_id"],
                                     strategy=wf.get("strategy_id"))
                    self._audit("node.failed", wf, node_id=node_id, status="FAILED", data=summary)
        # every node settled here is audited too (a complete chain names every node's outcome); a sibling
        # stopped by the failure is node.stopped, not a failure of its own
        for node_id in running:  # parallel siblings stopped by the failure
            if self.deps.workflows.transition_node(workflow_id, node_id, "FAILED", stopped_by_failure=True,
                                                   error={"message": "stopped: another node failed"}):
                self._audit("node.stopped", wf, node_id=node_id, status="FAILED",
                            data={"reason": "another node failed"})
        for node_id, item in nodes.items():
            # audited like a node skipped by its `when`: otherwise `repair` finds the milestone missing
            if item["status"] == "PENDING" and self.deps.workflows.transition_node(
                    workflow_id, node_id, "SKIPPED", reason="upstream failure"):
                self._audit("node.skipped", wf, node_id=node_id, status="SKIPPED", data={"reason": "upstream failure"})
        node_id = failing[0] if failing else None
        generation = generation_of(wf)
        for failed in failing:  # a callback that never came: a late one is answered 409
            callback_id = callback_id_for(workflow_id, failed, generation)
            if self.deps.workflows.get_callback(callback_id) and self.deps.workflows.close_callback(callback_id,
                                                                                                "timed_out"):
                self._audit("callback.expired", wf, node_id=failed, status="FAILED",
                            data={"callback_id": callback_id, **summary})
        if summary.get("error") in DECIDED_BY_PEOPLE:
            return self._fail(wf, meta, node_id, summary)
        for failed in failing:
            self.deps.workflows.transition_node(workflow_id, failed, "ESCALATED")
        attempts = nodes.get(node_id, {}).get("attempts") if node_id else None
        tenant = self.deps.tenants.get(wf["tenant_id"]) or {}
        notify_to = list(escalation.get("notify") or []) + list(tenant.get("notify") or [])
        details = {"failing_node": node_id, "attempts": attempts, **summary}
        if self.deps.workflows.transition_workflow(workflow_id, "ESCALATED", escalation_reason="node_failed",
                                                   failure=details, finished_at=round(time.time(), 3),
                                                   duration=_duration_ms(meta)):
            self._audit("workflow.escalated", wf, node_id=node_id, status="ESCALATED",
                        escalation_reason="node_failed", duration=_duration_ms(meta), data=details)
            self._finished(wf, automated=False)
        result = escalate(self.deps, self.metrics, workflow_id=workflow_id, tenant_id=wf["tenant_id"],
                          event_id=wf.get("event_id"), reason="node_failed", queue=escalation.get("queue", "ops"),
                          notify_to=notify_to, details=details, strategy_id=wf.get("strategy_id"), node_id=node_id,
                          traceparent=wf.get("traceparent", ""), generation=generation)
        return {"workflow_id": workflow_id, "status": "ESCALATED", **result}

    def _fail(self, wf: dict[str, Any], meta: dict[str, Any], node_id: str | None,
              summary: dict[str, Any]) -> dict[str, Any]:
        details = {"failing_node": node_id, **summary}
        if self.deps.workflows.transition_workflow(wf["workflow_id"], "FAILED", failure=details,
                                                   failure_reason="review_rejected",
                                                   finished_at=round(time.time(), 3), duration=_duration_ms(meta)):
            self._audit("workflow.failed", wf, node_id=node_id, status="FAILED", duration=_duration_ms(meta),
                        data={"reason": "review_rejected", **details})
            self._finished(wf, automated=False)
        return {"workflow_id": wf["workflow_id"], "status": "FAILED", "reason": "review_rejected"}
