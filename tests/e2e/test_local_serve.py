"""``powerx-agent local serve`` as a user runs it: fixed ports, the variables the AWS CLI needs, function
logs streamed, state kept across a restart (or discarded with --reset)."""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import requests

from powerx_agent import spec
from powerx_agent.local.ports import busy, service_ports
from tests.integration.helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "powerx_agent.cli.main"]
C1 = json.loads((REPO / "tests" / "events" / "c1-plugin-job-completed.json").read_text())


def free_base_port() -> int:
    for _ in range(200):
        port = random.randrange(20_000, 32_000)  # below the ephemeral range (32768+)
        if not busy(service_ports(port)):
            return port
    raise RuntimeError("no free port range")


class Serve:
    """One `local serve` child process; its output is read line by line as it comes."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERX_", "MOTO_"))}
        self.proc = subprocess.Popen([*CLI, "local", "serve", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not printed; got:\n" + "\n".join(self.lines[-60:]))

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=180)  # saving the state and stopping threads, on a loaded 2-core CI machine
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        while True:
            try:
                line = self._queue.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return "\n".join(self.lines)


def client(service: str, port: int):
    return boto3.client(service, endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def workflows(port: int) -> list[dict]:
    return client("dynamodb", port).scan(TableName=spec.WORKFLOWS_TABLE.name)["Items"]


def test_given_serve_with_port_state_dir_and_logs_when_used_restarted_and_reset_then_state_follows(tmp_path):
    port = free_base_port()
    state = tmp_path / "state"
    state.mkdir()
    stale = {"pk": {"S": "WF#wf-stale"}, "sk": {"S": "META"}, "status": {"S": "RUNNING"}}
    (state / "dynamodb.json").write_text(json.dumps({"format": 1, "tables": {spec.WORKFLOWS_TABLE.name: [stale]}}))
    serve = Serve("--port", str(port), "--state-dir", str(state), "--reset", "--logs")
    try:
        serve.wait_for("discarded (--reset)")
        exports = serve.wait_for("export ")
        serve.wait_for("Ctrl-C stops it.")
        for needed in (f"AWS_ENDPOINT_URL=http://127.0.0.1:{port}", "AWS_DEFAULT_REGION=us-east-1",
                       "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
                       f"POWERX_SANDBOX_URL=http://127.0.0.1:{port + 1}"):
            assert needed in exports
        text = "\n".join(serve.lines)
        assert f"internal API  http://127.0.0.1:{port + 2}" in text
        assert f"console       http://127.0.0.1:{port + 3}/" in text
        session = requests.get(f"http://127.0.0.1:{port + 3}/api/session", timeout=10)
        assert session.status_code == 200 and session.json()["target"].startswith("embedded runtime")
        # a second serve on the same ports is refused before it starts anything
        second = subprocess.run([*CLI, "local", "serve", "--port", str(port)], capture_output=True, text=True,
                                timeout=60, cwd=REPO)
        assert second.returncode == 1 and "already in use" in second.stderr and "Traceback" not in second.stderr
        # the stock SDK with only the printed variables: an event goes through, the function logs stream
        out = client("events", port).put_events(Entries=[{
            "Source": C1["source"], "DetailType": C1["detail-type"], "Detail": json.dumps(C1["detail"]),
            "EventBusName": spec.BUS_NAME}])
        assert out["FailedEntryCount"] == 0
        serve.wait_for("[powerx-agent-ingest] START RequestId:")
        serve.wait_for("[powerx-agent-node-plugin] REPORT RequestId:")
        wait_until(timeout=180, check=lambda: [w for w in workflows(port) if w.get("status", {}).get("S") == "SUCCEEDED"
                            and w["sk"]["S"] == "META"])
        assert not [w for w in workflows(port) if w["pk"]["S"] == "WF#wf-stale"]
    finally:
        output = serve.stop()
    assert serve.proc.returncode == 0, output[-3000:]
    assert f"state saved to {state / 'dynamodb.json'}" in output

    restarted = Serve("--port", str(port), "--state-dir", str(state))
    try:
        line = restarted.wait_for("state         ")
        assert "restored" in line
        restarted.wait_for("Ctrl-C stops it.")
        assert [w for w in workflows(port) if w["sk"]["S"] == "META" and w["status"]["S"] == "SUCCEEDED"]
    finally:
        restarted.stop()



def test_given_reset_without_a_state_dir_when_serve_runs_then_a_usage_error_before_starting():
    done = subprocess.run([*CLI, "local", "serve", "--reset"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2 and "--state-dir" in done.stderr


def test_given_a_corrupt_state_file_when_serve_runs_then_one_line_and_nothing_started(tmp_path):
    (tmp_path / "dynamodb.json").write_text("{not json")
    done = subprocess.run([*CLI, "local", "serve", "--state-dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert done.returncode == 1 and "--reset" in done.stderr and "Traceback" not in done.stderr
    assert "Ctrl-C" not in done.stdout


def test_given_a_port_out_of_range_when_serve_runs_then_a_usage_error():
    done = subprocess.run([*CLI, "local", "serve", "--port", "80"], capture_output=True, text=True, timeout=60,
                          cwd=REPO)
    assert done.returncode == 2
