"""``powerx-agent local sandbox ...`` drives the faults of a running sandbox over loopback HTTP."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from powerx_agent.cli.main import app
from powerx_agent.local.sandbox import Sandbox

runner = CliRunner()


@pytest.fixture()
def sandbox():
    box = Sandbox().start()
    try:
        yield box
    finally:
        box.stop()


def sandbox_cli(sandbox: Sandbox, *args: str):
    return runner.invoke(app, ["local", "sandbox", "--sandbox-url", sandbox.url, *args])


def test_given_fail_times_when_run_then_the_plugin_fails_that_many_times_then_succeeds(sandbox):
    done = sandbox_cli(sandbox, "fail", "report-renderer", "--times", "2", "--status", "502")
    assert done.exit_code == 0, done.output
    assert "plugin report-renderer: answers 502 (next 2 call(s))" in done.output
    assert [sandbox._answer("/plugin/runtime/report-renderer/execute", {})[0] for _ in range(3)] == [502, 502, 200]


@pytest.mark.parametrize(("args", "expected"), [
    (("fail", "archive", "--always"), {"mode": "fail", "remaining": -1, "status": 500}),
    (("down", "archive"), {"mode": "fail", "remaining": -1, "status": 503}),
    (("flaky", "archive", "--rate", "0.25", "--seed", "4"), {"mode": "flaky", "rate": 0.25}),
    (("slow", "archive", "--seconds", "3", "--times", "1"), {"mode": "slow", "delay": 3.0, "remaining": 1}),
    (("async", "archive", "--delay", "2", "--outcome", "failed"), {"mode": "async", "delay": 2.0, "outcome": "failed"}),
])
def test_given_a_plugin_fault_command_when_run_then_the_sandbox_holds_it(sandbox, args, expected):
    done = sandbox_cli(sandbox, *args, "--format", "json")
    assert done.exit_code == 0, done.output
    state = json.loads(done.output)["plugins"]["archive"]
    assert {k: state[k] for k in expected} == expected


def test_given_services_down_then_up_when_run_then_notifications_and_ops_follow(sandbox):
    assert sandbox_cli(sandbox, "down", "ops").exit_code == 0
    assert sandbox._answer("/ops/manual-review", {})[0] == 503
    assert sandbox_cli(sandbox, "fail", "notifications", "--times", "1").exit_code == 0
    assert [sandbox._answer("/notifications/agent-task", {})[0] for _ in range(2)] == [503, 202]
    done = sandbox_cli(sandbox, "up", "ops")
    assert done.exit_code == 0 and "ops: up" in done.output
    assert sandbox._answer("/ops/manual-review", {})[0] == 201


def test_given_faults_when_reset_and_status_then_nothing_is_left(sandbox):
    sandbox_cli(sandbox, "down", "archive")
    assert sandbox_cli(sandbox, "reset").exit_code == 0
    done = sandbox_cli(sandbox, "status", "--format", "json")
    assert json.loads(done.output)["plugins"] == {}


def test_given_calls_when_listed_then_paths_statuses_and_keys(sandbox):
    sandbox._record("/plugin/runtime/archive/execute", {"Idempotency-Key": "wf-1:archive:1"}, {}, 200)
    done = sandbox_cli(sandbox, "calls", "--limit", "5")
    assert done.exit_code == 0 and "200  POST /plugin/runtime/archive/execute  Idempotency-Key=wf-1:archive:1" in done.output


def test_given_the_endpoint_of_a_serve_with_port_when_no_sandbox_url_then_port_plus_one_is_used(sandbox, monkeypatch):
    monkeypatch.delenv("POWERX_SANDBOX_URL", raising=False)
    monkeypatch.delenv("PLUGIN_RUNTIME_URL", raising=False)
    port = int(sandbox.url.rsplit(":", 1)[1])
    done = runner.invoke(app, ["--endpoint-url", f"http://127.0.0.1:{port - 1}", "local", "sandbox", "down", "ops"])
    assert done.exit_code == 0, done.output
    assert "ops" in sandbox._services_down


@pytest.mark.parametrize(("args", "code", "says"), [
    (("fail", "archive"), 2, "--times N or --always"),
    (("fail", "Bad/Plugin", "--times", "1"), 2, "not a plugin id"),
    (("flaky", "archive", "--rate", "2"), 2, "rate"),
    (("async", "archive", "--outcome", "maybe"), 2, "succeeded or failed"),
])
def test_given_bad_arguments_when_run_then_a_usage_error_and_no_change(sandbox, args, code, says):
    done = sandbox_cli(sandbox, *args)
    assert done.exit_code == code and says in done.output
    assert sandbox.describe()["plugins"] == {}


def test_given_no_sandbox_listening_when_run_then_one_line_and_exit_1():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = runner.invoke(app, ["local", "sandbox", "--sandbox-url", f"http://127.0.0.1:{port}", "status"])
    assert done.exit_code == 1
    assert "no sandbox answers" in done.output and "Traceback" not in done.output


def test_given_a_remote_url_when_run_then_refused_before_any_call():
    done = runner.invoke(app, ["local", "sandbox", "--sandbox-url", "http://203.0.113.7:8080", "status"])
    assert done.exit_code == 2 and "loopback only" in done.output
