"""The decision record the matcher writes is bounded: the selected strategy, at most a few nearest misses
with their first failing condition, the other candidates counted by reason; ≤ 1 KB whatever the library."""

from __future__ import annotations

import importlib.util
from functools import cached_property
from pathlib import Path
from types import ModuleType

from hypothesis import given, settings
from hypothesis import strategies as st

from powerx_agent.strategy.decision import (
    CONDITION_FAILED,
    KEY_MISMATCH,
    NEAR_MISSES,
    RANKED_BELOW,
    REASONS,
    RECORD_BUDGET,
    Decision,
    Summary,
    _flat_bound,
    candidates_total,
    listed,
    near_miss,
    record_size,
)
from powerx_agent.strategy.index import StrategyIndex
from powerx_agent.strategy.loader import CompiledStrategy, load_strategy_text


def _bench_module(name: str) -> ModuleType:
    """A module of bench/ (not put on sys.path: bench/ and tests/ both have a ``hostile`` module)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).resolve().parents[2] / "bench"
                                                  / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


library_gen = _bench_module("library_gen")  # the generated library of the benchmarks

LIBRARY_SIZE = 10_000


class GeneratedMember:
    """Strategy ``i`` of the generated library as the index reads a member: identity at once, compiled
    when its event type is first looked up (as a library artifact's members are)."""

    def __init__(self, i: int) -> None:
        self.i = i
        self.id, self.weight, self.tenants = library_gen.identity(i)
        self.version, self.status = 1, "approved"
        self.event_types = (library_gen.event_type(i),)

    @cached_property
    def compiled(self) -> CompiledStrategy:
        compiled, findings = load_strategy_text(library_gen.strategy_yaml(self.i), f"{self.id}.yaml")
        assert compiled is not None, findings
        assert (compiled.id, compiled.weight, compiled.tenants) == (self.id, self.weight, self.tenants)
        return compiled

    @property
    def condition(self):
        return self.compiled.condition

    @property
    def pattern(self):
        return self.compiled.pattern

    def full(self) -> CompiledStrategy:
        return self.compiled


def decide(index: StrategyIndex, i: int, tenant: str = "t03"):
    event = library_gen.event(i)
    return index.decide(event_type=event["event_type"], tenant_id=tenant, event_id=f"e-{i}", doc=event,
                        bus_event={"source": "bench", "detail-type": event["event_type"], "detail": event})


def assert_adds_up(decision) -> None:
    record = decision.to_dict()
    counted = (1 if record["selected"] else 0) + len(record["near_misses"]) + sum(record["others"].values())
    assert counted == record["candidates_total"] == len(decision.candidates)
    assert len(record["near_misses"]) <= NEAR_MISSES and set(record["others"]) <= set(REASONS)


def test_given_10000_generated_strategies_when_events_are_decided_then_each_record_is_at_most_1_kb_and_adds_up():
    index = StrategyIndex([GeneratedMember(i) for i in range(LIBRARY_SIZE)], "r1")
    sizes, totals, selected = [], [], 0
    for i in range(0, 400, 7):  # event types spread over the library, matched and unmatched
        decision, chosen = decide(index, i, tenant=library_gen.TENANTS[i % 20])
        record = decision.to_dict()
        sizes.append(record_size(record))
        totals.append(record["candidates_total"])
        selected += chosen is not None
        assert_adds_up(decision)
        full = {c.strategy_id: c for c in decision.candidates}
        for miss in record["near_misses"]:  # each nearest miss is a candidate that failed, explained the same
            assert full[miss["strategy_id"]].failed.to_dict()["op"] == miss["failed"]["op"]
            assert not full[miss["strategy_id"]].matched
    assert max(sizes) <= RECORD_BUDGET, max(sizes)
    assert max(totals) == 50  # 50 candidates per event type: their full list would not fit in 1 KB
    assert 0 < selected < len(sizes)


def test_given_a_match_ranked_low_when_recorded_then_misses_above_it_are_listed_and_those_below_counted():
    index = StrategyIndex([GeneratedMember(i) for i in range(LIBRARY_SIZE)], "r1")
    for i in range(200):
        decision, chosen = decide(index, i)
        ranks = [c.strategy_id for c in decision.candidates]
        if chosen is None or ranks.index(chosen.id) < 5:
            continue
        record = decision.to_dict()
        position = ranks.index(chosen.id)
        assert record["others"].get(RANKED_BELOW, 0) == len(ranks) - position - 1
        assert all(ranks.index(m["strategy_id"]) < position for m in record["near_misses"])
        assert len(record["near_misses"]) == NEAR_MISSES
        # the nearest: those that passed the index's key are listed before those it pruned
        reasons = [m["reason"] for m in record["near_misses"]]
        assert reasons == sorted(reasons, key=lambda r: r != CONDITION_FAILED)
        return
    raise AssertionError("no event selected a strategy ranked fifth or lower")


def test_given_long_ids_and_values_when_recorded_then_values_are_cut_and_the_record_stays_within_budget():
    long = "x" * 5000
    members = []
    for i in range(20):
        text = (f"id: s{i:02d}-{'a' * 58}\nversion: 1\nstatus: approved\nowner: o@example.com\n"
                f"on: {{event: {'e' * 120}}}\nweight: {100 - i}\n"
                f"when: {{path: $.payload.{'p' * 70}, in: [{', '.join(f'v{j}-{long[:60]}' for j in range(30))}]}}\n"
                "flow:\n  nodes:\n    - {id: a, plugin: p}\n")
        compiled, findings = load_strategy_text(text, f"s{i}.yaml")
        assert compiled is not None, findings
        members.append(compiled)
    doc = {"event_type": "e" * 120, "payload": {"p" * 70: long}}
    decision, chosen = StrategyIndex(members, "r" + "9" * 12).decide(
        event_type="e" * 120, tenant_id="t" * 63, event_id="i" * 128, doc=doc, bus_event={})
    decision.arm = {"strategy_id": "a" * 63, "arm": "baseline", "bucket": 9999,
                    "why": "bucket 9999 of 10000 is at or above 500 (5% canary share, from SHA-256 of strategy id "
                           "and idempotency key)"}
    assert chosen is None
    for arm in (decision.arm, None):  # every field at its longest: the misses that do not fit are counted
        decision.arm = arm
        record = decision.to_dict()
        assert record_size(record) <= RECORD_BUDGET
        assert len(record["near_misses"]) + sum(record["others"].values()) == record["candidates_total"] == 20
    assert 1 <= len(record["near_misses"]) <= NEAR_MISSES
    assert all(len(str(m["failed"]["actual"])) <= 40 and m["failed"]["actual"].endswith("…")
               for m in record["near_misses"])
    assert len(decision.reason()) < RECORD_BUDGET


def test_given_no_candidate_when_recorded_then_the_record_says_none_and_counts_nothing():
    decision, _ = StrategyIndex([], "r1").decide(event_type="a.b", tenant_id="acme", event_id="e", doc={},
                                                 bus_event={})
    assert decision.to_dict()["candidates_total"] == 0 and decision.to_dict()["others"] == {}
    assert decision.reason() == "no approved strategy handles a.b for tenant acme"


def test_given_a_record_written_before_the_bound_when_read_then_its_full_list_is_what_it_lists():
    old = {"event_id": "e", "tenant_id": "acme", "event_type": "a.b", "library_revision": "r3",
           "selected": {"strategy_id": "s-1", "version": 2, "weight": 5},
           "candidates": [{"strategy_id": "s-0", "version": 1, "weight": 9, "matched": False,
                           "failed": {"path": "$.n", "op": "gt", "expected": 1, "actual": 0}},
                          {"strategy_id": "s-1", "version": 2, "weight": 5, "matched": True, "failed": None}]}
    assert candidates_total(old) == 2
    assert [c["strategy_id"] for c in listed(old)] == ["s-0", "s-1"]


def test_given_a_bounded_record_when_read_then_the_selected_comes_first_then_the_misses():
    index = StrategyIndex([GeneratedMember(i) for i in range(LIBRARY_SIZE)], "r1")
    for i in range(200):
        decision, chosen = decide(index, i)
        record = decision.to_dict()
        if chosen is not None and record["near_misses"]:
            rows = listed(record)
            assert rows[0]["strategy_id"] == chosen.id and rows[0]["matched"] is True
            assert [r["matched"] for r in rows[1:]] == [False] * len(record["near_misses"])
            assert candidates_total(record) == len(decision.candidates)
            return
    raise AssertionError("no matched event with a near miss")


def test_given_reason_codes_when_documented_then_each_has_a_meaning():
    assert set(REASONS) == {KEY_MISMATCH, CONDITION_FAILED, RANKED_BELOW}


values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=60),
                   st.lists(st.one_of(st.integers(), st.text(max_size=8)), max_size=12),
                   st.dictionaries(st.text(max_size=6), st.integers(), max_size=4))
