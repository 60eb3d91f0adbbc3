"""Express history from CloudWatch Logs records, fed with records AWS delivered (tests/aws_examples/)."""

from __future__ import annotations

import json
from pathlib import Path

from powerx_agent.adapters.execution_logs import (
    ExpressHistory,
    details_key,
    history_event,
    is_express_execution,
    machine_name,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "aws_examples"


def _records(name: str) -> list[dict]:
    return json.loads((EXAMPLES / name).read_text())


def test_given_awss_express_records_when_read_then_history_events_in_the_api_shape_and_succeeded():
    records = _records("sfn-express-log-records-succeeded.json")
    arn = records[0]["execution_arn"]
    assert is_express_execution(arn) and machine_name(arn) == "LoggingAndMaskingWorkflow"
    history = ExpressHistory(arn, [history_event(r) for r in records])
    assert [e["type"] for e in history.events] == ["ExecutionStarted", "PassStateEntered", "PassStateExited",
                                                   "ExecutionSucceeded"]
    assert history.status == "SUCCEEDED" and history.error is None
    assert history.events[1]["stateEnteredEventDetails"]["name"] == "LogInput"
    assert history.events[2]["stateExitedEventDetails"]["name"] == "LogInput"
    assert history.events[2]["previousEventId"] == 2
    assert history.events[0]["timestamp"].isoformat() == "2024-04-24T11:54:30.672000+00:00"
    assert history.input["order-id"] == "test-order-id"  # logged with execution data


def test_given_records_of_a_failed_execution_when_read_then_failed_with_its_error_and_no_input():
    records = _records("sfn-log-records-failed.json")
    history = ExpressHistory(records[0]["execution_arn"], [history_event(r) for r in records])
    assert history.status == "FAILED" and history.error == "SomeFailure"
    assert history.events[-1]["executionFailedEventDetails"]["cause"].startswith("This state machines raises")
    assert history.input == {}  # no execution data in these records
    assert history.events[0]["timestamp"] is None  # the recording replaced it; nothing breaks


def test_given_a_started_execution_without_its_end_when_read_then_running_and_without_records_unknown():
    first = _records("sfn-express-log-records-succeeded.json")[:2]
    assert ExpressHistory(first[0]["execution_arn"], [history_event(r) for r in first]).status == "RUNNING"
    assert ExpressHistory("arn:aws:states:r:1:express:m:n:u", []).status is None


def test_given_history_event_types_when_keyed_then_as_get_execution_history_names_their_details():
    assert details_key("TaskStateEntered") == details_key("PassStateEntered") == "stateEnteredEventDetails"
    assert details_key("ParallelStateExited") == "stateExitedEventDetails"
    assert details_key("LambdaFunctionScheduled") == "lambdaFunctionScheduledEventDetails"
    assert details_key("TaskSucceeded") == "taskSucceededEventDetails"
    assert details_key("ExecutionFailed") == "executionFailedEventDetails"
    assert not is_express_execution("arn:aws:states:us-east-1:123456789012:execution:agent-x:wf-1")
