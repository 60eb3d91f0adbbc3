"""The sparse time index: only the first record of each chain in each minute carries ``day``, and a
reader that queries the index from the start of ``T``'s minute and then reads the chains it names
still finds every record at or after ``T`` (docs/write-path.md, "No hot key")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from powerx_agent.audit.chain import check_chain
from powerx_agent.audit.records import GENESIS, AuditEntry, indexed, minute_of, seal
from powerx_agent.audit.shards import time_key
from powerx_agent.testing.fakes import FakeAuditStore

START = datetime(2026, 12, 4, 23, 50, tzinfo=UTC)  # 20 minutes span the day boundary


def iso(offset_ms: int) -> str:
    return (START + timedelta(milliseconds=offset_ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write(chains: dict[str, list[int]]) -> dict[str, list[dict[str, Any]]]:
    """Each chain's records as the store seals them, given each record's time (ms after START)."""
    stored: dict[str, list[dict[str, Any]]] = {}
    for chain, offsets in chains.items():
        records: list[dict[str, Any]] = []
        for offset in offsets:
            last = records[-1] if records else None
            records.append(seal(AuditEntry("node.running", chain), len(records) + 1,
                                last["hash"] if last else GENESIS, iso(offset), last["ts"] if last else None))
        stored[chain] = records
    return stored


def since_over_model(stored: dict[str, list[dict[str, Any]]], t: str) -> list[dict[str, Any]]:
    """What ``AuditStore.since`` does, over an in-memory table: the index entries (records with ``day``)
    of ``T``'s day from its minute on and of every later day; the lowest ``seq`` hit per chain; then each
    chain from there, ``ts >= T``."""
    first: dict[str, int] = {}
    for records in stored.values():
        for r in records:
            if "day" not in r:
                continue
            day = r["day"].split("#")[1]
            if day > t[:10] or (day == t[:10] and r["ts_seq"] >= minute_of(t)):
                first[r["pk"]] = min(r["seq"], first.get(r["pk"], r["seq"]))
    found = [r for chain, seq in first.items() for r in stored[chain] if r["seq"] >= seq and r["ts"] >= t]
    return sorted(found, key=lambda r: r["ts_seq"])


# up to 20 minutes of records, several per minute; "monotonic" chains are what one writer's clock gives,
# the others let skewed clocks of concurrent writers put a record before its predecessor
offsets = st.lists(st.integers(0, 20 * 60_000), min_size=1, max_size=25)
chains_of = st.dictionaries(st.sampled_from([f"WF#w{i}" for i in range(6)]),
                            st.tuples(offsets, st.booleans()), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(chains=chains_of, t_offset=st.integers(-60_000, 21 * 60_000))
def test_given_interleaved_chains_when_read_since_any_time_then_exactly_the_records_at_or_after_it(chains, t_offset):
    stored = write({c: sorted(o) if monotonic else o for c, (o, monotonic) in chains.items()})
    t = iso(t_offset)
    expected = sorted((r for rs in stored.values() for r in rs if r["ts"] >= t), key=lambda r: r["ts_seq"])
    assert since_over_model(stored, t) == expected


@settings(max_examples=200, deadline=None)
@given(chains=chains_of)
def test_given_a_chain_then_exactly_its_first_record_in_each_minute_is_indexed_and_walks_back_end_there(chains):
    stored = write({c: o for c, (o, _) in chains.items()})
    for chain, records in stored.items():
        for n, r in enumerate(records):
            opens_minute = n == 0 or minute_of(r["ts"]) != minute_of(records[n - 1]["ts"])
            assert ("day" in r) == opens_minute
            if opens_minute:
                assert r["day"] == time_key(r["ts"][:10], chain)
            walk = n
            while "day" not in records[walk]:
                walk -= 1
            assert minute_of(records[walk]["ts"]) == minute_of(r["ts"])
        assert all("ts_seq" in r for r in records)
        assert check_chain(chain, records) == ([], [])  # the hash covers the record as stored, with or without day


def test_given_no_predecessor_time_then_the_record_is_indexed():
    assert indexed(1, "2026-12-04T10:00:01.000Z", "2026-12-04T10:00:00.000Z")
    assert indexed(5, "2026-12-04T10:00:01.000Z", None)
    assert not indexed(5, "2026-12-04T10:00:59.999Z", "2026-12-04T10:00:00.000Z")
    assert indexed(5, "2026-12-04T10:01:00.000Z", "2026-12-04T10:00:59.999Z")


def test_given_the_fake_store_when_appending_then_it_seals_with_the_predecessor_time_like_the_real_one():
    store = FakeAuditStore()
    first = store.append(AuditEntry("node.running", "WF#f"))
    second = store.append(AuditEntry("node.running", "WF#f"))
    assert "day" in first
    assert ("day" in second) == (minute_of(second["ts"]) != minute_of(first["ts"]))
