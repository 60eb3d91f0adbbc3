"""The handlers trace with Powertools Tracer as they do in Lambda: run in a process with Lambda's
environment (``LAMBDA_TASK_ROOT``, ``_X_AMZN_TRACE_ID``) against the embedded runtime, the X-Ray SDK
sends its segment documents over UDP to ``AWS_XRAY_DAEMON_ADDRESS``, where this test listens as the
X-Ray daemon would. What is read is what the real SDK emits; nothing here writes a segment."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from typing import Any

from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.local.demo import c1_event

XRAY_ROOT = "1-5759e988-bd862e3fe1be46a994272793"

_INVOKE = """
import json, sys
from powerx_agent.handlers.ingest import handler

class Context:
    function_name = "powerx-agent-ingest"
    function_version = "1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:powerx-agent-ingest:live"
    memory_limit_in_mb = 256
    aws_request_id = "5a9b6e7c-0000-4000-8000-000000000001"
    log_group_name = "/aws/lambda/powerx-agent-ingest"
    log_stream_name = "2026/12/04/[1]abc"
    def get_remaining_time_in_millis(self):
        return 30000

print(json.dumps({"result": handler(json.loads(sys.stdin.read()), Context())}))
"""


class XrayDaemon:
    """Collects what the X-Ray SDK sends: ``{"format": "json", "version": 1}\\n<segment document>``."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.documents: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)

    @property
    def address(self) -> str:
        host, port = self.socket.getsockname()
        return f"{host}:{port}"

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.socket.recv(65536)
            except TimeoutError:
                continue
            header, _, body = data.decode().partition("\n")
            assert json.loads(header) == {"format": "json", "version": 1}
            self.documents.append(json.loads(body))

    def __enter__(self) -> XrayDaemon:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()

    def named(self, name: str) -> dict[str, Any]:
        found = [d for d in self.documents if d.get("name") == name]
        assert len(found) == 1, (name, [d.get("name") for d in self.documents])
        return found[0]


def test_given_an_event_without_traceparent_when_ingest_runs_traced_then_xray_and_the_logs_name_one_trace(rt, uid):
    detail = {**c1_event(f"-{uid}"), "context": {"actor": "portal"}}
    event = {"version": "0", "id": f"bus-{uid}", "detail-type": "plugin.job.completed", "source": "powerx.plugins",
             "account": "123456789012", "time": "2026-12-04T10:00:00Z", "region": "us-east-1", "resources": [],
             "detail": detail}
    env = {k: v for k, v in {**os.environ, **rt.environment}.items() if not k.startswith("POWERTOOLS_")}
    with XrayDaemon() as daemon:
        env.update({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_SERVICE_NAME": "powerx-agent",
                    "POWERTOOLS_LOG_LEVEL": "INFO", "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
                    "_X_AMZN_TRACE_ID": f"Root={XRAY_ROOT};Parent=53995c3f42cd8ad8;Sampled=1"})
        run = subprocess.run([sys.executable, "-c", _INVOKE], input=json.dumps(event), env=env, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    result = lines[-1]["result"]
    workflow_id = workflow_id_for("acme", f"job-42:completed-{uid}")
    assert result == {"outcome": "accepted", "workflow_id": workflow_id}

    handler = daemon.named("## handler")
    assert handler["trace_id"] == XRAY_ROOT and handler["annotations"]["Service"] == "powerx-agent"
    assert handler["annotations"]["ColdStart"] is True
    unit = daemon.named("## ingest")
    assert unit["trace_id"] == XRAY_ROOT and unit["parent_id"] == handler["id"]
    assert unit["annotations"]["tenant_id"] == "acme" and unit["annotations"]["workflow_id"] == workflow_id
    assert unit["annotations"]["event_id"] == f"evt-c1-{uid}"
    # no traceparent came in: the event's W3C trace is this X-Ray trace, and the subsegment says so
    assert unit["annotations"]["w3c_trace_id"] == "5759e988bd862e3fe1be46a994272793"
    # the AWS SDK is patched: the idempotency claim and the queue send are subsegments of the unit
    aws_calls = {(d["name"], d["aws"]["operation"]): d for d in daemon.documents if d.get("namespace") == "aws"}
    assert ("dynamodb", "PutItem") in aws_calls, sorted(aws_calls)
    assert aws_calls[("sqs", "SendMessage")]["parent_id"] == unit["id"]

    (accepted,) = [line for line in lines if line.get("message") == "event accepted"]
    assert accepted["xray_trace_id"] == XRAY_ROOT
    assert accepted["traceparent"].split("-")[1] == "5759e988bd862e3fe1be46a994272793"
    assert (accepted["tenant_id"], accepted["workflow_id"], accepted["function_name"]) == (
        "acme", workflow_id, "powerx-agent-ingest")
