"""Every log line is a Powertools JSON line carrying the unit of work's tenant, event, workflow and
traceparent; the W3C trace and the X-Ray trace name each other (powerx_agent.telemetry)."""

from __future__ import annotations

import ast
import dataclasses
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from powerx_agent import telemetry
from powerx_agent.errors import RetryableError
from powerx_agent.ingest.service import Ingestor, workflow_id_for
from powerx_agent.local.demo import TRACEPARENT, c1_event, c2_event
from powerx_agent.match.service import Matcher
from powerx_agent.nodes.runner import NodeRunner
from powerx_agent.testing.fakes import FakeDeps, bus_event, fake_http

PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "powerx_agent"
XRAY_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


class Lines:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    def find(self, message: str) -> dict[str, Any]:
        found = [line for line in self.all() if line["message"] == message]
        assert found, f"no line {message!r} in {[line['message'] for line in self.all()]}"
        return found[-1]


@pytest.fixture()
def lines() -> Iterator[Lines]:
    handler = telemetry.logger.registered_handler
    stream, level = io.StringIO(), telemetry.logger.log_level
    previous = handler.setStream(stream)
    telemetry.logger.setLevel("INFO")
    try:
        yield Lines(stream)
    finally:
        handler.setStream(previous)
        telemetry.logger.setLevel(level)
        assert telemetry.logger.thread_safe_get_current_keys() == {}, "a unit of work left its keys behind"


@pytest.fixture()
def deps() -> FakeDeps:
    return FakeDeps.create()


def ingest_and_match(deps: FakeDeps, detail: dict[str, Any], event_type: str, source: str) -> list[dict[str, Any]]:
    Ingestor(deps, deps.metrics()).handle(bus_event(event_type, detail, source))
    return [Matcher(deps, deps.metrics()).handle(json.loads(body))
            for body in deps.queues.drain(deps.settings.match_queue_url)]


def node_payload(deps: FakeDeps, execution_arn: str, node_id: str) -> dict[str, Any]:
    """The payload the state machine gives a node's function: read from the compiled definition."""
    execution = deps.state_machines.executions[execution_arn]
    definition = json.loads(deps.state_machines.machines[execution["stateMachineArn"]]["definition"])
    execution_input = json.loads(execution["input"])
    todo: list[Any] = [definition]
    while todo:
        value = todo.pop()
        if isinstance(value, dict):
            payload = (value.get("Parameters") or {}).get("Payload") or {}
            if (payload.get("node") or {}).get("id") == node_id:
                return {"action": "run", "node": payload["node"], "workflow": execution_input["workflow"],
                        "variables": execution_input["variables"], "retry_count": 0}
            todo.extend(value.values())
        elif isinstance(value, list):
            todo.extend(value)
    raise AssertionError(f"no task for node {node_id}")


def test_given_c1_when_ingested_matched_and_its_first_node_run_then_every_line_carries_the_units_keys(
        deps: FakeDeps, lines: Lines) -> None:
    (matched,) = ingest_and_match(deps, c1_event("-log1"), "plugin.job.completed", "powerx.plugins")
    with fake_http():
        NodeRunner(deps, deps.metrics()).run(node_payload(deps, matched["execution_arn"], "render"),
                                             expected_kind="plugin")
    workflow_id = workflow_id_for("acme", "job-42:completed-log1")
    trace_id = TRACEPARENT.split("-")[1]
    for message in ("event accepted", "match started", "node succeeded"):
        line = lines.find(message)
        assert line["service"] == "powerx-agent" and line["level"] == "INFO"
        assert (line["tenant_id"], line["event_id"], line["workflow_id"]) == ("acme", "evt-c1-log1", workflow_id)
        # the caller's trace continues: same trace id, a span of our own
        assert line["traceparent"].split("-")[1] == trace_id and line["traceparent"] != TRACEPARENT
    assert lines.find("match started")["strategy_id"] == "report-on-job-completed"
    node = lines.find("node succeeded")
    assert (node["node_id"], node["node_kind"]) == ("render", "plugin")


def test_given_an_unmatched_event_when_matched_then_the_escalation_is_a_warning_with_its_reason(
        deps: FakeDeps, lines: Lines) -> None:
    with fake_http():
        ingest_and_match(deps, c2_event("-log2"), "tenant.request.pending", "powerx.tenants")
    line = lines.find("event escalated: no_strategy_matched")
    assert line["level"] == "WARNING" and line["tenant_id"] == "acme" and line["review_id"].startswith("rv-")
    assert line["workflow_id"] == workflow_id_for("acme", "req-7:pending-log2")


