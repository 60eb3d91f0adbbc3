"""Compiled ASL executed by moto's Step Functions interpreter (server mode, in process).

A self-contained fixture starts ``moto.server.ThreadedMotoServer`` on a free loopback port, turns
on state machine execution, creates the four Lambda functions the definitions reference and
routes their invocations to fake node handlers in this process (by patching
``LambdaFunction._invoke_lambda``). The handlers record every call in order, so the tests assert
ordering with sequence numbers, never with clocks.

moto facts this file relies on (checked with moto 5.2.5): ``$$.State.RetryCount``,
``$$.Task.Token``, ``JitterStrategy``/``MaxDelaySeconds`` and task ``TimeoutSeconds`` /
``HeartbeatSeconds`` are honoured; Retry intervals are real sleeps (keep them at 1 s and few);
``.waitForTaskToken`` polls every 0.5 s.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import re
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from powerx_agent.strategy.dsl import Strategy
from powerx_agent.taskflow.asl import CompiledFlow, FunctionArns, compile_flow

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = "powerx-agent-sfn-test"
FUNCTIONS = {"plugin": "pxa-plugin", "notify": "pxa-notify", "review": "pxa-review", "workflow": "pxa-workflow"}
WAIT_LIMIT_S = 60.0  # upper bound for polling an execution; never an assertion


class HandlerError(Exception):
    """Raised by a fake handler: becomes {"errorType": name, "errorMessage": message}."""

    def __init__(self, error_type: str, message: str = "") -> None:
        super().__init__(message or error_type)
        self.error_type = error_type


@dataclass
class Call:
    seq: int
    function: str
    action: str
    node: str | None
    payload: dict[str, Any]
    phase: str  # "start" | "end"


@dataclass
class Router:
    """Fake node handlers: ``handlers[node_id](payload, attempt)``; records start/end of calls."""

    handlers: dict[str, Callable[[dict[str, Any], int], Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: Iterator[int] = field(default_factory=itertools.count)
    attempts: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    workflow_error: str | None = None

    def reset(self) -> None:
        with self.lock:
            self.handlers.clear()
            self.calls.clear()
            self.attempts.clear()
            self.tokens.clear()
            self.workflow_error = None

    def _record(self, function: str, payload: dict[str, Any], phase: str) -> None:
        node = payload.get("node", {}).get("id") if isinstance(payload.get("node"), dict) \
            else payload.get("node_id")
        with self.lock:
            self.calls.append(Call(next(self.counter), function, payload.get("action", "?"), node,
                                   payload, phase))

    def invoke(self, function: str, payload: dict[str, Any]) -> tuple[str, bool, str]:
        self._record(function, payload, "start")
        try:
            if function == FUNCTIONS["workflow"]:
                if self.workflow_error and payload.get("action") == "escalate":
                    raise HandlerError(self.workflow_error, "escalation store unavailable")
                result: Any = {"ok": True}
            else:
                node_id = payload["node"]["id"]
                with self.lock:
                    attempt = self.attempts.get(node_id, 0)
                    self.attempts[node_id] = attempt + 1
                    if "task_token" in payload:
                        self.tokens[node_id] = payload["task_token"]
                handler = self.handlers.get(node_id)
                result = handler(payload, attempt) if handler else {"ok": True}
        except HandlerError as exc:
            self._record(function, payload, "end")
            return json.dumps({"errorType": exc.error_type, "errorMessage": str(exc)}), True, ""
        self._record(function, payload, "end")
        return json.dumps(result), False, ""

    # helpers for assertions
    def runs(self, phase: str = "start") -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.action == "run" and c.phase == phase]

    def seq(self, node: str, phase: str, action: str = "run") -> list[int]:
        with self.lock:
            return [c.seq for c in self.calls if c.node == node and c.phase == phase and c.action == action]

    def actions(self, action: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.action == action and c.phase == "start"]


@dataclass
class Sfn:
    client: Any
    router: Router
    arns: FunctionArns
    role_arn: str
    names: Iterator[int] = field(default_factory=itertools.count)

    def deploy(self, compiled: CompiledFlow, *, type_: str | None = None) -> str:
        resp = self.client.create_state_machine(
            name=f"{compiled.state_machine_name[:70]}-{next(self.names)}",
            definition=compiled.definition_json, roleArn=self.role_arn,
            type=type_ or "STANDARD")
        return resp["stateMachineArn"]

    def start(self, machine_arn: str, *, when: dict[str, bool] | None = None,
              variables: dict[str, Any] | None = None) -> str:
        payload = {
            "workflow": {"workflow_id": "wf-1", "tenant_id": "acme", "event_id": "evt-1",
                         "idempotency_key": "evt-1", "event_type": "plugin.job.completed",
                         "strategy_id": "s", "strategy_version": 1, "traceparent": "00-x"},
            "variables": variables or {"job_id": "42"},
            "when": when or {},
        }
        # moto 5.2.5 names an unnamed execution "None", so a second unnamed start on the same
        # machine fails with ExecutionAlreadyExists: always pass a name (the matcher does too)
        return self.client.start_execution(stateMachineArn=machine_arn, name=f"exec-{next(self.names)}",
                                           input=json.dumps(payload))["executionArn"]

    def wait(self, execution_arn: str, *, until: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Poll until the execution leaves RUNNING (or ``until()`` holds); returns describe_execution."""
        deadline = time.monotonic() + WAIT_LIMIT_S
        while True:
            desc = self.client.describe_execution(executionArn=execution_arn)
            if desc["status"] != "RUNNING" or (until is not None and until()):
                return desc
            if time.monotonic() > deadline:
                raise AssertionError(f"execution still RUNNING after {WAIT_LIMIT_S} s: {execution_arn}")
            time.sleep(0.05)

    def run(self, compiled: CompiledFlow, **kwargs: Any) -> dict[str, Any]:
        return self.wait(self.start(self.deploy(compiled), **kwargs))


