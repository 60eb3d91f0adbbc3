"""Express executions' history, read from the state machines' CloudWatch Logs log group.

Step Functions keeps no history for Express executions: ``DescribeExecution`` and
``GetExecutionHistory`` do not serve them (https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html);
their history exists only as the log records the state machine's logging configuration sends to
CloudWatch Logs (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html). One record per
history event, JSON: ``id``, ``type``, ``details``, ``previous_event_id``, ``event_timestamp``
(milliseconds, a string), ``execution_arn``, ``redrive_count``; streams are named
``states/<state machine>/<date>/<id>`` (tests/aws_examples/ holds AWS's own records).

:func:`read_express_history` finds an execution's records (stream prefix of its state machine, a quoted
term on its ARN, a time window) and returns them in the shape of ``GetExecutionHistory`` events (the
``details`` object under ``<type>EventDetails``, as the API names it), plus the status the last event
means. What the log level leaves out (``ERROR`` logs failures only) is simply absent; delivery is best
effort and can lag by seconds, so a running or just-finished execution may show fewer events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EXPRESS_ARN_MARK = ":express:"
MAX_RECORDS = 25_000  # Step Functions' own history limit per execution
TERMINAL = {"ExecutionSucceeded": "SUCCEEDED", "ExecutionFailed": "FAILED", "ExecutionTimedOut": "TIMED_OUT",
            "ExecutionAborted": "ABORTED"}


def is_express_execution(execution_arn: str | None) -> bool:
    """Express execution ARNs are ``arn:<partition>:states:<region>:<account>:express:<machine>:<name>:<id>``."""
    return EXPRESS_ARN_MARK in (execution_arn or "")


def machine_name(execution_arn: str) -> str:
    return execution_arn.split(EXPRESS_ARN_MARK, 1)[1].split(":", 1)[0]


def machine_arn(execution_arn: str) -> str:
    """The state machine of an Express execution ARN."""
    head, tail = execution_arn.split(EXPRESS_ARN_MARK, 1)
    return f"{head}:stateMachine:{tail.split(':', 1)[0]}"


def details_key(event_type: str) -> str:
    """The ``GetExecutionHistory`` key of a type's details: every ``*StateEntered`` type shares
    ``stateEnteredEventDetails`` (and ``*StateExited`` ``stateExitedEventDetails``); the others are
    named after their type (``TaskScheduled`` -> ``taskScheduledEventDetails``)."""
    if event_type.endswith("StateEntered"):
        return "stateEnteredEventDetails"
    if event_type.endswith("StateExited"):
        return "stateExitedEventDetails"
    return event_type[:1].lower() + event_type[1:] + "EventDetails"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def history_event(record: dict[str, Any]) -> dict[str, Any]:
    """One log record as a ``GetExecutionHistory`` event (id, previousEventId, timestamp, type, details)."""
    event_type = str(record.get("type") or "")
    millis = _int(record.get("event_timestamp"))
    event: dict[str, Any] = {"id": _int(record.get("id")) or 0, "previousEventId": _int(record.get("previous_event_id")) or 0,
                             "timestamp": datetime.fromtimestamp(millis / 1000, UTC) if millis is not None else None,
                             "type": event_type}
    details = record.get("details")
    if isinstance(details, dict) and details:
        event[details_key(event_type)] = details
    return event


@dataclass
class ExpressHistory:
    execution_arn: str
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str | None:
        """SUCCEEDED / FAILED / TIMED_OUT / ABORTED from the last terminal event, RUNNING when the execution
        started and has not ended (as far as the records delivered so far say), None without records."""
        for event in reversed(self.events):
            if event["type"] in TERMINAL:
                return TERMINAL[event["type"]]
        return "RUNNING" if self.events else None

    @property
    def input(self) -> dict[str, Any]:
        """The execution's input (logged only with includeExecutionData)."""
        for event in self.events:
            text = (event.get("executionStartedEventDetails") or {}).get("input")
            if isinstance(text, str):
                try:
                    value = json.loads(text)
                except ValueError:
                    return {}
                return value if isinstance(value, dict) else {}
        return {}

    @property
    def started(self) -> datetime | None:
        return next((e["timestamp"] for e in self.events if e["type"] == "ExecutionStarted"), None)

    @property
    def stopped(self) -> datetime | None:
        return next((e["timestamp"] for e in reversed(self.events) if e["type"] in TERMINAL), None)

    @property
    def error(self) -> str | None:
        for event in self.events:
            details = event.get("executionFailedEventDetails") or {}
            if details.get("error"):
                return str(details["error"])
        return None


WINDOW_BEFORE_S = 300  # the workflow item is written just before the start
WINDOW_AFTER_S = 3600  # Express runs at most 5 minutes; records arrive within minutes (best effort)


def read_express_history(logs: Any, log_group: str, execution_arn: str, started_after: float | None = None
                         ) -> ExpressHistory:
    """Every log record of one Express execution, oldest first, as history events. ``started_after``
    (epoch seconds, e.g. when the workflow item was created) bounds the scan to the hour after it."""
    if started_after is None:
        return read_records(logs, log_group, execution_arn)
    return read_records(logs, log_group, execution_arn, int((started_after - WINDOW_BEFORE_S) * 1000),
                        int((started_after + WINDOW_AFTER_S) * 1000))


def read_records(logs: Any, log_group: str, execution_arn: str, start_ms: int | None = None,
                 end_ms: int | None = None) -> ExpressHistory:
    kwargs: dict[str, Any] = {"logGroupName": log_group, "filterPattern": f'"{execution_arn}"',
                              "logStreamNamePrefix": f"states/{machine_name(execution_arn)}/"}
    if start_ms is not None:
        kwargs["startTime"] = int(start_ms)
    if end_ms is not None:
        kwargs["endTime"] = int(end_ms)
    records: dict[int, dict[str, Any]] = {}
    for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
        for line in page.get("events", []):
            try:
                record = json.loads(line.get("message") or "")
            except ValueError:
                continue  # not a Step Functions record
            if isinstance(record, dict) and record.get("execution_arn") == execution_arn:
                records[_int(record.get("id")) or 0] = record  # a record delivered twice is kept once
        if len(records) >= MAX_RECORDS:
            break
    return ExpressHistory(execution_arn, [history_event(records[i]) for i in sorted(records)])
