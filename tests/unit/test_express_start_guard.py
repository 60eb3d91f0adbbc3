"""A redelivered match message never starts a second Express execution for one event.

Express StartExecution does not deduplicate by execution name: every start runs
(https://docs.aws.amazon.com/step-functions/latest/dg/express-at-least-once-execution.html). The fake
state machines port (powerx_agent.testing) behaves so for EXPRESS machines, and moto does not (it refuses a
second name as for Standard), so the guard is proven here, counting every start.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from powerx_agent.errors import RetryableError
from powerx_agent.handoffs.match import MatchMessage
from powerx_agent.ingest.service import Ingestor, workflow_id_for
from powerx_agent.match.service import Matcher
from powerx_agent.testing.fakes import FakeDeps, bus_event


def _failed_job(suffix: str) -> dict[str, Any]:
    # ticket-on-job-failed: no node waits for a callback, worst case well under 5 minutes -> EXPRESS
    return {"tenant_id": "acme", "event_id": f"evt-fail{suffix}", "idempotency_key": f"job-9:failed{suffix}",
            "occurred_at": "2026-11-28T10:00:00Z", "context": {"actor": "svc-jobs"},
            "payload": {"job": {"id": "9", "type": "report", "retriable": False}, "error": {"message": "disk full"}}}


def _match_message(deps: FakeDeps, suffix: str) -> dict[str, Any]:
    Ingestor(deps, deps.metrics()).handle(bus_event("plugin.job.failed", _failed_job(suffix), "powerx.plugins"))
    (body,) = deps.queues.drain(deps.settings.match_queue_url)
    return json.loads(body)


def _match(deps: FakeDeps, message: dict[str, Any]) -> dict[str, Any]:
    return Matcher(deps, deps.metrics()).handle(MatchMessage.parse(json.dumps(message)).to_dict())


@pytest.fixture()
def deps() -> FakeDeps:
    return FakeDeps.create()


def test_given_the_fake_when_an_express_machine_is_started_twice_with_one_name_then_two_executions_run(deps):
    # what AWS does, and what the guard is for
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:agent-x"
    deps.state_machines.machines[arn] = {"definition": "{}", "type": "EXPRESS", "strategy": "x@v1"}
    first = deps.state_machines.start(arn, "wf-1", "{}")
    second = deps.state_machines.start(arn, "wf-1", "{}")
    assert first.execution_arn != second.execution_arn and not second.already
    assert ":express:agent-x:wf-1:" in first.execution_arn


def test_given_an_express_match_message_delivered_again_after_it_completed_when_matched_then_no_second_start(deps):
    message = _match_message(deps, "-g1")
    first = _match(deps, message)
    assert first["outcome"] == "started" and ":express:" in first["execution_arn"]
    assert _match(deps, message)["outcome"] == "already_done"
    assert [name for _, name in deps.state_machines.start_calls] == [first["workflow_id"]]  # StartExecution called once


def test_given_the_first_delivery_died_after_starting_when_redelivered_then_a_duplicate_without_a_start(deps):
    message = _match_message(deps, "-g5")
    finish = deps.events.finish

    def die(*_: Any, **__: Any) -> None:
        raise RuntimeError("the matcher died after StartExecution, before completing the event")

    deps.events.finish = die
    with pytest.raises(RuntimeError):
        _match(deps, message)
    deps.events.finish = finish
    (started,) = deps.state_machines.start_calls
    again = _match(deps, message)  # the event is still IN_PROGRESS: only the guard stands in the way
    assert again["outcome"] == "already_started" and ":express:" in again["execution_arn"]
    assert deps.state_machines.start_calls == [started]
    assert deps.events.get("acme", "job-9:failed-g5")["status"] == "COMPLETED"


def test_given_redeliveries_racing_the_first_delivery_when_matched_then_still_one_start(deps):
    message = _match_message(deps, "-g2")
    results: list[Any] = []

    def deliver() -> None:
        try:
            results.append(_match(deps, message)["outcome"])
        except RetryableError as exc:  # a delivery that saw the workflow before its start was recorded
            results.append(exc.code)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(deps.state_machines.start_calls) == 1
    assert results.count("started") == 1
    assert set(results) <= {"started", "already_started", "already_done", "express.start_unconfirmed"}
    # a retried delivery of those that were told to come back completes as a duplicate, without a start
    assert _match(deps, message)["outcome"] in ("already_started", "already_done") and len(deps.state_machines.start_calls) == 1


def test_given_the_first_delivery_died_before_starting_when_redelivered_then_retried_and_never_started(deps):
    message = _match_message(deps, "-g3")
    real = deps.state_machines.start

    def crash(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the matcher died here")  # after the workflow item, before the start

    deps.state_machines.start = crash
    with pytest.raises(RuntimeError):
        _match(deps, message)
    deps.state_machines.start = real
    with pytest.raises(RetryableError) as refused:
        _match(deps, message)
    assert refused.value.code == "express.start_unconfirmed"
    assert deps.state_machines.start_calls == []  # not started a second time, nor at all: the DLQ and the runbook take over
    workflow = deps.workflows.get(workflow_id_for("acme", "job-9:failed-g3"))
    assert workflow["status"] == "PENDING" and not workflow.get("execution_arn")


def test_given_a_standard_match_message_redelivered_before_it_completed_then_step_functions_deduplicates(deps):
    from powerx_agent.local.demo import c1_event

    large = c1_event("-g4")
    large["payload"]["job"]["rows"] = 250_000  # its approve node waits for a person: Standard
    Ingestor(deps, deps.metrics()).handle(bus_event("plugin.job.completed", large, "powerx.plugins"))
    (body,) = deps.queues.drain(deps.settings.match_queue_url)
    finish = deps.events.finish

    def die(*_: Any, **__: Any) -> None:
        raise RuntimeError("the matcher died after StartExecution, before completing the event")

    deps.events.finish = die
    with pytest.raises(RuntimeError):
        _match(deps, json.loads(body))
    deps.events.finish = finish
    again = _match(deps, json.loads(body))
    assert again["outcome"] == "started" and ":execution:" in again["execution_arn"]
    assert len(deps.state_machines.start_calls) == 2  # Standard: the start is repeated ...
    assert len(deps.state_machines.executions) == 1  # ... and Step Functions refuses the second one of that name


def test_given_a_stuck_match_message_when_read_by_the_replay_command_then_it_is_the_original_event(deps):
    # the runbook's way out when the start was lost: stop the workflow, replay its message with --new-key
    from powerx_agent.ops.replay import read_lines, with_new_key

    message = _match_message(deps, "-g6")
    (item,), problems = read_lines([json.dumps(message)])
    assert problems == []
    assert (item.event["source"], item.event["detail-type"]) == ("powerx.plugins", "plugin.job.failed")
    assert item.event["detail"]["idempotency_key"] == "job-9:failed-g6"
    assert with_new_key(item, 1).event["detail"]["idempotency_key"] != "job-9:failed-g6"
