"""ASL compiler: structure, determinism, goldens, asl-validator, limits, Express/Standard, graphs.

Goldens: tests/unit/golden/<strategy id>.json, one per file in strategies/. Regenerate with
``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_asl_compiler.py``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import xml.dom.minidom
from pathlib import Path
from typing import Any

import pytest
import yaml

from powerx_agent.errors import TaskflowError
from powerx_agent.strategy.dsl import Strategy
from powerx_agent.taskflow import limits
from powerx_agent.taskflow.asl import CompiledFlow, FunctionArns, compile_express_head, compile_flow, when_key
from powerx_agent.taskflow.graph import STATUS_COLOURS, to_dot, to_svg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from asl_validator import assert_valid, validate_definitions  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
STRATEGIES = sorted((REPO / "strategies").glob("*.yaml"))
GOLDEN = Path(__file__).resolve().parent / "golden"
ARNS = FunctionArns(*(f"arn:aws:lambda:us-east-1:123456789012:function:powerx-agent-{name}"
                      for name in ("plugin", "notify", "review", "workflow")))
LAMBDA_ERRORS = ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                 "Lambda.TooManyRequestsException"]


class Yaml12Loader(yaml.SafeLoader):
    """Safe loader with YAML 1.2 booleans (only true/false), so the key ``on:`` stays a string."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf"))


def load_strategy(path: Path) -> Strategy:
    return Strategy.model_validate(yaml.load(path.read_text(encoding="utf-8"), Loader=Yaml12Loader))


def strategy(nodes: list[dict[str, Any]], **flow: Any) -> Strategy:
    return Strategy.model_validate({
        "id": flow.pop("sid", "unit-flow"), "version": flow.pop("version", 1), "owner": "u@example.com",
        "on": {"event": "plugin.job.completed"}, "flow": {"timeout": "5m", **flow, "nodes": nodes}})


def plugin(node_id: str, *after: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": node_id, "plugin": "p", **extra}
    if after:
        out["after"] = list(after)
    return out


@pytest.fixture(scope="module")
def example() -> CompiledFlow:
    return compile_flow(load_strategy(REPO / "strategies" / "report-on-job-completed.yaml"), ARNS)


# ------------------------------------------------------------------------- the example strategy


def test_given_the_example_strategy_when_compiled_then_each_node_is_one_state(example: CompiledFlow) -> None:
    states = example.definition["States"]
    assert example.definition["StartAt"] == "render"
    assert set(states) == {"render", "parallel: archive + tell-owner", "approve.when", "approve",
                           "approve.skipped", "Complete", "Escalate", "Escalated", "Escalation failed"}
    branches = states["parallel: archive + tell-owner"]["Branches"]
    assert [b["StartAt"] for b in branches] == ["archive", "tell-owner"]
    assert example.when_keys == {"approve": "approve"}
    assert example.type == "STANDARD" and "approve" in example.type_reason
    assert example.definition["TimeoutSeconds"] == 900
    assert "report-on-job-completed" in example.definition["Comment"] and "v3" in example.definition["Comment"]


def test_given_a_plugin_node_when_compiled_then_its_task_follows_the_contract(example: CompiledFlow) -> None:
    render = example.definition["States"]["render"]
    assert render["Resource"] == "arn:aws:states:::lambda:invoke"
    assert render["Parameters"]["FunctionName"] == ARNS.plugin
    payload = render["Parameters"]["Payload"]
    assert payload == {
        "action": "run",
        "node": {"id": "render", "plugin": "report-renderer", "kind": "plugin", "timeout": 60.0,
                 "input": {"job": "${job_id}", "name": "${report_name}", "rows": "${rows}"},
                 "retry": {"attempts": 3, "backoff": 1.0, "max_backoff": 5.0, "rate": 2.0}},
        "workflow.$": "$.workflow", "variables.$": "$.variables",
        "retry_count.$": "$$.State.RetryCount", "execution_id.$": "$$.Execution.Id",
    }
    assert render["ResultPath"] is None and render["TimeoutSeconds"] == 60 and "HeartbeatSeconds" not in render
    assert render["Retry"] == [{
        "ErrorEquals": ["PluginUnavailable", "DownstreamUnavailable", "AwsUnavailable", *LAMBDA_ERRORS,
                        "States.Timeout"],
        "MaxAttempts": 2, "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxDelaySeconds": 5, "JitterStrategy": "FULL"}]
    assert render["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Escalate"}]
    assert render["Next"] == "parallel: archive + tell-owner"


