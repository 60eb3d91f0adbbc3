"""``replay --dry-run`` is offline: it validates and filters the events and says what it would send,
without a single connection, whatever the target (an endpoint nobody listens on, a stack that cannot
be read). Every connection attempt is refused and recorded here."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from powerx_agent.cli.main import app
from tests.conftest import REPO
from tests.integration.test_cli_every_command import isolated_environment

TARGETS = {"unreachable endpoint": ["--endpoint-url", "http://127.0.0.1:9"],
           "stack that cannot be read": ["--stack", "NoSuchStack", "--region", "eu-west-1"]}


@pytest.fixture()
def connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Connections the command (this thread) tries, each refused; other threads (an embedded runtime's
    pollers, when one runs in this session) connect as usual."""
    attempts: list[object] = []
    command_thread = threading.current_thread()
    connect = socket.socket.connect

    def refuse(self: socket.socket, address: object) -> None:
        if threading.current_thread() is not command_thread:
            return connect(self, address)
        attempts.append(address)
        raise ConnectionRefusedError(f"the test refuses every connection ({address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.fixture()
def events_file(tmp_path: Path) -> Path:
    event = json.loads((REPO / "tests" / "events" / "c1-plugin-job-completed.json").read_text())
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(event) + "\n" + "{not json\n")
    return path


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("via", ["events", "api"])
def test_given_a_file_when_replayed_dry_then_nothing_connects_and_the_plan_is_shown(
        target, via, events_file, connections):
    with isolated_environment(AWS_MAX_ATTEMPTS="1", AWS_ENDPOINT_URL=None, POWERX_API_URL=None):
        result = CliRunner().invoke(app, [*TARGETS[target], "replay", "--file", str(events_file), "--dry-run",
                                          "--skip-invalid", "--via", via, "--api-url", "http://127.0.0.1:9",
                                          "--format", "json"])
    assert result.exit_code == 1, result.output  # the invalid line is a finding, dry run or not
    report = json.loads(result.output)
    assert connections == []
    assert report["summary"]["dry_run"] is True
    assert (report["summary"]["would_send"], report["summary"]["invalid"]) == (1, 1)
    assert [(e["tenant_id"], e["status"]) for e in report["events"]] == [("acme", "would_send")]
    assert report["invalid"][0]["code"] == "line.invalid_json"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_given_an_archive_when_replayed_dry_then_nothing_connects_and_the_replay_is_described(target, connections):
    with isolated_environment(AWS_MAX_ATTEMPTS="1", AWS_ENDPOINT_URL=None):
        result = CliRunner().invoke(app, [*TARGETS[target], "replay", "--archive", "powerx-agent-archive",
                                          "--start", "2026-11-28T00:00:00Z", "--end", "2026-11-28T12:00:00Z",
                                          "--dry-run", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["dry_run"] is True
    assert connections == []