def test_given_a_rejected_event_when_ingested_then_one_warning_names_the_code_and_no_unvalidated_key(
        deps: FakeDeps, lines: Lines) -> None:
    detail = {**c1_event("-log3"), "tenant_id": "nobody", "context": {"traceparent": "not-a-traceparent"}}
    Ingestor(deps, deps.metrics()).handle(bus_event("plugin.job.completed", detail, "powerx.plugins"))
    line = lines.find("event rejected: tenant.unknown")
    assert line["level"] == "WARNING" and line["code"] == "tenant.unknown"
    assert "traceparent" not in line  # a malformed caller value is not repeated on every line


def test_given_no_traceparent_when_ingested_in_an_xray_trace_then_the_w3c_trace_is_the_xray_trace(
        deps: FakeDeps, lines: Lines, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", XRAY_HEADER)
    detail = {**c1_event("-log4"), "context": {"actor": "portal"}}
    ingest_and_match(deps, detail, "plugin.job.completed", "powerx.plugins")
    accepted = lines.find("event accepted")
    # X-Ray 1-5759e988-bd862e3fe1be46a994272793 is W3C 5759e988bd862e3fe1be46a994272793: one id, two systems
    assert accepted["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert accepted["traceparent"].split("-")[1] == "5759e988bd862e3fe1be46a994272793"
    workflow_id = workflow_id_for("acme", "job-42:completed-log4")
    (record,) = [r for r in deps.audit.chain(f"WF#{workflow_id}") if r["kind"] == "event.accepted"]
    assert record["data"]["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert deps.workflows.get(workflow_id)["traceparent"] == accepted["traceparent"]


def test_given_a_caller_traceparent_when_ingested_in_an_xray_trace_then_the_callers_trace_is_kept(
        deps: FakeDeps, lines: Lines, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", XRAY_HEADER)
    ingest_and_match(deps, c1_event("-log5"), "plugin.job.completed", "powerx.plugins")
    accepted = lines.find("event accepted")
    assert accepted["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
    assert accepted["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"  # both ids on one line


def test_given_a_unit_that_fails_when_it_ends_then_the_failure_is_logged_once_with_its_keys_and_they_are_gone(
        lines: Lines) -> None:
    telemetry.bind(request="outer")
    try:
        with pytest.raises(RetryableError), telemetry.work("node", tenant_id="acme", workflow_id="wf-1"):
            raise RetryableError("downstream busy", code="downstream.unavailable")
        with pytest.raises(KeyError), telemetry.work("match", tenant_id="globex"):
            raise KeyError("event")
        assert telemetry.logger.thread_safe_get_current_keys() == {"request": "outer"}  # the outer keys return
    finally:
        telemetry.logger.thread_safe_clear_keys()
    typed, unexpected = lines.all()
    assert typed["level"] == "WARNING" and typed["error_code"] == "downstream.unavailable" and typed["retryable"]
    assert (typed["tenant_id"], typed["workflow_id"], typed["request"]) == ("acme", "wf-1", "outer")
    assert "exception" not in typed  # an engine error's code says it all; no traceback
    assert unexpected["level"] == "ERROR" and unexpected["tenant_id"] == "globex"
    assert "KeyError" in unexpected["exception"] and "workflow_id" not in unexpected


def test_given_a_library_that_cannot_load_when_matched_then_the_error_is_a_log_line_not_a_print(
        lines: Lines, capfd: pytest.CaptureFixture[str]) -> None:
    deps = FakeDeps.create()
    deps.settings = dataclasses.replace(deps.settings, library_source="dir", strategies_dir="/nonexistent/strategies")
    with pytest.raises(Exception):  # noqa: B017 - no library was ever loaded: nothing to serve
        Matcher(deps, deps.metrics()).library()
    assert lines.find("strategy library not loaded; serving the last good one")["level"] == "ERROR"
    assert capfd.readouterr().out == ""


def test_given_the_engine_code_when_read_then_nothing_but_the_console_script_prints():
    # the console script (cli/) and the embedded runtime's terminal output (local/) print; the engine logs
    printing = []
    for path in PACKAGE.rglob("*.py"):
        if {"cli", "local"} & set(path.relative_to(PACKAGE).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                printing.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert printing == []


def test_given_the_handlers_when_read_then_each_one_is_traced_and_logs_with_the_lambda_context():
    for path in (PACKAGE / "handlers").glob("*.py"):
        if path.name.startswith("_"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        (handler,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "handler"]
        decorators = [ast.unparse(d) for d in handler.decorator_list]
        assert decorators == ["logger.inject_lambda_context(clear_state=True)",
                              "tracer.capture_lambda_handler(capture_response=False)"], path.name
