"""audit-streaming off → records held back (cursor); on again → caught up first, nothing lost or doubled."""

from __future__ import annotations

import json

import pytest

from powerx_agent.audit.stream import forward


def rec(seq: int, ts: str, chain: str = "WF#w") -> dict:
    return {"pk": chain, "seq": seq, "ts": ts, "kind": "node.running", "data": {"token": "secret-value"}}


class FakeSink:
    def __init__(self, fail: bool = False) -> None:
        self.lines: list[dict] = []
        self.fail = fail

    def put(self, log_events: list[dict], day: str) -> int:
        if self.fail:
            raise RuntimeError("logs unavailable")
        self.lines += [json.loads(e["message"]) for e in log_events]
        return len(log_events)


class FakeCursor:
    def __init__(self, since: str | None = None) -> None:
        self.since = since

    def hold(self, ts: str) -> None:
        if self.since is None or ts < self.since:
            self.since = ts

    def take(self) -> str | None:
        since, self.since = self.since, None
        return since


class FakeAudit:
    def __init__(self, records: list[dict]) -> None:
        self.records = records
        self.consistent: bool | None = None

    def since(self, ts: str, *, consistent: bool = False) -> list[dict]:
        self.consistent = consistent
        return sorted((r for r in self.records if r["ts"] >= ts), key=lambda r: r["ts"])


def test_given_flag_off_when_batches_arrive_then_nothing_forwarded_and_earliest_time_held():
    sink, cursor = FakeSink(), FakeCursor()
    out1 = forward([rec(2, "2026-11-28T10:00:02Z")], streaming_on=False, sink=sink, cursor=cursor, audit=None)
    forward([rec(1, "2026-11-28T10:00:01Z")], streaming_on=False, sink=sink, cursor=cursor, audit=None)
    assert out1 == {"forwarded": 0, "paused": 1}
    assert sink.lines == [] and cursor.since == "2026-11-28T10:00:01Z"


def test_given_cursor_held_when_flag_on_again_then_backlog_forwarded_once_and_cursor_cleared():
    stored = [rec(1, "2026-11-28T10:00:01Z"), rec(2, "2026-11-28T10:00:02Z"), rec(3, "2026-11-28T10:00:03Z"),
              rec(1, "2026-11-28T09:00:00Z", chain="WF#old")]
    sink, cursor = FakeSink(), FakeCursor("2026-11-28T10:00:01Z")
    audit = FakeAudit(stored)
    out = forward([stored[2]], streaming_on=True, sink=sink, cursor=cursor, audit=audit)
    assert [(line["chain"], line["seq"]) for line in sink.lines] == [("WF#w", 1), ("WF#w", 2), ("WF#w", 3)]
    assert out["forwarded"] == 3 and out["caught_up"] == 2 and cursor.since is None
    assert audit.consistent is True  # records the sparse index does not hold are found by a chain read


def test_given_forwarding_fails_during_catch_up_then_cursor_is_put_back():
    stored = [rec(1, "2026-11-28T10:00:01Z")]
    cursor = FakeCursor("2026-11-28T10:00:01Z")
    with pytest.raises(RuntimeError):
        forward([rec(2, "2026-11-28T10:00:05Z")], streaming_on=True, sink=FakeSink(fail=True), cursor=cursor,
                audit=FakeAudit(stored))
    assert cursor.since == "2026-11-28T10:00:01Z"


def test_given_flag_on_and_no_cursor_when_forwarded_then_lines_are_redacted_log_fields():
    sink = FakeSink()
    forward([rec(1, "2026-11-28T10:00:01Z")], streaming_on=True, sink=sink, cursor=FakeCursor(), audit=None)
    (line,) = sink.lines
    assert line["data"] == {"token": "***"}
    assert {"event_id", "strategy_id", "workflow_id", "node_id", "status", "duration",
            "escalation_reason"} <= set(line)
