"""The embedded runtime's Step Functions patches (local/motopatch/stepfunctions.py): the ASL syntax tree cache must
not share evaluation state between executions (Parallel and Map run concurrently and each returns
its own result), and the in-flight execution counter returns to where it started."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from powerx_agent.deps import get_deps
from powerx_agent.local import motopatch

PARALLEL_MAP = {
    "StartAt": "Fan",
    "States": {
        "Fan": {"Type": "Parallel", "ResultPath": "$.fan", "Next": "Each", "Branches": [
            {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "Parameters": {"side": "left", "n.$": "$.n"},
                                                     "End": True}}},
            {"StartAt": "Right", "States": {"Right": {"Type": "Pass", "Parameters": {"side": "right", "n.$": "$.n"},
                                                       "End": True}}},
        ]},
        "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 3, "ResultPath": "$.mapped",
                 "ItemSelector": {"item.$": "$$.Map.Item.Value", "n.$": "$.n"},
                 "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Tag", "States": {
                     "Tag": {"Type": "Pass", "Parameters": {"item.$": "$.item", "n.$": "$.n"}, "End": True}}},
                 "End": True},
    },
}


def run(sfn: Any, arn: str, name: str, payload: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = sfn.describe_execution(executionArn=execution)
        if out["status"] != "RUNNING":
            return out
        time.sleep(0.05)
    raise AssertionError(f"{name} still running after {timeout} s")


def test_given_parallel_and_map_machine_when_many_executions_run_concurrently_then_each_gets_its_own_result(
        rt: Any, uid: str) -> None:
    sfn = rt.client("stepfunctions")
    arn = sfn.create_state_machine(name=f"patch-test-{uid}", definition=json.dumps(PARALLEL_MAP),
                                   roleArn=get_deps().settings.workflow_role_arn)["stateMachineArn"]
    before = motopatch.parse_cache_stats()
    inputs = {f"x-{uid}-{n}": {"n": n, "items": [f"{n}-{i}" for i in range(n % 4 + 1)]} for n in range(12)}
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = dict(zip(inputs, pool.map(lambda kv: run(sfn, arn, *kv), inputs.items()), strict=True))
    for name, payload in inputs.items():
        out = results[name]
        assert out["status"] == "SUCCEEDED", out
        body = json.loads(out["output"])
        assert body["fan"] == [{"side": "left", "n": payload["n"]}, {"side": "right", "n": payload["n"]}]
        assert body["mapped"] == [{"item": item, "n": payload["n"]} for item in payload["items"]]
    after = motopatch.parse_cache_stats()
    assert after["hits"] - before["hits"] >= len(inputs) - 1  # the tree was reused, the results still differ


def test_given_broken_definition_when_parsed_then_syntax_error_is_raised_and_nothing_is_cached(rt: Any) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    before = motopatch.parse_cache_stats()
    broken = '{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": tru'
    for _ in range(2):  # twice: a cached failure would answer the second call without raising
        try:
            AmazonStateLanguageParser.parse(broken)
            raised = False
        except ASLParserException:
            raised = True
        assert raised
    assert motopatch.parse_cache_stats() == before


def test_given_executions_finished_when_counting_in_flight_then_counter_is_back_to_zero(rt: Any, uid: str) -> None:
    sfn = rt.client("stepfunctions")
    arn = sfn.create_state_machine(name=f"count-{uid}", definition=json.dumps(PARALLEL_MAP),
                                   roleArn=get_deps().settings.workflow_role_arn)["stateMachineArn"]
    finished_before = motopatch.sfn_running_stats()["finished"]
    for n in range(3):
        assert run(sfn, arn, f"c-{uid}-{n}", {"n": n, "items": []})["status"] == "SUCCEEDED"
    assert rt.wait_idle(timeout=30)
    stats = motopatch.sfn_running_stats()
    assert stats["now"] == 0
    assert stats["finished"] - finished_before >= 3


def test_given_cap_of_one_execution_when_events_arrive_then_poller_waits_and_executions_stay_bounded(
        rt: Any, uid: str) -> None:
    from helpers import detail

    from powerx_agent import spec

    cap, paused_before = rt.max_executions_in_flight, rt.poller_paused_seconds
    rt.max_executions_in_flight = 1
    motopatch.reset_sfn_peak()
    try:
        for i in range(4):  # one at a time, so each lands in its own receive batch
            rt.put_events([{"Source": "powerx.plugins", "DetailType": "plugin.job.completed",
                            "Detail": json.dumps(detail(f"{uid}-{i}")), "EventBusName": spec.BUS_NAME}])
            time.sleep(0.3)
        assert rt.wait_idle(timeout=60)
    finally:
        rt.max_executions_in_flight = cap
    stats = motopatch.sfn_running_stats()
    assert rt.poller_paused_seconds > paused_before  # it held back while one execution ran
    # checked per receive, so a batch that queued up while waiting may overshoot: never all 4 at once
    assert stats["peak"] < 4
    assert stats["now"] == 0
    from powerx_agent.deps import get_deps
    from powerx_agent.ingest.service import workflow_id_for

    statuses = [get_deps().workflows.get(workflow_id_for("acme", f"key-{uid}-{i}"))["status"] for i in range(4)]
    assert statuses == ["SUCCEEDED"] * 4
