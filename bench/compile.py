"""Taskflow generation: match + build + compile latency, and state transitions per workflow.

1. Latency (cold: no flow cache) of what the matcher does for an event whose strategy it has not
   compiled yet: ``StrategyIndex.decide`` over a library of 1,000 other strategies plus the flow's
   strategy, ``build_dag`` + ``series_parallel`` (inside ``compile_flow``), and ``compile_flow``
   to ASL JSON with its hash and limit checks. Flows of 10, 50 and 200 nodes; p50 / p99.
2. State transitions of a successful workflow, counted from a real execution of the compiled
   definition on moto's Step Functions interpreter (in process, loopback only; node Lambdas
   answered by a fake that succeeds): the ``*StateEntered`` events of the execution history,
   against nodes + 2. A static count from the definition (the states a successful run enters
   when every ``when`` holds) is printed next to it as a cross-check.

Run alone: ``.venv/bin/python bench/compile.py``; ``bench/run_all.py`` includes it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import statistics
import sys
import threading
import time
import urllib.request
import zipfile
from typing import Any

from powerx_agent.settings import Env
from powerx_agent.strategy.dsl import Strategy
from powerx_agent.strategy.index import StrategyIndex
from powerx_agent.strategy.loader import load_strategy_text
from powerx_agent.taskflow.asl import FunctionArns, compile_flow

NODE_COUNTS = (10, 50, 200)
REGION = "us-east-1"


def flow_yaml(nodes: int) -> str:
    """A strategy whose flow mixes chains and fan-out/fan-in (series-parallel)."""
    lines = []
    for i in range(nodes):
        after = [] if i == 0 else [f"n{(i - 1) // 3 * 3}"] if i % 3 else [f"n{i - 3}"] if i >= 3 else ["n0"]
        after = sorted(set(after) - {f"n{i}"})
        lines.append(f"    - {{id: n{i}, plugin: p, after: [{', '.join(after)}], retry: {{attempts: 2, backoff: 1s}}}}")
    return (f"id: flow-{nodes}\nversion: 1\nstatus: approved\nowner: bench@example.com\n"
            f"on: {{event: bench.flow.{nodes}}}\nwhen: {{path: $.payload.kind, equals: go}}\n"
            f"flow:\n  mode: standard\n  timeout: 1h\n  nodes:\n" + "\n".join(lines) + "\n")


def other_strategies(n: int) -> list:
    out = []
    for i in range(n):
        text = (f"id: other-{i:04d}\nversion: 1\nstatus: approved\nowner: b@example.com\n"
                f"on: {{event: bench.other.{i % 200}}}\nwhen: {{path: $.payload.kind, equals: k{i % 7}}}\n"
                f"flow:\n  nodes:\n    - {{id: a, plugin: p}}\n")
        compiled, findings = load_strategy_text(text, f"other-{i}.yaml")
        assert compiled is not None, findings
        out.append(compiled)
    return out


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def latency(arns: FunctionArns) -> list[dict[str, Any]]:
    others = other_strategies(1000)
    rows = []
    for nodes in NODE_COUNTS:
        compiled, findings = load_strategy_text(flow_yaml(nodes), f"flow-{nodes}.yaml")
        assert compiled is not None, findings
        index = StrategyIndex([*others, compiled], "bench")
        doc = {"payload": {"kind": "go"}, "event_type": f"bench.flow.{nodes}"}
        samples = []
        for _ in range(200 if nodes < 200 else 60):
            start = time.perf_counter()
            _, selected = index.decide(event_type=f"bench.flow.{nodes}", tenant_id="acme", event_id="e", doc=doc,
                                       bus_event={})
            flow = compile_flow(selected.strategy, arns)
            samples.append((time.perf_counter() - start) * 1000)
        rows.append({"nodes": nodes, "p50_ms": statistics.median(samples), "p99_ms": percentile(samples, 0.99),
                     "states": flow.state_count, "definition_bytes": flow.definition_bytes,
                     "strategy": selected.strategy, "flow": flow})
        print(f"generate {nodes} nodes: p50 {statistics.median(samples):.2f} ms p99 {percentile(samples, 0.99):.2f} ms",
              file=sys.stderr)
    return rows


def static_transitions(definition: dict[str, Any]) -> int:
    """States a successful run enters when every ``when`` holds (Choice → its first rule)."""
    def walk(states: dict[str, Any], name: str | None) -> int:
        count = 0
        while name is not None:
            state = states[name]
            count += 1
            if state["Type"] == "Parallel":
                count += sum(walk(branch["States"], branch["StartAt"]) for branch in state["Branches"])
            if state["Type"] == "Choice":
                name = state["Choices"][0]["Next"]
                continue
            name = None if state.get("End") or state["Type"] in ("Succeed", "Fail") else state.get("Next")
        return count
    return walk(definition["States"], definition["StartAt"])


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


class MotoSfn:
    """moto's Step Functions in process on a loopback port; every Lambda task succeeds."""

    def __enter__(self) -> MotoSfn:
        import boto3
        from moto.awslambda.models import LambdaFunction
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # moto's ANTLR ASL parser recurses per state: a 200-node definition needs more than the
        # default recursion limit, and threads (the server's, the executor's) need the stack for it
        threading.stack_size(256 * 1024 * 1024)
        sys.setrecursionlimit(50_000)
        self._saved = {k: os.environ.get(k) for k in ("MOTO_PORT", "AWS_ACCOUNT_ID_ENDPOINT_MODE",
                                                      "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                      Env.AWS_ENDPOINT_URL)}
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        port = self.server.get_host_and_port()[1]
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update({"MOTO_PORT": str(port), "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
                           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
        os.environ.pop(Env.AWS_ENDPOINT_URL, None)
        self._original = LambdaFunction._invoke_lambda
        LambdaFunction._invoke_lambda = lambda self, event=None: (json.dumps({"ok": True}), False, "")
        req = urllib.request.Request(f"{endpoint}/moto-api/config", method="POST",
                                     data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()  # noqa: S310 - loopback moto server
        kw = {"endpoint_url": endpoint, "region_name": REGION}
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "lambda.amazonaws.com"}}]}
        self.role = boto3.client("iam", **kw).create_role(
            RoleName="bench", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        lam = boto3.client("lambda", **kw)
        self.arns = FunctionArns(**{key: lam.create_function(
            FunctionName=f"bench-{key}", Runtime="python3.11", Role=self.role, Handler="handler.handler",
            Code={"ZipFile": _zip()}, Timeout=900)["FunctionArn"] for key in ("plugin", "notify", "review", "workflow")})
        self.sfn = boto3.client("stepfunctions", **kw)
        return self

    def __exit__(self, *exc: object) -> None:
        from moto.awslambda.models import LambdaFunction

        LambdaFunction._invoke_lambda = self._original
        self.server.stop()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def transitions(self, strategy: Strategy) -> tuple[str, int]:
        flow = compile_flow(strategy, self.arns)
        arn = self.sfn.create_state_machine(name=flow.state_machine_name, definition=flow.definition_json,
                                            roleArn=self.role, type="STANDARD")["stateMachineArn"]
        payload = {"workflow": {"workflow_id": "wf", "tenant_id": "acme", "event_id": "e", "idempotency_key": "k",
                                "event_type": "x", "strategy_id": strategy.id, "strategy_version": 1,
                                "traceparent": "00-x"}, "variables": {}, "when": {}}
        execution = self.sfn.start_execution(stateMachineArn=arn, name="bench", input=json.dumps(payload))
        deadline = time.monotonic() + 600
        while (status := self.sfn.describe_execution(executionArn=execution["executionArn"])["status"]) == "RUNNING":
            if time.monotonic() > deadline:
                raise RuntimeError("execution did not finish")
            time.sleep(0.1)
        events = []
        for page in self.sfn.get_paginator("get_execution_history").paginate(executionArn=execution["executionArn"]):
            events += page["events"]
        return status, sum(1 for e in events if e["type"].endswith("StateEntered"))


def run() -> list[dict[str, Any]]:
    placeholder = FunctionArns(*(f"arn:aws:lambda:us-east-1:000000000000:function:{n}" for n in "pnrw"))
    rows = latency(placeholder)
    try:
        with MotoSfn() as moto:
            for row in rows:
                row["status"], row["transitions"] = moto.transitions(row["strategy"])
                print(f"execute {row['nodes']} nodes on moto: {row['status']}, {row['transitions']} states entered",
                      file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - reported in the table, the static count still stands
        for row in rows:
            row.setdefault("status", f"not run: {exc}"[:80])
            row.setdefault("transitions", None)
    for row in rows:
        row["static_transitions"] = static_transitions(row["flow"].definition)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| nodes | p50 (ms) | p99 (ms) | states in definition | definition (KiB) | "
             "states entered, executed on moto | static count | nodes + 2 |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        executed = f"{r['transitions']} ({r['status']})" if r["transitions"] is not None else r["status"]
        lines.append(f"| {r['nodes']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['states']} | "
                     f"{r['definition_bytes'] / 1024:.1f} | {executed} | {r['static_transitions']} | {r['nodes'] + 2} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run()))