def _dummy_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


@pytest.fixture(scope="module")
def sfn() -> Iterator[Sfn]:
    from moto.awslambda.models import LambdaFunction
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    saved = {k: os.environ.get(k) for k in ("MOTO_PORT", "AWS_ACCOUNT_ID_ENDPOINT_MODE", "AWS_ACCESS_KEY_ID",
                                            "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                            "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")}
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update({"MOTO_PORT": str(port), "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
                       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    router = Router()
    original = LambdaFunction._invoke_lambda

    def fake_invoke(self: Any, event: Any = None) -> tuple[str, bool, str]:
        payload = json.loads(event) if isinstance(event, str | bytes) else (event or {})
        return router.invoke(self.function_name, payload)

    LambdaFunction._invoke_lambda = fake_invoke  # type: ignore[method-assign]
    try:
        req = urllib.request.Request(f"{endpoint}/moto-api/config", method="POST",
                                     data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()
        kw = {"endpoint_url": endpoint, "region_name": REGION}
        iam = boto3.client("iam", **kw)
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "lambda.amazonaws.com"}}]}
        role_arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        lam = boto3.client("lambda", **kw)
        arns = {}
        for key, name in FUNCTIONS.items():
            arns[key] = lam.create_function(FunctionName=name, Runtime="python3.11", Role=role_arn,
                                            Handler="handler.handler", Code={"ZipFile": _dummy_zip()},
                                            Timeout=900)["FunctionArn"]
        yield Sfn(boto3.client("stepfunctions", **kw), router, FunctionArns(**arns), role_arn)
    finally:
        LambdaFunction._invoke_lambda = original  # type: ignore[method-assign]
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture()
def env(sfn: Sfn) -> Sfn:
    sfn.router.reset()
    return sfn


def _strategy(nodes: list[dict[str, Any]], **flow: Any) -> Strategy:
    return Strategy.model_validate({
        "id": "it-flow", "version": 1, "owner": "it@example.com", "on": {"event": "plugin.job.completed"},
        "flow": {"timeout": "5m", **flow, "nodes": nodes}})


class _Yaml12Loader(yaml.SafeLoader):
    """Safe loader with YAML 1.2 booleans (only true/false), so the key ``on:`` stays a string."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf"))


def _load_strategy_file(name: str) -> Strategy:
    path = Path(__file__).resolve().parents[2] / "strategies" / name
    return Strategy.model_validate(yaml.load(path.read_text(encoding="utf-8"), Loader=_Yaml12Loader))


def _history(env: Sfn, execution_arn: str) -> list[dict[str, Any]]:
    return env.client.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]


# --------------------------------------------------------------------------------- scenarios


def test_given_a_three_node_chain_when_executed_then_nodes_run_in_order_and_complete(env: Sfn) -> None:
    compiled = compile_flow(_strategy([
        {"id": "a", "plugin": "p"}, {"id": "b", "plugin": "p", "after": ["a"]},
        {"id": "c", "notify": {"to": "x@example.com", "template": "t"}, "after": ["b"]},
    ]), env.arns)
    desc = env.run(compiled)
    assert desc["status"] == "SUCCEEDED"
    assert [c.node for c in env.router.runs()] == ["a", "b", "c"]
    assert [c.function for c in env.router.runs()] == ["pxa-plugin", "pxa-plugin", "pxa-notify"]
    assert len(env.router.actions("complete")) == 1
    first = env.router.runs()[0].payload
    # the payload contract: node document, pass-through workflow/variables, context object fields
    assert first["node"] == {"id": "a", "plugin": "p", "input": {}, "timeout": 60.0, "kind": "plugin"}
    assert first["workflow"]["workflow_id"] == "wf-1" and first["variables"] == {"job_id": "42"}
    assert first["retry_count"] == 0 and first["execution_id"].startswith("arn:aws:states:")
    # ResultPath null everywhere: the execution output is its input
    assert json.loads(desc["output"])["variables"] == {"job_id": "42"}


def test_given_a_transient_failure_when_retried_then_the_node_succeeds_with_retry_count(env: Sfn) -> None:
    compiled = compile_flow(_strategy([
        {"id": "flaky", "plugin": "p", "retry": {"attempts": 3, "backoff": "1s", "max_backoff": "1s"}},
    ]), env.arns)

    def flaky(payload: dict[str, Any], attempt: int) -> Any:
        if attempt == 0:
            raise HandlerError("PluginUnavailable", "plugin runtime returned 503")
        return {"ok": True}

    env.router.handlers["flaky"] = flaky
    desc = env.run(compiled)
    assert desc["status"] == "SUCCEEDED"
    assert [c.payload["retry_count"] for c in env.router.runs()] == [0, 1]
    assert env.router.actions("escalate") == []


def test_given_a_rejected_call_when_executed_then_it_is_not_retried_and_the_workflow_escalates(env: Sfn) -> None:
    compiled = compile_flow(_strategy([
        {"id": "first", "plugin": "p", "retry": {"attempts": 3, "backoff": "1s"}},
        {"id": "second", "plugin": "p", "after": ["first"]},
    ], on_failure={"escalate": {"queue": "ops", "notify": ["ops-oncall"]}}), env.arns)
    env.router.handlers["first"] = lambda p, a: (_ for _ in ()).throw(HandlerError("PluginRejected", "bad input"))
    desc = env.run(compiled)
    assert desc["status"] == "FAILED"
    assert desc.get("error") == "Agent.WorkflowEscalated"
    assert [c.node for c in env.router.runs()] == ["first"]  # one attempt, second never ran
    (escalation,) = env.router.actions("escalate")
    assert escalation.payload["failure"]["Error"] == "PluginRejected"
    assert escalation.payload["escalation"] == {"queue": "ops", "notify": ["ops-oncall"]}
    assert env.router.actions("complete") == []


def test_given_escalation_itself_fails_when_executed_then_the_run_ends_in_escalation_failed(env: Sfn) -> None:
    compiled = compile_flow(_strategy([{"id": "only", "notify": {"to": "x", "template": "t"}}]), env.arns)
    env.router.handlers["only"] = lambda p, a: (_ for _ in ()).throw(HandlerError("NodeInputError"))
    env.router.workflow_error = "DownstreamUnavailable"
    desc = env.run(compiled)
    assert desc["status"] == "FAILED"
    assert desc.get("error") == "Agent.EscalationFailed"
    assert len(env.router.actions("escalate")) == 3  # Retry on States.ALL: 3 attempts


def test_given_when_false_and_true_when_executed_then_the_node_is_skipped_or_run(env: Sfn) -> None:
    compiled = compile_flow(_strategy([
        {"id": "gate-me", "plugin": "p", "when": {"path": "$.payload.x", "equals": 1}},
        {"id": "after-gate", "plugin": "p", "after": ["gate-me"]},
    ]), env.arns)
    assert compiled.when_keys == {"gate-me": "gate_me"}
    machine = env.deploy(compiled)
    desc = env.wait(env.start(machine, when={"gate_me": False}))
    assert desc["status"] == "SUCCEEDED"
    assert [c.node for c in env.router.runs()] == ["after-gate"]
    (skip,) = env.router.actions("skip")
    assert skip.payload["node_id"] == "gate-me" and skip.payload["workflow"]["tenant_id"] == "acme"
    assert env.router.seq("gate-me", "end", "skip")[0] < env.router.seq("after-gate", "start")[0]

    env.router.reset()
    desc = env.wait(env.start(machine, when={"gate_me": True}))
    assert desc["status"] == "SUCCEEDED"
    assert [c.node for c in env.router.runs()] == ["gate-me", "after-gate"]
    assert env.router.actions("skip") == []


def _assert_deps_respected(env: Sfn, deps: dict[str, list[str]]) -> None:
    for node, before in deps.items():
        start = env.router.seq(node, "start")
        assert start, f"{node} never started"
        for dep in before:
            ends = env.router.seq(dep, "end")
            assert ends and max(ends) < min(start), f"{node} started before {dep} ended"


def test_given_a_diamond_when_executed_then_the_join_waits_for_both_branches(env: Sfn) -> None:
    compiled = compile_flow(_strategy([
        {"id": "top", "plugin": "p"},
        {"id": "slow", "plugin": "p", "after": ["top"]},
        {"id": "fast", "plugin": "p", "after": ["top"]},
        {"id": "join", "plugin": "p", "after": ["slow", "fast"]},
    ]), env.arns)
    assert "parallel: slow + fast" in compiled.definition["States"]
    started = threading.Event()

    def slow(payload: dict[str, Any], attempt: int) -> Any:
        # hold 'slow' until 'fast' has finished, so the join must really wait for the later branch
        started.set()
        deadline = time.monotonic() + 10
        while not env.router.seq("fast", "end") and time.monotonic() < deadline:
            time.sleep(0.01)
        return {"ok": True}

    env.router.handlers["slow"] = slow
    desc = env.run(compiled)
    assert desc["status"] == "SUCCEEDED"
    assert started.is_set()
    _assert_deps_respected(env, {"slow": ["top"], "fast": ["top"], "join": ["slow", "fast"]})
    assert env.router.seq("fast", "end")[0] < env.router.seq("slow", "end")[0] < env.router.seq("join", "start")[0]


def test_given_a_non_series_parallel_graph_when_executed_then_every_dependency_holds(env: Sfn) -> None:
    # a→c, a→d, b→d is the "N": not series-parallel; compiled with level barriers
    deps = {"a": [], "b": [], "c": ["a"], "d": ["a", "b"], "e": ["c"]}
    compiled = compile_flow(_strategy([{"id": n, "plugin": "p", **({"after": d} if d else {})}
                                       for n, d in deps.items()]), env.arns)
    desc = env.run(compiled)
    assert desc["status"] == "SUCCEEDED"
    assert sorted(c.node for c in env.router.runs()) == sorted(deps)
    _assert_deps_respected(env, deps)


def test_given_a_failure_inside_a_parallel_branch_when_executed_then_the_parallel_catch_escalates(env: Sfn) -> None:
    compiled = compile_flow(_strategy([
        {"id": "left", "plugin": "p"}, {"id": "right", "plugin": "p"},
        {"id": "after-both", "plugin": "p", "after": ["left", "right"]},
    ]), env.arns)
    env.router.handlers["right"] = lambda p, a: (_ for _ in ()).throw(HandlerError("TenantScopeError", "no"))
    desc = env.run(compiled)
    assert desc["status"] == "FAILED" and desc.get("error") == "Agent.WorkflowEscalated"
    assert env.router.seq("after-both", "start") == []
    (escalation,) = env.router.actions("escalate")
    assert escalation.payload["failure"]["Error"] == "TenantScopeError"


def test_given_a_callback_node_when_the_task_succeeds_then_the_flow_resumes(env: Sfn) -> None:
    compiled = compile_flow(_strategy([
        {"id": "render", "plugin": "renderer", "callback": {"timeout": "30s", "heartbeat": "10s"}},
        {"id": "announce", "notify": {"to": "x", "template": "t"}, "after": ["render"]},
    ]), env.arns)
    assert compiled.type == "STANDARD"
    execution = env.start(env.deploy(compiled))
    desc = env.wait(execution, until=lambda: "render" in env.router.tokens)
    assert desc["status"] == "RUNNING" and env.router.seq("announce", "start") == []
    token = env.router.tokens["render"]
    assert env.router.runs()[0].payload["task_token"] == token
    env.client.send_task_success(taskToken=token, output=json.dumps({"rendered": True}))
    desc = env.wait(execution)
    assert desc["status"] == "SUCCEEDED"
    assert [c.node for c in env.router.runs()] == ["render", "announce"]


def test_given_a_silent_callback_when_the_heartbeat_lapses_then_it_escalates_without_retry(env: Sfn) -> None:
    compiled = compile_flow(_strategy([
        {"id": "render", "plugin": "renderer", "retry": {"attempts": 3, "backoff": "1s"},
         "callback": {"timeout": "20s", "heartbeat": "1s"}},
    ]), env.arns)
    desc = env.run(compiled)
    assert desc["status"] == "FAILED" and desc.get("error") == "Agent.WorkflowEscalated"
    assert len(env.router.runs()) == 1  # States.HeartbeatTimeout is never retried
    (escalation,) = env.router.actions("escalate")
    # AWS names a lapsed heartbeat States.HeartbeatTimeout; moto 5.2.5 reports it as
    # States.Timeout (CallbackOutcomeTimedOut). Neither is retried for wait nodes.
    assert escalation.payload["failure"]["Error"] in {"States.HeartbeatTimeout", "States.Timeout"}
    history = _history(env, desc["executionArn"])
    scheduled = [e for e in history if e["type"] == "TaskScheduled"][0]["taskScheduledEventDetails"]
    assert scheduled.get("heartbeatInSeconds") == 1 and scheduled.get("timeoutInSeconds") == 20


def test_given_a_slow_node_when_its_timeout_passes_then_states_timeout_escalates(env: Sfn) -> None:
    compiled = compile_flow(_strategy([{"id": "slow", "plugin": "p", "timeout": "1s"}]), env.arns)
    release = threading.Event()
    env.router.handlers["slow"] = lambda p, a: release.wait(5) or {"ok": True}
    try:
        desc = env.run(compiled)
    finally:
        release.set()
    assert desc["status"] == "FAILED" and desc.get("error") == "Agent.WorkflowEscalated"
    (escalation,) = env.router.actions("escalate")
    assert escalation.payload["failure"]["Error"] == "States.Timeout"


def test_given_a_flow_timeout_when_a_callback_never_arrives_then_the_execution_times_out(env: Sfn) -> None:
    compiled = compile_flow(_strategy([
        {"id": "review", "manual_review": {"queue": "finance", "reason": "check", "sla": "1h"}},
    ], timeout="2s"), env.arns)
    assert compiled.definition["TimeoutSeconds"] == 2
    desc = env.run(compiled)
    assert desc["status"] == "TIMED_OUT"
    assert env.router.runs()[0].function == "pxa-review"


def test_given_the_example_strategy_when_executed_then_render_then_parallel_then_approval_skip(env: Sfn) -> None:
    compiled = compile_flow(_load_strategy_file("report-on-job-completed.yaml"), env.arns)
    desc = env.run(compiled, when={"approve": False})
    assert desc["status"] == "SUCCEEDED"
    _assert_deps_respected(env, {"archive": ["render"], "tell-owner": ["render"]})
    assert [c.node for c in env.router.actions("skip")] == ["approve"]
    skip_start = min(env.router.seq("approve", "start", "skip"))
    assert all(e < skip_start for n in ("archive", "tell-owner") for e in env.router.seq(n, "end"))
    events = {e["type"] for e in _history(env, desc["executionArn"])}
    assert {"ParallelStateEntered", "ChoiceStateEntered", "ExecutionSucceeded"} <= events


def test_given_an_express_flow_when_deployed_as_express_then_it_runs_to_completion(env: Sfn) -> None:
    compiled = compile_flow(_load_strategy_file("ticket-on-job-failed.yaml"), env.arns)
    assert compiled.type == "EXPRESS"
    desc = env.wait(env.start(env.deploy(compiled, type_=compiled.type)))
    assert desc["status"] == "SUCCEEDED"
    assert [c.node for c in env.router.runs()] == ["open-ticket", "tell-owner"]


def test_given_a_when_key_starting_with_a_digit_when_executed_then_the_bracket_path_is_read(env: Sfn) -> None:
    compiled = compile_flow(_strategy([
        {"id": "1st", "plugin": "p"},
        {"id": "2-nd", "plugin": "p", "after": ["1st"], "when": {"path": "$.payload.x", "exists": True}},
    ]), env.arns)
    machine = env.deploy(compiled)
    assert env.wait(env.start(machine, when={"2_nd": True}))["status"] == "SUCCEEDED"
    assert [c.node for c in env.router.runs()] == ["1st", "2-nd"]
    env.router.reset()
    assert env.wait(env.start(machine, when={"2_nd": False}))["status"] == "SUCCEEDED"
    assert [c.node for c in env.router.actions("skip")] == ["2-nd"]
