"""An Express head's hand-off to its Standard machine, on the fakes: started once however often the head
(at-least-once) asks, recorded once, and the continuation numbers the failed node's attempts on."""

from __future__ import annotations

import json
import threading
import time

import pytest

from powerx_agent.errors import AttemptsExhausted
from powerx_agent.ingest.service import Ingestor
from powerx_agent.local.demo import c1_event
from powerx_agent.match.service import Matcher
from powerx_agent.nodes.runner import NodeRunner
from powerx_agent.nodes.workflow import WorkflowActions
from powerx_agent.testing.fakes import FakeDeps, bus_event


@pytest.fixture()
def deps() -> FakeDeps:
    return FakeDeps.create()


def _started_on_head(deps: FakeDeps) -> tuple[dict, dict]:
    Ingestor(deps, deps.metrics()).handle(bus_event("plugin.job.completed", c1_event("-h1"), "powerx.plugins"))
    (body,) = deps.queues.drain(deps.settings.match_queue_url)
    started = Matcher(deps, deps.metrics()).handle(json.loads(body))
    execution = deps.state_machines.executions[started["execution_arn"]]
    return started, json.loads(execution["input"])


def test_given_a_head_whose_node_needs_a_retry_when_handed_off_twice_then_one_standard_execution_and_one_record(
        deps: FakeDeps) -> None:
    started, head_input = _started_on_head(deps)
    workflow_id = started["workflow_id"]
    deps.workflows.transition_node(workflow_id, "render", "RUNNING", attempts=1)  # its first attempt failed
    payload = {"action": "hand_off", **head_input, "execution_id": started["execution_arn"],
               "failure": {"Error": "HandOff", "Cause": json.dumps({"errorMessage": "attempt 1 of 3 failed"})}}
    actions = WorkflowActions(deps, deps.metrics())
    first = actions.handle(json.loads(json.dumps(payload)))
    again = actions.handle(json.loads(json.dumps(payload)))  # Express runs a state at least once

    standard = head_input["continuation"]
    assert deps.state_machines.machines[standard]["type"] == "STANDARD"
    assert first["execution_arn"] == again["execution_arn"] == f"{standard.replace(':stateMachine:', ':execution:')}:{workflow_id}"
    assert [machine for machine, _ in deps.state_machines.start_calls].count(standard) == 2
    assert len([a for a in deps.state_machines.executions if a.startswith(standard.replace(":stateMachine:", ":execution:"))]) == 1
    continuation = json.loads(deps.state_machines.executions[first["execution_arn"]]["input"])
    assert continuation["workflow"]["attempts_before"] == {"render": 1}
    assert "continuation" not in continuation and continuation["when"] == head_input["when"]

    meta = deps.workflows.get(workflow_id)
    assert meta["execution_arn"] == first["execution_arn"] and meta["head_execution_arn"] == started["execution_arn"]
    assert meta["state_machine_arn"] == standard and meta["state_machine_type"] == "STANDARD"
    kinds = [r["kind"] for r in deps.audit.chain(f"WF#{workflow_id}")]
    assert kinds.count("workflow.handed_off") == 1


def test_given_a_workflow_already_finished_when_a_late_hand_off_comes_then_nothing_is_recorded(deps: FakeDeps) -> None:
    started, head_input = _started_on_head(deps)
    workflow_id = started["workflow_id"]
    deps.workflows.transition_workflow(workflow_id, "RUNNING")
    deps.workflows.transition_workflow(workflow_id, "ESCALATED")
    WorkflowActions(deps, deps.metrics()).handle({"action": "hand_off", **head_input,
                                                  "execution_id": started["execution_arn"], "failure": {}})
    meta = deps.workflows.get(workflow_id)
    assert meta["status"] == "ESCALATED" and "handed_off_at" not in meta
    assert head_input["continuation"] not in [machine for machine, _ in deps.state_machines.start_calls]
    assert "workflow.handed_off" not in [r["kind"] for r in deps.audit.chain(f"WF#{workflow_id}")]


