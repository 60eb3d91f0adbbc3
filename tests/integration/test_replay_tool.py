"""`powerx-agent replay` from the CLI against the embedded runtime: validate-first, batches
with retries of only the failed entries, duplicates, fresh keys with lineage, the signed API path and
the EventBridge archive replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import chain_kinds, detail, send
from typer.testing import CliRunner

from powerx_agent import spec
from powerx_agent.adapters.bus import Bus
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.ops.replay import replay_key


def _line(body: dict[str, Any], event_type: str = "plugin.job.completed", source: str = "powerx.plugins") -> str:
    return json.dumps({"source": source, "detail-type": event_type, "detail": body})


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _replay(*args: str) -> Any:
    return CliRunner().invoke(app, ["replay", *args])


class _FailEntries:
    """Makes PutEvents report chosen entries as failed (and not deliver them), like a throttled partial batch.

    ``plan`` maps a marker in the entry's Detail to how many attempts fail (-1: every attempt). A failing
    entry is re-sourced so that no rule matches it (PutEvents refuses an empty batch, so it cannot simply
    be dropped) and its result is replaced by an error.
    """

    def __init__(self, plan: dict[str, int]) -> None:
        self.plan = dict(plan)
        self.dropped: list[int] = []
        self.attempts: dict[str, int] = {}
        self.calls = 0

    def before(self, params: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        self.dropped = []
        for index, entry in enumerate(params["Entries"]):
            marker = next((m for m in self.plan if m in entry["Detail"]), None)
            if marker is not None:
                self.attempts[marker] = self.attempts.get(marker, 0) + 1
                if self.plan[marker] < 0 or self.attempts[marker] <= self.plan[marker]:
                    self.dropped.append(index)
                    entry["Source"] = "test.fault-injection"  # matched by no rule: never reaches ingest

    def after(self, parsed: dict[str, Any], **_: Any) -> None:
        entries = list(parsed.get("Entries", []))
        for index in self.dropped:
            entries[index] = {"ErrorCode": "ThrottlingException", "ErrorMessage": "injected: rate exceeded"}
        parsed["Entries"] = entries
        parsed["FailedEntryCount"] = parsed.get("FailedEntryCount", 0) + len(self.dropped)


def test_given_bad_lines_when_replaying_then_all_reported_with_line_numbers_and_nothing_sent(rt, uid, tmp_path):
    good = [detail(f"{uid}{i}") for i in range(3)]
    missing_tenant = {k: v for k, v in detail(f"{uid}x").items() if k != "tenant_id"}
    path = _write(tmp_path, [_line(good[0]), "{not json", _line(good[1]), _line(missing_tenant), "",
                             _line(good[2], event_type="bad type!")])
    result = _replay("--file", str(path), "--format", "json")
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert [(p["line"], p["code"]) for p in out["invalid"]] == [
        (2, "line.invalid_json"), (4, "envelope.missing_field"), (6, "envelope.invalid_field")]
    assert out["events"] == [] and "nothing was sent" in out["note"]
    assert all(get_deps().events.get("acme", g["idempotency_key"]) is None for g in good)


def test_given_partial_putevents_failures_when_replaying_then_only_failed_entries_retried(rt, uid, tmp_path,
                                                                                          monkeypatch):
    bodies = [detail(f"{uid}{i:02d}") for i in range(12)]  # two batches: 10 + 2
    flaky, broken = bodies[3]["event_id"], bodies[11]["event_id"]
    path = _write(tmp_path, [_line(b) for b in bodies] + ["[1, 2]"])
    fault = _FailEntries({f'"{flaky}"': 1, f'"{broken}"': -1})
    # on whichever EventBridge client the command's bus holds (deps are cached across tests, so the bus
    # may have been built before this test: hook it at the port, when it is used)
    hooked: list[Any] = []
    original = Bus.put

    def put(self: Bus, entries: list[dict[str, Any]]) -> Any:
        client = self._events
        if not any(client is c for c in hooked):
            client.meta.events.register("provide-client-params.events.PutEvents", fault.before)
            client.meta.events.register("after-call.events.PutEvents", fault.after)
            hooked.append(client)
        return original(self, entries)

    monkeypatch.setattr(Bus, "put", put)
    try:
        result = _replay("--file", str(path), "--skip-invalid", "--max-attempts", "3", "--format", "json")
    finally:
        for client in hooked:
            client.meta.events.unregister("provide-client-params.events.PutEvents", fault.before)
            client.meta.events.unregister("after-call.events.PutEvents", fault.after)
    assert result.exit_code == 1, result.output  # one event could not be sent
    out = json.loads(result.output)
    assert out["summary"]["sent"] == 11 and out["summary"]["failed"] == 1 and out["summary"]["invalid"] == 1
    assert out["summary"]["failures"] == [{"line": 12, "event_id": broken, "code": "ThrottlingException",
                                           "message": "injected: rate exceeded"}]
    by_id = {e["event_id"]: e for e in out["events"]}
    assert by_id[flaky]["attempts"] == 2 and by_id[bodies[0]["event_id"]]["attempts"] == 1
    # 2 batches, the first retried once for its one failed entry, the second retried twice for its own
    assert fault.calls == 5 and fault.attempts == {f'"{flaky}"': 2, f'"{broken}"': 3}
    assert rt.wait_idle(90)
    deps = get_deps()
    started = [b for b in bodies if deps.events.get("acme", b["idempotency_key"])]
    assert len(started) == 11 and bodies[11] not in started


def test_given_event_already_run_when_replayed_then_duplicate_and_with_new_key_runs_again_with_lineage(
        rt, uid, tmp_path):
    body = detail(uid)
    first = send(rt, "plugin.job.completed", body)
    assert first is not None and first["status"] == "SUCCEEDED"
    path = _write(tmp_path, [_line(body)])
    again = _replay("--file", str(path), "--format", "json")
    assert again.exit_code == 0
    out = json.loads(again.output)
    assert out["summary"]["duplicates"] == 1 and out["summary"]["sent"] == 0
    assert out["events"][0]["workflow_id"] == first["workflow_id"]
    dry = _replay("--file", str(path), "--new-key", "--dry-run", "--format", "json")
    assert json.loads(dry.output)["summary"]["would_send"] == 1
    new_key = replay_key(body["idempotency_key"], 1)
    assert get_deps().events.get("acme", new_key) is None
    fresh = _replay("--file", str(path), "--new-key")
    assert fresh.exit_code == 0, fresh.output
    assert "sent 1, duplicates 0, failed 0" in fresh.output
    assert rt.wait_idle(60)
    replay_wf = workflow_id_for("acme", new_key)
    assert get_deps().workflows.get(replay_wf)["status"] == "SUCCEEDED"
    accepted = next(r for r in get_deps().audit.chain(f"WF#{replay_wf}") if r["kind"] == "event.accepted")
    assert accepted["data"]["replay_of"] == body["event_id"]
    assert accepted["data"]["replayed_by"].startswith("powerx-agent replay (")
    # the same replay generation again is absorbed: a retried replay command does not run it a third time
    assert json.loads(_replay("--file", str(path), "--new-key", "--format", "json").output)["summary"][
        "duplicates"] == 1


def test_given_filters_when_dry_run_then_only_selected_tenant_and_type_shown_and_nothing_sent(rt, uid, tmp_path):
    lines = [_line(detail(f"{uid}a")), _line(detail(f"{uid}b", tenant="globex")),
             _line(detail(f"{uid}c"), event_type="plugin.job.failed")]
    result = _replay("--file", str(_write(tmp_path, lines)), "--tenant", "acme", "--event-type",
                     "plugin.job.completed", "--dry-run", "--format", "json")
    assert result.exit_code == 0
    out = json.loads(result.output)
    assert [(e["line"], e["status"]) for e in out["events"]] == [(1, "would_send")]
    assert out["summary"]["filtered_out"] == 2 and out["summary"]["dry_run"] is True
    assert get_deps().events.get("acme", f"key-{uid}a") is None


def test_given_via_api_when_replaying_then_each_event_signed_and_answered(rt, uid, tmp_path):
    done = detail(f"{uid}d")
    send(rt, "plugin.job.completed", done)
    new = detail(f"{uid}n")
    suspended = detail(f"{uid}s", tenant="initech")
    conflict = {**done, "event_id": f"evt-{uid}-c", "payload": {"job": {"id": "zz", "type": "report", "rows": 3}}}
    path = _write(tmp_path, [_line(b, source="powerx.replay") for b in (new, done, suspended, conflict)])
    result = _replay("--file", str(path), "--via", "api", "--api-url", rt.api.url, "--format", "json")
    assert result.exit_code == 1
    answers = [(e["status"], e.get("http_status"), e.get("code")) for e in json.loads(result.output)["events"]]
    assert answers == [("accepted", 202, None), ("duplicate", 200, None), ("failed", 403, "tenant.suspended"),
                       ("failed", 409, "idempotency.payload_conflict")]
    assert rt.wait_idle(60)
    wf = workflow_id_for("acme", new["idempotency_key"])
    accepted = next(r for r in get_deps().audit.chain(f"WF#{wf}") if r["kind"] == "event.accepted")
    # the key's caller authenticates; the person running the command is the lineage's actor
    assert accepted["data"]["replayed_by"].startswith("operator (powerx-agent replay (")
    unknown = _replay("--file", str(path), "--via", "api", "--api-url", rt.api.url, "--caller", "nobody")
    assert unknown.exit_code == 2 and "no caller 'nobody'" in " ".join(unknown.output.split())


def test_given_archive_when_replayed_then_archived_events_redelivered_to_ingest(rt, uid):
    events = rt.client("events")
    bus_arn = events.describe_event_bus(Name=spec.BUS_NAME)["Arn"]
    archive = f"replay-test-{uid}"
    events.create_archive(ArchiveName=archive, EventSourceArn=bus_arn,
                          EventPattern=json.dumps({"detail": {"event_id": [f"evt-{uid}"]}}))
    body = detail(uid)
    assert send(rt, "plugin.job.completed", body)["status"] == "SUCCEEDED"
    workflow_id = workflow_id_for("acme", body["idempotency_key"])
    assert "event.duplicate" not in chain_kinds(workflow_id)
    refused = _replay("--archive", archive, "--start", "2020-01-01T00:00:00Z", "--end", "2099-01-01T00:00:00Z",
                      "--tenant", "acme")
    assert refused.exit_code == 2
    result = _replay("--archive", archive, "--start", "2020-01-01T00:00:00Z", "--end", "2099-01-01T00:00:00Z",
                     "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["state"] == "COMPLETED"
    assert rt.wait_idle(60)
    kinds = chain_kinds(workflow_id)
    assert kinds.count("event.duplicate") >= 1 and kinds.count("workflow.started") == 1
