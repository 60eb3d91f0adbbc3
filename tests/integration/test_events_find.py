"""Finding events: `events show` by event id, idempotency key or the EventBridge EventId PutEvents
returned; `events list` by tenant, status and window; `events list --format jsonl` feeds `replay --file`
as it is (the runbook's "replay the deferred events" loop)."""

from __future__ import annotations

import json
from pathlib import Path

from test_flags import flags_restored, set_flag  # noqa: F401 - fixture
from typer.testing import CliRunner

from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for
from tests.integration.helpers import detail, send

cli = CliRunner()


def run(*args: str):
    return cli.invoke(app, list(args))


def test_given_an_event_when_shown_by_event_id_key_or_eventbridge_id_then_each_finds_it_with_its_workflow(rt, uid):
    body = detail(uid)
    put = rt.put_event("plugin.job.completed", body)
    assert rt.wait_idle(60)
    bus_id = put["Entries"][0]["EventId"]
    workflow_id = workflow_id_for("acme", body["idempotency_key"])
    for wanted in (body["event_id"], body["idempotency_key"], bus_id, workflow_id):
        shown = run("events", "show", wanted, "--format", "json")
        assert shown.exit_code == 0, shown.output
        view = json.loads(shown.stdout)
        assert (view["event_id"], view["idempotency_key"], view["workflow_id"]) == (
            body["event_id"], body["idempotency_key"], workflow_id)
        assert view["status"] == "COMPLETED" and view["workflow_status"] == "SUCCEEDED"
        assert bus_id in view["bus_event_ids"] and view["decision"]["status"] == "MATCHED"
    text = run("events", "show", body["idempotency_key"], "--tenant", "acme")
    assert text.exit_code == 0 and workflow_id in text.stdout and "COMPLETED" in text.stdout


def test_given_a_rejected_event_when_shown_and_listed_then_its_reason_is_there(rt, uid):
    body = detail(uid, tenant="nobody-registered")
    put = rt.put_event("plugin.job.completed", body)
    assert rt.wait_idle(60)
    shown = run("events", "show", put["Entries"][0]["EventId"], "--format", "json")
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.stdout)
    assert view["status"] == "REJECTED" and view["rejection"]["code"] == "tenant.unknown"
    assert view["workflow_id"] is None and view["idempotency_key"] == body["idempotency_key"]
    listed = run("events", "list", "--status", "REJECTED", "--since", "10m", "--format", "json")
    assert listed.exit_code == 0, listed.output
    (row,) = [r for r in json.loads(listed.stdout) if r["event_id"] == body["event_id"]]
    assert row["reason"] == "tenant.unknown"
    jsonl = run("events", "list", "--status", "REJECTED", "--since", "10m", "--format", "jsonl")
    assert jsonl.exit_code == 0 and "ingest DLQ" in jsonl.stderr
    both = run("events", "list", "--tenant", "nobody-registered", "--status", "REJECTED,DEFERRED", "--since", "1h",
               "--query", "[].reason")  # the runbook's form
    assert both.exit_code == 0 and "tenant.unknown" in both.stdout


def test_given_deferred_events_when_listed_as_jsonl_then_replay_file_runs_them_as_they_are(
        rt, uid, tmp_path: Path, flags_restored):  # noqa: F811 - fixture
    set_flag("agent-orchestrator", "off")
    bodies = [detail(f"{uid}-{i}") for i in range(2)]
    for body in bodies:
        send(rt, "plugin.job.completed", body)
    listed = run("events", "list", "--tenant", "acme", "--status", "DEFERRED", "--since", "10m", "--format", "jsonl")
    assert listed.exit_code == 0, listed.output
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {line["detail"]["event_id"] for line in lines} >= {b["event_id"] for b in bodies}
    mine = [line for line in lines if line["detail"]["event_id"] in {b["event_id"] for b in bodies}]
    path = tmp_path / "deferred.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in mine))
    set_flag("agent-orchestrator", "on")
    dry = run("replay", "--file", str(path), "--dry-run")
    assert dry.exit_code == 0, dry.output
    replayed = run("replay", "--file", str(path))
    assert replayed.exit_code == 0, replayed.output
    assert rt.wait_idle(60)
    for body in bodies:
        assert get_deps().workflows.get(workflow_id_for("acme", body["idempotency_key"]))["status"] == "SUCCEEDED"
    again = run("events", "list", "--tenant", "acme", "--status", "DEFERRED", "--since", "10m", "--format", "json")
    assert not [r for r in json.loads(again.stdout) if r["event_id"] in {b["event_id"] for b in bodies}]


def test_given_bad_arguments_when_events_commands_run_then_one_line_and_no_traceback(rt, uid):
    missing = run("events", "show", f"nothing-{uid}", "--since", "5m")
    assert missing.exit_code == 1 and "events.not_found" in missing.output and "Traceback" not in missing.output
    # malformed arguments are usage errors (exit 2), refused before anything is read
    status = run("events", "list", "--status", "COMPLETED,LOST")
    assert status.exit_code == 2 and "Invalid value for '--status': unknown status LOST" in status.output
    window = run("events", "list", "--since", "yesterday-ish")
    assert window.exit_code == 2 and "Invalid value for '--since': 'yesterday-ish' is neither" in window.output
    until = run("events", "list", "--until", "99999999999d")
    assert until.exit_code == 2 and "reaches back more than" in until.output and "Traceback" not in until.output
    brackets = run("events", "show", f"[{uid}]", "--since", "5m")
    assert f"[{uid}]" in brackets.output  # user text is never read as markup


def test_given_workflows_when_listed_by_strategy_window_and_event_then_only_those_with_rfc3339_times(rt, uid):
    body = detail(uid)
    wf = send(rt, "plugin.job.completed", body)
    workflow_id = wf["workflow_id"]

    def ids(*args: str) -> list[str]:
        listed = run("workflow", "list", "--tenant", "acme", *args, "--format", "json")
        assert listed.exit_code == 0, listed.output
        return [r["workflow_id"] for r in json.loads(listed.stdout)]

    assert ids("--event", body["event_id"]) == [workflow_id]
    assert ids("--event", body["idempotency_key"]) == [workflow_id]
    assert workflow_id in ids("--strategy", wf["strategy_id"], "--since", "10m")
    assert workflow_id not in ids("--strategy", "no-such-strategy")
    assert workflow_id not in ids("--until", "1h")  # created within the last hour: not before it
    (row,) = json.loads(run("workflow", "list", "--event", body["event_id"], "--format", "json").stdout)
    assert row["created_at"].endswith("Z") and "T" in row["created_at"] and row["generation"] == 1
    bad = run("workflow", "list", "--since", "a while")
    assert bad.exit_code == 2 and "Invalid value for '--since'" in bad.output and "Traceback" not in bad.output
    status = run("workflow", "list", "--status", "done")
    assert status.exit_code == 2 and "unknown status DONE: one of PENDING" in status.output