class _Downstream:
    """Records any downstream call: the continuation must make none for a node whose attempts are spent."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def notify(self, body: dict, headers: dict) -> None:
        self.calls.append(headers["Idempotency-Key"])


def _continuation_of_a_spent_node(deps: FakeDeps, timeout: float) -> tuple[str, dict]:
    """tell-owner (one attempt, no retry) is still running in the Express head when its parallel sibling
    hands the workflow off: the continuation reaches it with that one attempt already made."""
    started, head_input = _started_on_head(deps)
    workflow_id = started["workflow_id"]
    deps.workflows.transition_node(workflow_id, "tell-owner", "RUNNING", attempts=1)
    payload = {"workflow": {**head_input["workflow"], "attempts_before": {"tell-owner": 1}},
               "variables": head_input["variables"],
               "node": {"id": "tell-owner", "kind": "notify", "timeout": timeout, "input": {},
                        "notify": {"to": "owner@acme.example", "template": "report-ready"}}}
    return workflow_id, payload


def _settle_later(deps: FakeDeps, workflow_id: str, status: str, **fields: object) -> threading.Thread:
    def head() -> None:
        time.sleep(0.2)
        deps.workflows.transition_node(workflow_id, "tell-owner", status, **fields)

    thread = threading.Thread(target=head)
    thread.start()
    return thread


def test_given_a_spent_node_still_running_in_the_head_when_the_head_attempt_fails_then_the_continuation_escalates_without_calling_again(
        deps: FakeDeps) -> None:
    workflow_id, payload = _continuation_of_a_spent_node(deps, timeout=30)
    runner = NodeRunner(deps, deps.metrics())
    runner.downstream = _Downstream()  # type: ignore[assignment]
    head = _settle_later(deps, workflow_id, "FAILED", error={"code": "notify.failed"})
    with pytest.raises(AttemptsExhausted) as caught:
        runner.run(payload, expected_kind="notify")
    head.join()
    assert "made in the Express head, failed" in caught.value.message
    assert runner.downstream.calls == []  # type: ignore[attr-defined]
    assert deps.workflows.get_node(workflow_id, "tell-owner")["error"] == {"code": "notify.failed"}


def test_given_a_spent_node_still_running_in_the_head_when_the_head_attempt_succeeds_then_the_continuation_reuses_it(
        deps: FakeDeps) -> None:
    workflow_id, payload = _continuation_of_a_spent_node(deps, timeout=30)
    runner = NodeRunner(deps, deps.metrics())
    runner.downstream = _Downstream()  # type: ignore[assignment]
    head = _settle_later(deps, workflow_id, "SUCCEEDED", output={"sent": 1})
    result = runner.run(payload, expected_kind="notify")
    head.join()
    assert result == {"node_id": "tell-owner", "status": "SUCCEEDED", "reused": True}
    assert runner.downstream.calls == []  # type: ignore[attr-defined]


def test_given_a_spent_node_whose_head_attempt_never_settles_when_its_timeout_passes_then_it_is_failed_and_audited(
        deps: FakeDeps) -> None:
    workflow_id, payload = _continuation_of_a_spent_node(deps, timeout=0.3)
    runner = NodeRunner(deps, deps.metrics())
    runner.downstream = _Downstream()  # type: ignore[assignment]
    with pytest.raises(AttemptsExhausted) as caught:
        runner.run(payload, expected_kind="notify")
    assert "did not settle" in caught.value.message and runner.downstream.calls == []  # type: ignore[attr-defined]
    assert deps.workflows.get_node(workflow_id, "tell-owner")["status"] == "FAILED"
    failed = [r for r in deps.audit.chain(f"WF#{workflow_id}") if r["kind"] == "node.failed"]
    assert [r["node_id"] for r in failed] == ["tell-owner"]
