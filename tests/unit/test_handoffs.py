"""The hand-offs between functions have one model each, and what the producers write validates.

- the ASL compiler's task payloads, resolved the way Step Functions resolves them, validate as
  ``NodeTask`` / the workflow tasks, for every strategy of the library;
- ingest's match message and the matcher's execution input validate and round-trip byte for byte;
- a hand-off that does not validate is refused with ``handoff.invalid``, naming fields, never echoing
  values, with a bounded message; hostile JSON is refused the same way, never with another error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerx_agent.errors import NodeInputError
from powerx_agent.handoffs import MAX_REPORTED_ERRORS, HandoffInvalid
from powerx_agent.handoffs.execution import ExecutionInput
from powerx_agent.handoffs.match import MatchMessage
from powerx_agent.handoffs.tasks import CompleteTask, EscalateTask, NodeTask, SkipTask, parse_workflow_task
from powerx_agent.ingest.service import Ingestor
from powerx_agent.local.demo import c1_event
from powerx_agent.match.service import Matcher
from powerx_agent.strategy.loader import load_file
from powerx_agent.taskflow.asl import FunctionArns, compile_flow
from powerx_agent.testing.fakes import FakeDeps, bus_event, fake_http

REPO = Path(__file__).resolve().parents[2]
ARNS = FunctionArns("arn:plugin", "arn:notify", "arn:review", "arn:workflow")
EXECUTION_INPUT = {
    "workflow": {"workflow_id": "wf-acme-1", "tenant_id": "acme", "event_id": "e-1", "idempotency_key": "k-1",
                 "event_type": "plugin.job.completed", "strategy_id": "s", "strategy_version": 3,
                 "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
    "variables": {"tenant": "acme", "job_id": "42"},
    "when": {},
    "failure": {"Error": "PluginRejected", "Cause": "{\"errorMessage\": \"no\"}"},
}
CONTEXT_OBJECT = {"State": {"RetryCount": 1}, "Execution": {"Id": "arn:aws:states:x:execution:m:wf-acme-1"},
                  "Task": {"Token": "token-1"}}


def _resolve(path: str) -> Any:
    """A reference path of a Parameters block, as Step Functions resolves it (the subset we emit)."""
    root, rest = (CONTEXT_OBJECT, path[3:]) if path.startswith("$$.") else (EXECUTION_INPUT, path[2:])
    value: Any = root
    for part in rest.split("."):
        value = value[part]
    return value


def _payload(parameters: dict[str, Any]) -> dict[str, Any]:
    return {k[:-2] if k.endswith(".$") else k: _resolve(v) if k.endswith(".$") else v for k, v in parameters.items()}


def _tasks(states: dict[str, Any]):
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        for branch in state.get("Branches", ()):
            yield from _tasks(branch["States"])


def _library() -> list[Path]:
    return sorted((REPO / "strategies").glob("*.yaml"))


@pytest.mark.parametrize("path", _library(), ids=lambda p: p.stem)
def test_given_a_library_strategy_when_compiled_then_every_task_payload_validates_as_its_handoff(path: Path):
    loaded, findings = load_file(path)
    assert loaded is not None, findings
    strategy = loaded.strategy
    compiled = compile_flow(strategy, ARNS)
    nodes = {n.id: n for n in strategy.flow.nodes}
    seen = set()
    for name, state in _tasks(compiled.definition["States"]):
        payload = _payload(state["Parameters"]["Payload"])
        if payload["action"] == "run":
            task = NodeTask.parse(payload)
            spec = nodes[task.node.id]
            seen.add(task.node.id)
            assert task.node.kind == spec.kind and task.node.plugin == spec.plugin and task.node.input == spec.input
            assert task.retry_count == 1 and task.execution_id and task.workflow.strategy_version == 3
            assert (task.task_token == "token-1") == spec.waits_for_callback
            assert (task.node.retry.attempts if task.node.retry else None) == (spec.retry.attempts if spec.retry else None)
        else:
            parsed = parse_workflow_task(payload)
            expected = {"skip": SkipTask, "complete": CompleteTask, "escalate": EscalateTask}[payload["action"]]
            assert isinstance(parsed, expected), name
            if isinstance(parsed, EscalateTask):
                assert parsed.escalation.queue == strategy.flow.on_failure.escalate.queue
                assert parsed.failure and parsed.failure["Error"] == "PluginRejected"
    assert seen == set(nodes)


def test_given_an_accepted_event_when_ingested_and_matched_then_both_handoffs_validate_and_round_trip():
    deps = FakeDeps.create()
    with fake_http():
        assert Ingestor(deps, deps.metrics()).handle(bus_event("plugin.job.completed", c1_event("-h"))).outcome \
            == "accepted"
        (body,) = deps.queues.drain(deps.settings.match_queue_url)
        message = MatchMessage.parse(body)
        assert message.to_json() == body
        assert Matcher(deps, deps.metrics()).handle(message.to_dict())["outcome"] == "started"
    (execution,) = deps.state_machines.executions.values()
    started = ExecutionInput.parse(execution["input"])
    assert started.to_dict() == json.loads(execution["input"])  # nothing the matcher wrote is left out
    assert started.workflow.workflow_id == message.workflow_id and started.workflow.generation == 1
    assert started.workflow.traceparent == message.trace.traceparent


def test_given_a_message_from_another_release_when_parsed_then_unknown_keys_are_ignored():
    body = {**EXECUTION_INPUT, "cursor": {"seq": 4}, "workflow": {**EXECUTION_INPUT["workflow"], "new_field": 1}}
    parsed = ExecutionInput.parse(body)
    assert parsed.workflow.workflow_id == "wf-acme-1" and "new_field" not in parsed.to_dict()["workflow"]


def test_given_an_invalid_handoff_when_parsed_then_refused_naming_fields_without_echoing_values():
    secret = "s3cr3t-value-that-must-not-be-echoed"
    with pytest.raises(HandoffInvalid) as caught:
        MatchMessage.parse({"workflow_id": 7, "tenant": {"tenant_id": ["x", secret]}, "event": {}})
    error = caught.value
    assert error.code == "handoff.invalid" and not error.retryable
    assert "tenant.tenant_id" in error.message and secret not in error.message
    assert f"+{_count_errors() - MAX_REPORTED_ERRORS} more" in error.message


def _count_errors() -> int:
    from pydantic import ValidationError

    try:
        MatchMessage.model_validate({"workflow_id": 7, "tenant": {"tenant_id": ["x"]}, "event": {}})
    except ValidationError as exc:
        return exc.error_count()
    raise AssertionError("expected a validation error")


def test_given_a_node_payload_without_its_workflow_when_parsed_for_a_node_function_then_node_input_error():
    with pytest.raises(NodeInputError) as caught:
        NodeTask.parse({"action": "run", "node": {"id": "n", "kind": "plugin"}}, NodeInputError)
    assert caught.value.code == "handoff.invalid" and "workflow" in caught.value.message


def test_given_an_unknown_workflow_action_when_parsed_then_refused():
    with pytest.raises(HandoffInvalid) as caught:
        parse_workflow_task({"action": "explode", "workflow": EXECUTION_INPUT["workflow"]})
    assert "action" in caught.value.message


@pytest.mark.parametrize("depth", [200, 100_000])
def test_given_a_deeply_nested_body_when_parsed_then_refused_as_invalid(depth: int):
    body = '{"workflow_id": "w", "tenant": {"tenant_id": "t"}, "event": ' + "[" * depth + "]" * depth + "}"
    with pytest.raises(HandoffInvalid):
        MatchMessage.parse(body)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                              lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                          max_size=4),
                              max_leaves=30)))
def test_given_any_input_when_parsed_as_a_handoff_then_a_model_or_handoff_invalid(raw: Any):
    for model in (MatchMessage, ExecutionInput, NodeTask):
        try:
            if isinstance(raw, str | bytes | dict):
                model.parse(raw)
            else:
                model.parse(json.dumps(raw))
        except HandoffInvalid as exc:
            assert len(exc.message) <= 2000