def test_given_nodes_inside_a_parallel_when_compiled_then_only_the_parallel_catches(example: CompiledFlow) -> None:
    par = example.definition["States"]["parallel: archive + tell-owner"]
    assert par["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Escalate"}]
    assert par["ResultPath"] is None and par["Next"] == "approve.when"
    archive = par["Branches"][0]["States"]["archive"]
    tell = par["Branches"][1]["States"]["tell-owner"]
    assert "Catch" not in archive and "Catch" not in tell
    assert archive["End"] is True and tell["End"] is True
    assert tell["Parameters"]["FunctionName"] == ARNS.notify
    # a node without `retry` gets the small default retry on Lambda service errors only
    assert tell["Retry"] == [{"ErrorEquals": LAMBDA_ERRORS, "MaxAttempts": 1, "IntervalSeconds": 1,
                              "BackoffRate": 2.0, "JitterStrategy": "FULL"}]


def test_given_a_conditional_review_when_compiled_then_choice_skip_and_wait_states_exist(example: CompiledFlow) -> None:
    states = example.definition["States"]
    assert states["approve.when"] == {
        "Type": "Choice", "Comment": states["approve.when"]["Comment"],
        "Choices": [{"Variable": "$.when.approve", "BooleanEquals": True, "Next": "approve"}],
        "Default": "approve.skipped"}
    skipped = states["approve.skipped"]
    assert skipped["Parameters"] == {"FunctionName": ARNS.workflow, "Payload": {
        "action": "skip", "node_id": "approve", "workflow.$": "$.workflow"}}
    assert skipped["ResultPath"] is None and skipped["Next"] == "Complete"
    approve = states["approve"]
    assert approve["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert approve["Parameters"]["FunctionName"] == ARNS.review
    assert approve["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert approve["TimeoutSeconds"] == 4 * 3600 and approve["Next"] == "Complete"
    assert "States.Timeout" not in approve["Retry"][0]["ErrorEquals"]


def test_given_the_example_when_compiled_then_escalation_and_completion_follow_the_contract(
        example: CompiledFlow) -> None:
    states = example.definition["States"]
    escalate = states["Escalate"]
    assert escalate["Parameters"]["Payload"] == {
        "action": "escalate", "workflow.$": "$.workflow", "failure.$": "$.failure",
        "escalation": {"queue": "ops", "notify": ["ops-oncall"]}}
    assert escalate["Retry"] == [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 1,
                                  "BackoffRate": 2.0, "JitterStrategy": "FULL"}]
    assert escalate["Catch"][0]["Next"] == "Escalation failed" and escalate["Next"] == "Escalated"
    assert states["Escalated"]["Type"] == "Fail" and states["Escalated"]["Error"] == "Agent.WorkflowEscalated"
    assert "escalated" in states["Escalated"]["Cause"]
    assert states["Escalation failed"]["Error"] == "Agent.EscalationFailed"
    complete = states["Complete"]
    assert complete["Parameters"]["Payload"] == {"action": "complete", "workflow.$": "$.workflow"}
    assert complete["End"] is True and complete["ResultPath"] is None and complete["Retry"]


def test_given_the_example_when_compiled_then_name_and_hash_match_the_json(example: CompiledFlow) -> None:
    import hashlib

    assert example.sha256 == hashlib.sha256(example.definition_json.encode()).hexdigest()
    assert example.hash8 == example.sha256[:8]
    assert example.state_machine_name == f"agent-report-on-job-completed-v3-{example.hash8}"
    assert json.loads(example.definition_json) == example.definition
    assert example.definition_json == json.dumps(example.definition, sort_keys=True, separators=(",", ":"),
                                                 ensure_ascii=False)
    assert example.state_count == 11 and example.definition_bytes == len(example.definition_json.encode())


# ------------------------------------------------------------------------------ determinism


def test_given_the_same_strategy_when_compiled_twice_then_the_json_is_byte_identical() -> None:
    path = REPO / "strategies" / "report-on-job-completed.yaml"
    first, second = compile_flow(load_strategy(path), ARNS), compile_flow(load_strategy(path), ARNS)
    assert first.definition_json == second.definition_json and first.sha256 == second.sha256
    assert first.state_machine_name == second.state_machine_name


def test_given_a_changed_node_when_compiled_then_the_hash_and_name_change() -> None:
    base = compile_flow(strategy([plugin("a"), plugin("b", "a")]), ARNS)
    changed = compile_flow(strategy([plugin("a"), plugin("b", "a", timeout="30s")]), ARNS)
    assert base.hash8 != changed.hash8 and base.state_machine_name != changed.state_machine_name


def test_given_a_long_id_and_version_when_named_then_the_name_fits_80_chars_and_keeps_the_hash() -> None:
    compiled = compile_flow(strategy([plugin("a")], sid="x" * 63, version=123456789), ARNS)
    assert len(compiled.state_machine_name) <= 80
    assert compiled.state_machine_name.endswith("-" + compiled.hash8)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", compiled.state_machine_name)


# --------------------------------------------------------------------------------- goldens


def _golden_document(compiled: CompiledFlow) -> str:
    doc = {"state_machine_name": compiled.state_machine_name, "type": compiled.type,
           "type_reason": compiled.type_reason, "when_keys": compiled.when_keys,
           "definition": compiled.definition}
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("path", STRATEGIES, ids=[p.stem for p in STRATEGIES])
def test_given_a_library_strategy_when_compiled_then_it_matches_its_golden(path: Path) -> None:
    compiled = compile_flow(load_strategy(path), ARNS)
    golden = GOLDEN / f"{load_strategy(path).id}.json"
    text = _golden_document(compiled)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden for {path.name}: run with UPDATE_GOLDEN=1"
    assert golden.read_text(encoding="utf-8") == text, (
        f"{path.name} compiles differently from {golden.name}; if intended, rerun with UPDATE_GOLDEN=1")


def test_given_every_golden_when_listed_then_each_has_a_strategy_file() -> None:
    ids = {load_strategy(p).id for p in STRATEGIES}
    assert {g.stem for g in GOLDEN.glob("*.json")} <= ids


# -------------------------------------------------------------------------- asl-validator


def _corpus() -> dict[str, Strategy]:
    cases = {p.stem: load_strategy(p) for p in STRATEGIES}
    cases.update({
        "single": strategy([plugin("only")]),
        "chain-express": strategy([plugin("a"), {"id": "b", "notify": {"to": "x", "template": "t"}, "after": ["a"]}]),
        "diamond-when": strategy([plugin("a"), plugin("b", "a", when={"path": "$.x", "exists": True}),
                                  plugin("c", "a", when={"path": "$.y", "exists": True}), plugin("d", "b", "c")]),
        "n-graph": strategy([plugin("a"), plugin("b"), plugin("c", "a"), plugin("d", "a", "b")]),
        "nested": strategy([plugin("s"), plugin("a", "s"), plugin("a2", "a"), plugin("a3", "a"),
                            plugin("a4", "a2", "a3"), plugin("b", "s"), plugin("t", "a4", "b")]),
        "callbacks": strategy([
            plugin("cb", callback={"timeout": "10m", "heartbeat": "30s"}, retry={"attempts": 5, "backoff": "500ms"}),
            {"id": "rev", "manual_review": {"queue": "q", "reason": "r", "sla": "2h"}, "after": ["cb"],
             "when": {"path": "$.z", "equals": 1}}], timeout="1h"),
        "digit-ids": strategy([plugin("1st"), plugin("2-nd", "1st", when={"path": "$.a", "exists": True})]),
        "single-attempt": strategy([plugin("once", retry={"attempts": 1})], mode="standard"),
    })
    return cases


def test_given_every_compiled_definition_when_validated_then_asl_validator_accepts_it() -> None:
    compiled = {name: compile_flow(s, ARNS) for name, s in _corpus().items()}
    assert_valid({name: c.definition_json for name, c in compiled.items()})


def test_given_a_broken_definition_when_validated_then_the_helper_reports_it() -> None:
    broken = {"StartAt": "a", "States": {"a": {"Type": "Pass", "Next": "missing"}}}
    results = validate_definitions({"broken": broken, "fine": {"StartAt": "a", "States": {
        "a": {"Type": "Pass", "End": True}}}})
    assert results["fine"] == [] and any("missing" in e for e in results["broken"])


# ------------------------------------------------------------------------- special nodes


def test_given_ids_with_dashes_and_digits_when_compiled_then_when_paths_are_valid() -> None:
    compiled = compile_flow(_corpus()["digit-ids"], ARNS)
    assert compiled.when_keys == {"2-nd": "2_nd"} and when_key("tell-owner") == "tell_owner"
    choice = compiled.definition["States"]["2-nd.when"]["Choices"][0]
    assert choice["Variable"] == "$.when['2_nd']"


def test_given_a_callback_with_heartbeat_when_compiled_then_timeouts_are_whole_seconds() -> None:
    compiled = compile_flow(strategy([plugin("cb", callback={"timeout": "1500ms", "heartbeat": "1200ms"})],
                                     timeout="1h"), ARNS)
    task = compiled.definition["States"]["cb"]
    assert task["HeartbeatSeconds"] == 2 and task["TimeoutSeconds"] == 3  # heartbeat stays below timeout
    assert task["Resource"].endswith(".waitForTaskToken")


def test_given_a_single_attempt_when_compiled_then_the_node_has_no_retry() -> None:
    task = compile_flow(_corpus()["single-attempt"], ARNS).definition["States"]["once"]
    assert "Retry" not in task


def test_given_an_input_key_ending_in_dollar_when_compiled_then_it_is_refused() -> None:
    with pytest.raises(TaskflowError) as err:
        compile_flow(strategy([plugin("a", input={"evil.$": "$.workflow"})]), ARNS)
    assert err.value.code == "flow.reserved_key" and "evil.$" in err.value.message


def test_given_a_cyclic_flow_when_compiled_then_the_builder_error_surfaces() -> None:
    with pytest.raises(TaskflowError) as err:
        compile_flow(strategy([plugin("a", "b"), plugin("b", "a")]), ARNS)
    assert err.value.code == "flow.cycle"


# --------------------------------------------------------------------- Express or Standard


def test_given_a_short_flow_without_callbacks_when_auto_then_express_with_a_reason() -> None:
    compiled = compile_flow(_corpus()["chain-express"], ARNS)
    assert compiled.type == "EXPRESS"
    assert "242 s" in compiled.type_reason and "a → b" in compiled.type_reason
    assert compiled.worst_case_seconds == 242.0  # 2 × (2 attempts × 60 s + 1 s delay)


def test_given_a_callback_node_when_auto_then_standard_because_it_waits() -> None:
    compiled = compile_flow(_corpus()["callbacks"], ARNS)
    assert compiled.type == "STANDARD" and "'cb' waits for a callback" in compiled.type_reason


def test_given_a_long_flow_timeout_when_auto_then_standard() -> None:
    compiled = compile_flow(strategy([plugin("a", timeout="5s")], timeout="10m"), ARNS)
    assert compiled.type == "STANDARD" and "flow.timeout" in compiled.type_reason


def test_given_a_long_worst_case_when_auto_then_standard_naming_the_critical_path() -> None:
    compiled = compile_flow(strategy([
        plugin("a", timeout="60s", retry={"attempts": 3, "backoff": "1s"}),
        plugin("b", "a", timeout="60s"), plugin("c", "a", timeout="10s")]), ARNS)
    assert compiled.type == "STANDARD"
    assert compiled.worst_case_seconds == 3 * 60 + 1 + 2 + 2 * 60 + 1
    assert "a → b" in compiled.type_reason and "304 s" in compiled.type_reason


def test_given_mode_express_with_a_wait_node_when_compiled_then_it_is_refused() -> None:
    with pytest.raises(TaskflowError) as err:
        compile_flow(strategy([{"id": "r", "manual_review": {"queue": "q", "reason": "r"}}], mode="express"), ARNS)
    assert err.value.code == "flow.express_with_callback" and "'r'" not in err.value.message
    assert "r" in err.value.details["nodes"]


def test_given_mode_express_with_a_long_timeout_when_compiled_then_it_is_refused() -> None:
    with pytest.raises(TaskflowError) as err:
        compile_flow(strategy([plugin("a")], mode="express", timeout="10m"), ARNS)
    assert err.value.code == "flow.express_timeout"


def test_given_explicit_modes_when_compiled_then_they_are_honoured() -> None:
    slow = [plugin("a", timeout="900s")]
    assert compile_flow(strategy(slow, mode="express"), ARNS).type == "EXPRESS"
    assert compile_flow(strategy([plugin("a")], mode="standard"), ARNS).type == "STANDARD"


# ---------------------------------------------------------------------------------- limits


def test_given_huge_node_inputs_when_compiled_then_the_definition_size_limit_names_the_excess() -> None:
    big = {"blob": "x" * 300_000}
    with pytest.raises(TaskflowError) as err:
        compile_flow(strategy([plugin(f"n{i}", input=big) for i in range(4)], mode="standard"), ARNS)
    assert err.value.code == "limit.definition_size"
    assert "1,048,576" in err.value.message and err.value.details["over"] > 0
    assert f"{err.value.details['over']:,}" in err.value.message


def test_given_too_many_nodes_when_compiled_then_the_state_count_limit_is_raised() -> None:
    nodes = [plugin(f"n{i}") for i in range(limits.MAX_STATES)]
    with pytest.raises(TaskflowError) as err:
        compile_flow(strategy(nodes, mode="standard"), ARNS)
    assert err.value.code == "limit.state_count"
    assert err.value.details["limit"] == limits.MAX_STATES and err.value.details["over"] == 4


def test_given_many_retried_nodes_when_compiled_then_the_history_limit_is_raised() -> None:
    retry = {"attempts": 10, "backoff": "1s"}
    nodes = [plugin(f"n{i}", *([f"n{i - 1}"] if i else []), retry=retry) for i in range(800)]
    with pytest.raises(TaskflowError) as err:
        compile_flow(strategy(nodes, mode="standard", timeout="1d"), ARNS)
    assert err.value.code == "limit.history_events"
    assert "25,000" in err.value.message and err.value.details["actual"] > 25_000


def test_given_the_example_when_estimated_then_history_counts_retries_and_escalation(example: CompiledFlow) -> None:
    # start/end 2; render 2+3×3; parallel 4 + archive 2+3×3 + tell-owner 2+3×2; choice 2;
    # max(approve (wait) 2+4×2, approve.skipped 2+3×3); Complete 2+3×3; Escalate 2+3×3 + Fail 1
    assert example.history_events == 2 + 11 + (4 + 11 + 8) + 2 + max(10, 11) + 11 + (11 + 1)


def test_given_an_execution_input_when_checked_then_only_oversized_payloads_fail() -> None:
    assert limits.check_execution_input(json.dumps({"variables": {"a": "é" * 10}})) > 0
    with pytest.raises(TaskflowError) as err:
        limits.check_execution_input("x" * (262_144 + 10))
    assert err.value.code == "limit.payload_size" and "over by 10" in err.value.message


# ---------------------------------------------------------------------------------- graphs


def test_given_a_compiled_flow_when_drawn_as_dot_then_branches_are_clusters(example: CompiledFlow) -> None:
    dot = to_dot(example, {"render": "SUCCEEDED"})
    assert dot.startswith("digraph") and dot.count("subgraph cluster_") == 2
    assert '"render" -> "parallel: archive + tell-owner";' in dot
    assert '"archive" -> "approve.when";' in dot and '"tell-owner" -> "approve.when";' in dot
    assert f'"render" [label="render", shape=box, fillcolor="{STATUS_COLOURS["SUCCEEDED"]}"]' in dot
    assert to_dot(example.definition).count("->") == dot.count("->")


def test_given_statuses_when_drawn_as_svg_then_it_is_self_contained_and_coloured(example: CompiledFlow) -> None:
    status = {"render": "SUCCEEDED", "archive": "FAILED", "tell-owner": "RUNNING", "approve": "SKIPPED",
              "Escalate": "ESCALATED"}
    svg = to_svg(example, status)
    doc = xml.dom.minidom.parseString(svg)
    assert doc.documentElement.tagName == "svg"
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing external
    states = {g.getAttribute("data-state"): g for g in doc.getElementsByTagName("g")
              if g.getAttribute("data-state")}
    assert set(example.definition["States"]) | {"archive", "tell-owner", "start", "end"} == set(states)

    def fill(name: str) -> str:
        return states[name].getElementsByTagName("rect")[0].getAttribute("fill")

    for node, value in status.items():
        assert fill(node) == STATUS_COLOURS[value]
    assert fill("approve.skipped") == STATUS_COLOURS["SKIPPED"] and fill("Complete") == "#ffffff"
    # grandalf's layered layout puts every state below the one before it
    def y(name: str) -> float:
        return float(states[name].getElementsByTagName("rect")[0].getAttribute("y"))

    assert y("start") < y("render") < y("parallel: archive + tell-owner") < y("archive") < y("approve.when")
    assert len(doc.getElementsByTagName("polyline")) >= 10 and svg.count('class="cluster"') == 2


def test_given_a_flow_when_drawn_as_svg_then_every_edge_stays_inside_and_ends_on_a_box_border(
        example: CompiledFlow) -> None:
    doc = xml.dom.minidom.parseString(to_svg(example))
    width = float(doc.documentElement.getAttribute("width"))
    height = float(doc.documentElement.getAttribute("height"))
    boxes = []
    for rect in doc.getElementsByTagName("rect"):
        if rect.parentNode.getAttribute("data-state"):
            x, y = float(rect.getAttribute("x")), float(rect.getAttribute("y"))
            boxes.append((x, y, x + float(rect.getAttribute("width")), y + float(rect.getAttribute("height"))))
    catches = 0
    for line in doc.getElementsByTagName("polyline"):
        points = [tuple(map(float, p.split(","))) for p in line.getAttribute("points").split()]
        assert all(0 <= x <= width and 0 <= y <= height for x, y in points)
        end_x, end_y = points[-1]
        assert any(abs(end_x - x0) < 0.2 or abs(end_x - x1) < 0.2 or abs(end_y - y0) < 0.2 or abs(end_y - y1) < 0.2
                   for x0, y0, x1, y1 in boxes), "an arrow ends inside a box, hidden under it"
        catches += "catch" in line.getAttribute("class")
    assert catches >= 4  # every task can escalate
    labels = [t.firstChild.data for t in doc.getElementsByTagName("text") if t.firstChild]
    assert "approve = true" in labels and "default" in labels and "branch 1" in labels


# ------------------------------------------------------------------------- Express first: the head


def _review(node_id: str, *after: str, when: dict[str, Any] | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"id": node_id, "manual_review": {"queue": "q", "reason": "r", "sla": "4h"}}
    if after:
        node["after"] = list(after)
    if when is not None:
        node["when"] = when
    return node


def test_given_the_example_strategy_when_its_head_is_compiled_then_it_is_express_with_approve_as_a_pass_state(
        example: CompiledFlow) -> None:
    head = compile_express_head(load_strategy(REPO / "strategies" / "report-on-job-completed.yaml"), ARNS, example)
    assert head is not None and head.type == "EXPRESS" and example.type == "STANDARD"
    assert head.skipped_nodes == ("approve",) and head.continuation == example.state_machine_name
    states = head.definition["States"]
    assert states["approve.skipped"]["Type"] == "Pass" and "approve" not in states
    assert head.definition["TimeoutSeconds"] == limits.EXPRESS_MAX_SECONDS
    # render → archive with their retries (366 s) does not fit 5 minutes: one attempt each (120 s), then hand off
    assert "Retry" not in states["render"] and states["render"]["Parameters"]["Payload"]["hand_off"] is True
    assert states["render"]["Catch"][0] == {"ErrorEquals": ["HandOff", "States.Timeout", *LAMBDA_ERRORS],
                                            "ResultPath": "$.failure", "Next": "Continue in Standard"}
    assert states["render"]["Catch"][1]["Next"] == "Escalate"
    hand_off = states["Continue in Standard"]
    assert hand_off["Parameters"]["Payload"]["action"] == "hand_off" and hand_off["Next"] == "Handed off"
    assert hand_off["Parameters"]["Payload"]["continuation.$"] == "$.continuation"
    assert states["Handed off"]["Type"] == "Succeed"
    assert "'approve'" in head.type_reason and "120 s along render → archive" in head.type_reason
    assert head.state_machine_name != example.state_machine_name
    assert head.state_machine_name.startswith("agent-report-on-job-completed-v3-")
    assert_valid({"head": head.definition_json})


def test_given_a_head_whose_retries_fit_express_when_compiled_then_it_keeps_them_and_never_hands_off() -> None:
    source = strategy([plugin("a", retry={"attempts": 3, "backoff": "1s"}, timeout="10s"),
                       _review("r", "a", when={"path": "$.big", "equals": True})], timeout="1h")
    full = compile_flow(source, ARNS)
    head = compile_express_head(source, ARNS, full)
    assert full.type == "STANDARD" and head is not None and head.type == "EXPRESS"
    states = head.definition["States"]
    assert states["a"]["Retry"] == full.definition["States"]["a"]["Retry"]
    assert "Continue in Standard" not in states and "hand_off" not in states["a"]["Parameters"]["Payload"]
    assert [c["Next"] for c in states["a"]["Catch"]] == ["Escalate"]


@pytest.mark.parametrize("case", ["unconditional wait", "mode standard", "one attempt too long", "already express"])
def test_given_a_flow_without_a_head_when_compiled_then_none(case: str) -> None:
    when = {"path": "$.big", "equals": True}
    source = {
        "unconditional wait": strategy([plugin("a"), _review("r", "a")], timeout="1h"),
        "mode standard": strategy([plugin("a"), _review("r", "a", when=when)], mode="standard", timeout="1h"),
        "one attempt too long": strategy([plugin("a", timeout="200s"), plugin("b", "a", timeout="100s"),
                                          _review("r", "b", when=when)], timeout="1h"),
        "already express": strategy([plugin("a")]),
    }[case]
    assert compile_express_head(source, ARNS, compile_flow(source, ARNS)) is None
