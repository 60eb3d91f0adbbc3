"""audit-streaming off → records held back (cursor); on again → caught up first, nothing lost or doubled."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerx_agent.audit import stream
from powerx_agent.audit.records import indexed, iso_at, minute_of
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
    """The store's read contract over a list of records, with the real sparse index rule
    (``records.indexed``): index entries only for the first record of a chain in each minute."""

    def __init__(self, records: list[dict]) -> None:
        self.records = records
        self.consistent: bool | None = None

    def index_hits(self, ts: str) -> list[tuple[str, int, str]]:
        bound = ts if "#" in ts else minute_of(ts)
        hits, chains = [], {}
        for r in sorted(self.records, key=lambda r: (r["pk"], r["seq"])):
            chains.setdefault(r["pk"], []).append(r)
        for chain, records in chains.items():
            prev = None
            for r in records:
                entry = f"{r['ts']}#{chain}#{r['seq']:08d}"
                if indexed(r["seq"], r["ts"], prev) and entry >= bound:
                    hits.append((chain, r["seq"], entry))
                prev = r["ts"]
        return sorted(hits, key=lambda h: h[2])

    def records_of(self, starts: dict[str, int], ts: str, *, consistent: bool = False) -> list[dict]:
        self.consistent = consistent
        return sorted((r for r in self.records if r["pk"] in starts and r["seq"] >= starts[r["pk"]] and r["ts"] >= ts),
                      key=lambda r: (r["ts"], r["pk"], r["seq"]))


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


class Ticks:
    """A clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def paused(chains: int, records_each: int, start: float = 1_764_324_000.0, gap: float = 7.0) -> list[dict]:
    return [rec(seq, iso_at(start + c * 0.5 + (seq - 1) * gap), chain=f"WF#c{c:04d}")
            for c in range(chains) for seq in range(1, records_each + 1)]


def catch_up_fully(stored: list[dict], held: str, budget: float, step: float, limit: int) -> tuple[list, int]:
    """Batches arrive (each one a record not in the window) until the cursor is gone: the lines sent by the
    catch-ups, and how many invocations it took."""
    sink, cursor, audit = FakeSink(), FakeCursor(held), FakeAudit(stored)
    for invocation in range(1, limit + 1):
        forward([rec(1, "2099-01-01T00:00:00.000Z", chain=f"WF#live{invocation}")], streaming_on=True, sink=sink,
                cursor=cursor, audit=audit, budget=budget, clock=Ticks(step))
        if cursor.since is None:
            return [line for line in sink.lines if not line["chain"].startswith("WF#live")], invocation
    raise AssertionError(f"still catching up after {limit} invocations; cursor {cursor.since}")


def test_given_a_pause_longer_than_one_budget_when_caught_up_then_in_bounded_invocations_every_record_sent(
        monkeypatch):
    monkeypatch.setattr(stream, "CATCH_UP_GROUP", 50)
    stored = paused(chains=180, records_each=4)  # 180 chains over 90 s: index entries in two minutes and more
    held = min(r["ts"] for r in stored)
    lines, invocations = catch_up_fully(stored, held, budget=1.0, step=5.0, limit=20)  # one group per invocation
    sent = [(line["chain"], line["seq"]) for line in lines]
    assert sorted(set(sent)) == sorted((r["pk"], r["seq"]) for r in stored)
    hits = len(FakeAudit(stored).index_hits(held))
    assert invocations <= -(-hits // 50) + 1


@settings(max_examples=60, deadline=None)
@given(chains=st.integers(1, 40), records_each=st.integers(1, 6), gap=st.floats(0.5, 40.0),
       held_at=st.integers(0, 200), group=st.integers(1, 7), step=st.sampled_from([0.1, 2.0]))
def test_given_any_pause_when_caught_up_in_slices_then_every_record_since_the_cursor_is_sent(
        chains, records_each, gap, held_at, group, step):
    stream.CATCH_UP_GROUP, before = group, stream.CATCH_UP_GROUP
    try:
        stored = paused(chains, records_each, gap=gap)
        held = iso_at(1_764_324_000.0 + held_at * 0.5)
        lines, _ = catch_up_fully(stored, held, budget=1.0, step=step, limit=10_000)
    finally:
        stream.CATCH_UP_GROUP = before
    assert {(r["pk"], r["seq"]) for r in stored if r["ts"] >= held} <= {(line["chain"], line["seq"]) for line in lines}
