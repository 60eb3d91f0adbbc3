"""The sparse ``by_time`` index on the moto-backed table: records written across minute and day boundaries
by the real ``AuditStore`` (its clock injected) are all found by ``since``, while the index holds only the
first record of each chain in each minute (docs/write-path.md, "No hot key")."""

from __future__ import annotations

from typing import Any

from powerx_agent.adapters.audit_store import AuditStore
from powerx_agent.adapters.dynamo import from_item, values
from powerx_agent.audit.records import AuditEntry, minute_of
from powerx_agent.audit.shards import time_key
from powerx_agent.clock import Clock
from powerx_agent.deps import get_deps
from powerx_agent.testing.fakes import FakeClock

UNTIL = "2001-02-04T23:59:59.999Z"  # bounds the index days read: the records below are of 2001-02-03/04


def store(clock: Clock) -> AuditStore:
    deps = get_deps()
    return AuditStore(deps.ddb, deps.settings.audit_table, clock)


def index_entries(chain: str, days: list[str]) -> list[dict[str, Any]]:
    deps = get_deps()
    found = []
    for day in days:
        out = deps.ddb.query(TableName=deps.settings.audit_table, IndexName="by_time",
                             KeyConditionExpression="#d = :d", ExpressionAttributeNames={"#d": "day"},
                             ExpressionAttributeValues=values(d=time_key(day, chain)))
        found += [r for r in map(from_item, out["Items"]) if r["pk"] == chain]
    return sorted(found, key=lambda r: r["seq"])


# (chain index, time): three chains interleaved over two minutes before midnight and two after
WRITES = [(0, "2001-02-03T23:58:10.000Z"), (1, "2001-02-03T23:58:11.000Z"), (0, "2001-02-03T23:58:20.000Z"),
          (0, "2001-02-03T23:58:59.999Z"), (2, "2001-02-03T23:59:00.000Z"), (0, "2001-02-03T23:59:00.000Z"),
          (1, "2001-02-03T23:59:30.000Z"), (1, "2001-02-03T23:59:59.500Z"), (0, "2001-02-04T00:00:00.200Z"),
          (2, "2001-02-04T00:00:30.000Z"), (0, "2001-02-04T00:00:31.000Z"), (1, "2001-02-04T00:01:10.000Z"),
          (2, "2001-02-04T00:01:20.000Z"), (2, "2001-02-04T00:01:21.000Z")]


def test_given_records_across_minutes_and_midnight_when_read_since_then_all_found_and_index_sparse(rt, uid):
    chains = [f"OPS#sparse-{uid}-{i}" for i in range(3)]
    clock = FakeClock()
    writer = store(clock)
    written = []
    for n, at in WRITES:
        clock.at = at
        written.append(writer.append(AuditEntry("flag.changed", chains[n], data={"at": at})))

    before = {(r["pk"], r["seq"] + 1): r for r in written}
    opens_minute = [r for r in written if r["seq"] == 1 or minute_of(before[r["pk"], r["seq"]]["ts"]) != minute_of(r["ts"])]
    assert len(opens_minute) == 9 < len(written)
    indexed = [r for chain in chains for r in index_entries(chain, ["2001-02-03", "2001-02-04"])]
    assert sorted((r["pk"], r["seq"]) for r in indexed) == sorted((r["pk"], r["seq"]) for r in opens_minute)

    reader = store(FakeClock())  # another process: nothing cached
    for t in ["2001-02-03T23:58:00.000Z", "2001-02-03T23:58:15.000Z", "2001-02-03T23:58:59.999Z",
              "2001-02-03T23:59:45.000Z", "2001-02-04T00:00:00.000Z", "2001-02-04T00:00:30.500Z",
              "2001-02-04T00:01:20.500Z"]:
        for consistent in (False, True):
            found = [(r["pk"], r["seq"]) for r in reader.since(t, UNTIL, consistent=consistent) if r["pk"] in chains]
            expected = [(r["pk"], r["seq"]) for r in sorted(written, key=lambda r: r["ts_seq"]) if r["ts"] >= t]
            assert found == expected, t
    start, until = "2001-02-03T23:58:15.000Z", "2001-02-03T23:59:30.000Z"
    window = [r["ts"] for r in reader.since(start, until) if r["pk"] in chains]
    assert window == sorted(at for _, at in WRITES if start <= at <= until) and window[-1] == until


def test_given_writers_with_stale_tails_when_they_append_then_the_winner_time_decides_the_index(rt, uid):
    chain = f"OPS#sparse-race-{uid}"
    clock_a, clock_b = FakeClock(), FakeClock()
    a, b = store(clock_a), store(clock_b)
    clock_a.at = "2001-02-03T10:00:00.000Z"
    first = a.append(AuditEntry("flag.changed", chain))
    clock_b.at = "2001-02-03T10:00:10.000Z"
    second = b.append(AuditEntry("flag.changed", chain))  # reads the tail: first's time, same minute
    clock_a.at = "2001-02-03T10:00:20.000Z"
    third = a.append(AuditEntry("flag.changed", chain))  # a's cached tail is seq 1: loses, chains onto second
    clock_b.at = "2001-02-03T10:01:00.000Z"
    fourth = b.append(AuditEntry("flag.changed", chain))  # b's cached tail is seq 2: loses, chains onto third
    assert [r["seq"] for r in (first, second, third, fourth)] == [1, 2, 3, 4]
    assert ["day" in r for r in (first, second, third, fourth)] == [True, False, False, True]
    assert [r["seq"] for r in index_entries(chain, ["2001-02-03"])] == [1, 4]
    assert [r["seq"] for r in a.since("2001-02-03T10:00:05.000Z", "2001-02-03T23:00:00.000Z")
            if r["pk"] == chain] == [2, 3, 4]


def test_given_a_transaction_of_records_of_one_chain_then_only_the_first_in_its_minute_is_indexed(rt, uid):
    chain = f"OPS#sparse-tx-{uid}"
    clock = FakeClock()
    clock.at = "2001-02-03T11:00:00.000Z"
    writer = store(clock)
    records, actions = writer.transact_puts([AuditEntry("flag.changed", chain, data={"n": n}) for n in range(3)])
    get_deps().ddb.transact_write_items(TransactItems=actions)
    writer.committed(records)
    clock.at = "2001-02-03T11:00:30.000Z"
    after = writer.append(AuditEntry("flag.changed", chain))
    assert ["day" in r for r in [*records, after]] == [True, False, False, False]
    assert [r["seq"] for r in writer.since("2001-02-03T11:00:10.000Z", "2001-02-03T23:00:00.000Z")
            if r["pk"] == chain] == [4]
    assert [r["seq"] for r in writer.since("2001-02-03T11:00:00.000Z", "2001-02-03T23:00:00.000Z")
            if r["pk"] == chain] == [1, 2, 3, 4]