printable = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=1, max_size=128)
ids = st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(event_id=printable, tenant=ids, event_type=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", fullmatch=True),
       revision=st.text(max_size=20), selected=st.one_of(st.none(), ids),
       misses=st.lists(st.tuples(ids, st.integers(0, 10**6), st.integers(-10**6, 10**6),
                                 st.sampled_from([KEY_MISMATCH, CONDITION_FAILED]), st.text(max_size=120),
                                 st.text(max_size=12), values, values), max_size=NEAR_MISSES),
       others=st.dictionaries(st.sampled_from(sorted(REASONS)), st.integers(1, 10**6)),
       arm=st.one_of(st.none(), st.dictionaries(st.text(max_size=16), st.one_of(
           st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=120)), max_size=8)))
def test_given_any_fields_when_a_record_is_sized_then_the_bound_holds_and_the_record_fits(
        event_id, tenant, event_type, revision, selected, misses, others, arm):
    summary = Summary(tuple(near_miss(*m) for m in misses), others)
    decision = Decision(event_id=event_id, tenant_id=tenant, event_type=event_type, library_revision=revision,
                        selected={"strategy_id": selected, "version": 1, "weight": 5} if selected else None,
                        candidates_total=len(misses) + sum(others.values()) + (1 if selected else 0),
                        summarise=lambda: summary, resolve=tuple)
    untrimmed = {"event_id": event_id, "tenant_id": tenant, "event_type": event_type, "library_revision": revision,
                 "selected": decision.selected, "candidates_total": decision.candidates_total,
                 "near_misses": [m for m, _ in summary.near_misses], "others": dict(others)}
    assert decision._bound(summary) >= record_size(untrimmed)
    decision.arm = arm
    if arm is not None:
        assert decision._bound(summary) + _flat_bound(arm) >= record_size({**untrimmed, "arm": arm})
    record = decision.to_dict()
    # within the budget, or every miss counted instead of listed (the fields alone are longer: only with an arm)
    assert record_size(record) <= RECORD_BUDGET or (record["near_misses"] == [] and arm is not None)
    assert len(record["near_misses"]) + sum(record["others"].values()) + (1 if selected else 0) == \
        decision.candidates_total


def test_given_a_record_with_unlisted_candidates_when_the_workflow_view_shows_it_then_counts_and_where_to_look():
    from powerx_agent.ops.view import _unlisted

    index = StrategyIndex([GeneratedMember(i) for i in range(LIBRARY_SIZE)], "r7")
    record = decide(index, 7)[0].to_dict()  # bench.lib.33: 50 candidates
    shown = _unlisted(record)
    unlisted = sum(record["others"].values())
    assert unlisted > 0 and f"{record['candidates_total']} candidate(s) in all; not listed: " in shown
    assert "strategy test --event FILE" in shown and "library r7" in shown
    assert _unlisted({**record, "candidates": []}) == "" and _unlisted(None) == ""
