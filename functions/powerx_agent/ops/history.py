"""The execution-history reader: what a Step Functions execution says happened to a workflow's
nodes (used by ``repair`` and the orchestration view).

:func:`load_history` reads an execution, every page of its history and its state machine's
definition; :class:`History` interprets them: the workflow status the execution's status means, and
each node's status from its task results (following ``previousEventId`` back to the state, so
parallel branches stay apart).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from powerx_agent.taskflow.asl import SKIPPED_AT_MATCH

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

EXEC_TO_WF = {"SUCCEEDED": "SUCCEEDED", "FAILED": "FAILED", "TIMED_OUT": "FAILED", "ABORTED": "STOPPED"}
ESCALATED_ERROR = "Agent.WorkflowEscalated"  # the Fail state the compiled flow ends in after Escalate
TASK_RESULTS = {"TaskSucceeded": "SUCCEEDED", "TaskFailed": "FAILED", "TaskTimedOut": "FAILED",
                "TaskSubmitFailed": "FAILED", "TaskStartFailed": "FAILED"}


def node_ids_from_definition(definition: dict[str, Any]) -> list[str]:
    """The node ids of a compiled flow: Task states whose Payload has ``action: run``, and the ``Pass``
    states an Express head has for the nodes skipped at match time."""
    found: list[str] = []

    def walk(states: dict[str, Any]) -> None:
        for state in states.values():
            payload = (state.get("Parameters") or {}).get("Payload") or {}
            node = payload.get("node") if isinstance(payload, dict) and payload.get("action") == "run" else None
            result = state.get("Result") if state.get("Type") == "Pass" else None
            if isinstance(result, dict) and result.get("action") == SKIPPED_AT_MATCH:
                node = {"id": result.get("node_id")}
            if isinstance(node, dict) and node.get("id") and node["id"] not in found:
                found.append(node["id"])
            for branch in state.get("Branches", ()):
                walk(branch.get("States", {}))
    walk(definition.get("States", {}))
    return found


@dataclass
class History:
    status: str | None
    events: list[dict[str, Any]]
    input: dict[str, Any]
    definition: dict[str, Any]
    state_machine_arn: str | None = None
    error: str | None = None

    def workflow_status(self) -> str:
        """The workflow status the execution's status means: RUNNING → RUNNING, SUCCEEDED →
        SUCCEEDED, FAILED in the flow's ``Escalated`` Fail state → ESCALATED, other FAILED /
        TIMED_OUT → FAILED, ABORTED → STOPPED."""
        if self.status == "RUNNING":
            return "RUNNING"
        if self.status == "FAILED" and self.failure_error() == ESCALATED_ERROR:
            return "ESCALATED"
        return EXEC_TO_WF.get(str(self.status), "FAILED")

    def failure_error(self) -> str | None:
        for event in self.events:
            details = event.get("executionFailedEventDetails")
            if details and details.get("error"):
                return str(details["error"])
        return self.error

    def task_results(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """State name → (SUCCEEDED | FAILED, Lambda payload) of the last task result inside that
        state, found by following ``previousEventId`` back to the ``TaskStateEntered`` event (the
        ids keep parallel branches apart). Empty when the history carries no event ids."""
        by_id = self._by_id()
        results: dict[str, tuple[str, dict[str, Any]]] = {}
        for event in self.events:
            result = TASK_RESULTS.get(str(event.get("type")))
            if result is None or event.get("id") is None:
                continue
            name = self._task_state(event, by_id)
            if not name:
                continue
            payload: dict[str, Any] = {}
            output = (event.get("taskSucceededEventDetails") or {}).get("output")
            if output:
                try:
                    payload = (json.loads(output) or {}).get("Payload") or {}
                except (ValueError, AttributeError):
                    payload = {}
            results[name] = (result, payload if isinstance(payload, dict) else {})
        return results

    def _by_id(self) -> dict[Any, dict[str, Any]]:
        return {e.get("id"): e for e in self.events if e.get("id") is not None}

    @staticmethod
    def _task_state(event: dict[str, Any], by_id: dict[Any, dict[str, Any]]) -> str | None:
        """The task state an event belongs to: ``previousEventId`` followed back to ``TaskStateEntered``."""
        cursor, hops = event, 0
        while cursor is not None and hops < 10_000:
            entered = cursor.get("stateEnteredEventDetails")
            if entered and cursor.get("type") == "TaskStateEntered":
                return str(entered.get("name") or "") or None
            cursor, hops = by_id.get(cursor.get("previousEventId")), hops + 1
        return None

    def task_payloads(self) -> dict[str, dict[str, Any]]:
        """State name → the Lambda payload last scheduled in that state (what the node step was given)."""
        by_id = self._by_id()
        payloads: dict[str, dict[str, Any]] = {}
        for event in self.events:
            details = event.get("taskScheduledEventDetails")
            if not details or event.get("id") is None:
                continue
            name = self._task_state(event, by_id)
            try:
                payload = (json.loads(details.get("parameters") or "{}") or {}).get("Payload")
            except (ValueError, AttributeError):
                payload = None
            if name and isinstance(payload, dict):
                payloads[name] = payload
        return payloads

    def node_status(self, node_id: str) -> str | None:
        """SUCCEEDED / SKIPPED / FAILED from the node's task results, RUNNING when its state was
        entered without a result yet, None when it was never entered."""
        results = self.task_results()
        skipped = f"{node_id}.skipped"
        if results:
            # a Standard flow's skip task, or an Express head's Pass state (no task result of its own)
            if results.get(skipped, ("",))[0] == "SUCCEEDED" or (skipped not in results and skipped in self.exited()):
                return "SKIPPED"
            if node_id in results:
                result, payload = results[node_id]
                if result == "SUCCEEDED":
                    return str(payload.get("status")) if payload.get("status") in ("SUCCEEDED", "SKIPPED") \
                        else "SUCCEEDED"
                # a failed attempt followed by a retry still running is not the node's outcome yet
                return "FAILED" if node_id in self.exited() or self.status != "RUNNING" else "RUNNING"
            return "RUNNING" if node_id in self.entered() else None
        exited, entered = self.exited(), self.entered()
        if f"{node_id}.skipped" in exited:
            return "SKIPPED"
        if node_id in exited:
            return "SUCCEEDED"
        if node_id in entered:
            return "RUNNING"
        return None

    def exited(self) -> set[str]:
        names = set()
        for event in self.events:
            details = event.get("stateExitedEventDetails")
            if details and details.get("name"):
                names.add(details["name"])
        return names

    def entered(self) -> set[str]:
        return {e["stateEnteredEventDetails"]["name"] for e in self.events if e.get("stateEnteredEventDetails")}

    def node_outcome(self, node_id: str) -> str | None:
        """The node's outcome once the execution has ended (entered without a result → FAILED)."""
        status = self.node_status(node_id)
        return "FAILED" if status == "RUNNING" else status

    def started_at(self) -> str | None:
        for event in self.events:
            if event.get("type") == "ExecutionStarted":
                return _ts(event.get("timestamp"))
        return None


def _ts(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def load_history(deps: Deps, execution_arn: str, started_after: float | None = None) -> History | None:
    """The execution's status, events, input and definition. An Express execution's come from the state
    machines' log group (status ``UNKNOWN`` while no record says more); ``started_after`` (the
    workflow's creation time) bounds that search."""
    record = deps.state_machines.record(execution_arn, started_after)
    if record is None:
        return None
    described = record.described
    return History(described.get("status"), record.events, json.loads(described.get("input") or "{}"),
                   record.definition, described.get("stateMachineArn"), described.get("error"))
