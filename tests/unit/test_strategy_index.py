"""The indexed matcher selects exactly what a linear scan over every strategy selects."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from powerx_agent.strategy.conditions import compile_condition, type_key
from powerx_agent.strategy.decision import (
    CONDITION_FAILED,
    KEY_MISMATCH,
    NEAR_MISSES,
    RANKED_BELOW,
    near_miss,
)
from powerx_agent.strategy.dsl import Strategy
from powerx_agent.strategy.index import StrategyIndex, _key_for, evaluate
from powerx_agent.strategy.paths import MISSING

EVENT_TYPES = ["a.created", "a.deleted", "b.done"]
TENANTS = ["acme", "globex"]


@dataclass(frozen=True)
class FakeCompiled:
    """A compiled strategy as the index reads one (a :class:`~powerx_agent.strategy.index.Member`)."""

    strategy: Strategy
    condition: object
    pattern: object = None

    id = property(lambda self: self.strategy.id)
    version = property(lambda self: self.strategy.version)
    weight = property(lambda self: self.strategy.weight)
    status = property(lambda self: self.strategy.status)
    tenants = property(lambda self: self.strategy.tenants)
    event_types = property(lambda self: self.strategy.on.event)

    def full(self) -> FakeCompiled:
        return self


def make(i: int, event_type: str, tenant: str, weight: int, threshold: int) -> FakeCompiled:
    strategy = Strategy.model_validate({
        "id": f"s-{i:03d}", "version": 1, "status": "approved", "owner": "o", "tenants": [tenant],
        "on": {"event": event_type}, "weight": weight, "when": {"path": "$.payload.n", "gt": threshold},
        "flow": {"nodes": [{"id": "x", "plugin": "p"}]}})
    return FakeCompiled(strategy, compile_condition(strategy.when))


strategy_specs = st.lists(st.tuples(st.sampled_from(EVENT_TYPES), st.sampled_from(TENANTS + ["*"]),
                                    st.integers(0, 3), st.integers(0, 10)), max_size=25)


@settings(max_examples=60, deadline=None)
@given(specs=strategy_specs, event_type=st.sampled_from(EVENT_TYPES), tenant=st.sampled_from(TENANTS),
       n=st.integers(0, 11))
def test_given_any_library_when_deciding_then_index_equals_linear_scan(specs, event_type, tenant, n):
    compiled = [make(i, *spec) for i, spec in enumerate(specs)]
    doc = {"payload": {"n": n}, "event_type": event_type}
    decision, selected = StrategyIndex(compiled, "r1").decide(event_type=event_type, tenant_id=tenant,
                                                              event_id="e", doc=doc, bus_event={})
    matching = [c for c in compiled if event_type in c.strategy.on.event and c.strategy.applies_to_tenant(tenant)
                and evaluate(c, doc, {}) is None]
    expected = min(matching, key=lambda c: (-c.strategy.weight, c.strategy.id)) if matching else None
    assert (selected.strategy.id if selected else None) == (expected.strategy.id if expected else None)
    assert all(c.strategy_id != "" for c in decision.candidates)


def test_given_equal_weights_when_both_match_then_lowest_id_wins_and_record_explains():
    compiled = [make(2, "a.created", "*", 5, 0), make(1, "a.created", "*", 5, 0), make(3, "a.created", "*", 5, 99)]
    decision, selected = StrategyIndex(compiled, "r7").decide(event_type="a.created", tenant_id="acme",
                                                              event_id="e1", doc={"payload": {"n": 1}},
                                                              bus_event={})
    assert selected.strategy.id == "s-001"
    record = decision.explained()
    assert record["library_revision"] == "r7"
    assert [c["strategy_id"] for c in record["candidates"]] == ["s-001", "s-002", "s-003"]
    assert record["candidates"][2]["failed"]["op"] == "gt"


def test_given_other_event_types_when_deciding_then_their_strategies_are_not_candidates():
    compiled = [make(i, "b.done", "*", 1, 0) for i in range(50)] + [make(99, "a.created", "*", 1, 0)]
    decision, _ = StrategyIndex(compiled, "r").decide(event_type="a.created", tenant_id="acme", event_id="e",
                                                      doc={"payload": {"n": 1}}, bus_event={})
    assert [c.strategy_id for c in decision.candidates] == ["s-099"]


# --- the record: the index (with equality pruning) reports exactly what a full evaluation reports ---

SCALARS = [1, 1.0, True, False, "1", "a", "b", None, 0, 2.5]
VALUES = SCALARS + [[1, "a"], {"k": 1}]
PATHS = ["$.payload.kind", "$.payload.n", "$.payload.deep.x", "$.payload.items[0]", "$.payload.items[*]"]


def leaf_strategy():
    equals = st.builds(lambda p, v: {"path": p, "equals": v}, st.sampled_from(PATHS), st.sampled_from(VALUES))
    in_ = st.builds(lambda p, vs: {"path": p, "in": vs}, st.sampled_from(PATHS),
                    st.lists(st.sampled_from(SCALARS), min_size=1, max_size=3))
    other = st.builds(lambda p, op, v: {"path": p, op: v}, st.sampled_from(PATHS),
                      st.sampled_from(["gt", "lte"]), st.integers(-1, 2))
    exists = st.builds(lambda p, v: {"path": p, "exists": v}, st.sampled_from(PATHS), st.booleans())
    return st.one_of(equals, equals, in_, other, exists)


conditions = st.recursive(
    leaf_strategy(),
    lambda inner: st.one_of(st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3)),
                            st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=2)),
                            st.builds(lambda x: {"not": x}, inner)),
    max_leaves=5)

documents = st.fixed_dictionaries({"payload": st.fixed_dictionaries({}, optional={
    "kind": st.sampled_from(VALUES), "n": st.sampled_from(VALUES),
    "deep": st.fixed_dictionaries({}, optional={"x": st.sampled_from(VALUES)}),
    "items": st.lists(st.sampled_from(SCALARS), max_size=2)})})


def make_when(i: int, event_type: str, tenant: str, weight: int, when: dict | None) -> FakeCompiled:
    raw = {"id": f"s-{i:03d}", "version": 2, "status": "approved", "owner": "o", "tenants": [tenant],
           "on": {"event": event_type}, "weight": weight, "flow": {"nodes": [{"id": "x", "plugin": "p"}]}}
    if when is not None:
        raw["when"] = when
    strategy = Strategy.model_validate(raw)
    return FakeCompiled(strategy, compile_condition(when) if when is not None else None)


def linear_record(compiled, event_type, tenant, doc, explain_all=True):
    ordered = sorted((c for c in compiled if event_type in c.strategy.on.event
                      and c.strategy.applies_to_tenant(tenant)),
                     key=lambda c: (-c.strategy.weight, c.strategy.id))
    candidates, selected = [], None
    for c in ordered:
        if selected is not None and not explain_all:
            break
        failure = evaluate(c, doc, {})
        candidates.append({"strategy_id": c.strategy.id, "version": c.strategy.version, "weight": c.strategy.weight,
                           "matched": failure is None, "failed": failure.to_dict() if failure else None})
        if failure is None and selected is None:
            selected = c
    return selected, candidates


def linear_summary(compiled, event_type, tenant, doc):
    """The bounded record's near misses and counts, from a full evaluation of every candidate: the
    candidates ranked above the selected one (all when none is) whose indexed equality conjunct holds
    and that failed, then those whose indexed conjunct does not hold, each in selection order."""
    ordered = sorted((c for c in compiled if event_type in c.strategy.on.event
                      and c.strategy.applies_to_tenant(tenant)),
                     key=lambda c: (-c.strategy.weight, c.strategy.id))
    failures = [evaluate(c, doc, {}) for c in ordered]
    cutoff = next((pos for pos, f in enumerate(failures) if f is None), len(ordered))

    def key_fails(c):
        leaf, _, keys = _key_for(c)
        if leaf is None:
            return False
        actual = leaf.path.get(doc)
        return actual is MISSING or type_key(actual) not in keys

    reasons = [KEY_MISMATCH if key_fails(c) else CONDITION_FAILED for c in ordered[:cutoff]]
    picked = ([p for p in range(cutoff) if reasons[p] == CONDITION_FAILED][:NEAR_MISSES]
              + [p for p in range(cutoff) if reasons[p] == KEY_MISMATCH])[:NEAR_MISSES]
    near = [near_miss(ordered[p].strategy.id, ordered[p].strategy.version, ordered[p].strategy.weight, reasons[p],
                      failures[p].path, failures[p].op, failures[p].expected, failures[p].actual)[0] for p in picked]
    counts = {KEY_MISMATCH: 0, CONDITION_FAILED: 0,
              RANKED_BELOW: len(ordered) - cutoff - (1 if cutoff < len(ordered) else 0)}
    for p in range(cutoff):
        if p not in picked:
            counts[reasons[p]] += 1
    return near, {k: v for k, v in counts.items() if v}, len(ordered)


def assert_record_is_the_linear_summary(decision, compiled, event_type, tenant, doc):
    near, others, total = linear_summary(compiled, event_type, tenant, doc)
    record = decision.to_dict()
    assert (record["near_misses"], record["others"], record["candidates_total"]) == (near, others, total)


library_specs = st.lists(st.tuples(st.sampled_from(EVENT_TYPES), st.sampled_from(TENANTS + ["*"]),
                                   st.integers(0, 3), st.one_of(st.none(), conditions)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(specs=library_specs, event_type=st.sampled_from(EVENT_TYPES), tenant=st.sampled_from(TENANTS),
       docs=st.lists(documents, min_size=1, max_size=3), explain_all=st.booleans())
def test_given_random_conditions_when_index_prunes_then_record_equals_full_evaluation(
        specs, event_type, tenant, docs, explain_all):
    compiled = [make_when(i, *spec) for i, spec in enumerate(specs)]
    index = StrategyIndex(compiled, "r9")
    for payload in docs:  # several events through the same index: the cached views are reused
        doc = {**payload, "event_type": event_type}
        decision, selected = index.decide(event_type=event_type, tenant_id=tenant, event_id="e", doc=doc,
                                          bus_event={}, explain_all=explain_all)
        expected_selected, expected_candidates = linear_record(compiled, event_type, tenant, doc, explain_all)
        assert (selected.strategy.id if selected else None) == (
            expected_selected.strategy.id if expected_selected else None)
        assert decision.explained()["candidates"] == expected_candidates
        assert_record_is_the_linear_summary(decision, compiled, event_type, tenant, doc)


def test_given_equality_conjunct_when_value_differs_then_strategy_is_pruned_unevaluated_but_explained():
    class Counting:
        """A condition that counts evaluations, wrapping a compiled one."""

        def __init__(self, inner):
            self.inner, self.calls = inner, 0

        def evaluate(self, doc):
            self.calls += 1
            return self.inner.evaluate(doc)

        def matches(self, doc):
            self.calls += 1
            return self.inner.matches(doc)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    compiled = []
    for i, kind in enumerate(["red", "blue", "green"]):
        c = make_when(i, "a.created", "*", 5, {"all": [{"path": "$.payload.kind", "equals": kind},
                                                      {"path": "$.payload.n", "gt": 0}]})
        compiled.append(FakeCompiled(c.strategy, Counting(c.condition)))
    decision, selected = StrategyIndex(compiled, "r").decide(
        event_type="a.created", tenant_id="acme", event_id="e", doc={"payload": {"kind": "blue", "n": 3}},
        bus_event={})
    assert selected.strategy.id == "s-001"
    assert [c.condition.calls for c in compiled] == [0, 1, 0]  # the pruned ones were not evaluated
    record = decision.explained()["candidates"]
    assert record[0]["failed"] == {"path": "$.payload.kind", "op": "equals", "expected": "red", "actual": "blue"}
    assert record[2]["failed"]["expected"] == "green"
    assert [compiled[0].condition.calls, compiled[2].condition.calls] == [0, 0]  # nor evaluated to explain them


def test_given_in_with_true_and_one_when_value_is_true_then_it_is_not_pruned():
    compiled = [make_when(0, "a.created", "*", 1, {"path": "$.payload.n", "in": [1, True]}),
                make_when(1, "a.created", "*", 0, {"path": "$.payload.n", "equals": 1.0})]
    index = StrategyIndex(compiled, "r")
    _, selected = index.decide(event_type="a.created", tenant_id="acme", event_id="e",
                               doc={"payload": {"n": True}}, bus_event={})
    assert selected.strategy.id == "s-000"
    decision, selected = index.decide(event_type="a.created", tenant_id="acme", event_id="e",
                                      doc={"payload": {"n": "1"}}, bus_event={})
    assert selected is None
    assert [c["failed"]["actual"] for c in decision.explained()["candidates"]] == ["1", "1"]


def test_given_equality_after_another_conjunct_when_both_fail_then_record_names_the_first_failing():
    when = {"all": [{"path": "$.payload.n", "gt": 5}, {"path": "$.payload.kind", "equals": "red"}]}
    compiled = [make_when(0, "a.created", "*", 1, when)]
    decision, selected = StrategyIndex(compiled, "r").decide(
        event_type="a.created", tenant_id="acme", event_id="e", doc={"payload": {"n": 1, "kind": "blue"}},
        bus_event={})
    assert selected is None
    assert decision.explained()["candidates"][0]["failed"] == {"path": "$.payload.n", "op": "gt", "expected": 5,
                                                             "actual": 1}


range_specs = st.lists(st.tuples(st.sampled_from(["red", "blue"]), st.sampled_from(["gt", "gte", "lt", "lte"]),
                                 st.sampled_from([-1, 0, 0.5, 1, 2, 3, 10]), st.integers(0, 3),
                                 st.sampled_from(["$.payload.n"] * 9 + ["$.payload.m"])),
                       min_size=1, max_size=25)


@settings(max_examples=300, deadline=None)
@given(specs=range_specs, kind=st.sampled_from(["red", "blue", "green"]),
       n=st.one_of(st.sampled_from([-2, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 9.99, 10, 11, True, "1", None]),
                   st.sampled_from([-1, 0, 0.5, 1, 2, 3, 10]), st.floats(allow_nan=False)), drop_n=st.booleans(), explain_all=st.booleans())
def test_given_key_and_numeric_strategies_when_range_plan_selects_then_it_equals_linear_scan(
        specs, kind, n, drop_n, explain_all):
    compiled = [make_when(i, "a.created", "*", weight, {"all": [{"path": "$.payload.kind", "equals": k},
                                                                 {"path": path, op: bound}]})
                for i, (k, op, bound, weight, path) in enumerate(specs)]
    payload = {"kind": kind} if drop_n else {"kind": kind, "n": n, "m": n}
    doc = {"payload": payload, "event_type": "a.created"}
    decision, selected = StrategyIndex(compiled, "r").decide(event_type="a.created", tenant_id="acme",
                                                             event_id="e", doc=doc, bus_event={},
                                                             explain_all=explain_all)
    expected_selected, expected_candidates = linear_record(compiled, "a.created", "acme", doc, explain_all)
    assert (selected.strategy.id if selected else None) == (
        expected_selected.strategy.id if expected_selected else None)
    assert decision.explained()["candidates"] == expected_candidates
    assert_record_is_the_linear_summary(decision, compiled, "a.created", "acme", doc)


def test_given_express_flow_over_five_minutes_when_linted_then_the_compiler_limit_is_a_lint_error():
    from powerx_agent.strategy.loader import load_strategy_text

    text = ("id: too-long\nversion: 1\nstatus: approved\nowner: o@example.com\non: {event: a.b}\n"
            "flow:\n  mode: express\n  timeout: 10m\n  nodes:\n    - {id: a, plugin: p}\n")
    compiled, findings = load_strategy_text(text, "too-long.yaml")
    errors = [f for f in findings if f.severity == "error"]
    assert [f.code for f in errors] == ["flow.express_timeout"]
    assert errors[0].line == 8 and "600 s" in errors[0].message


def test_given_many_pruned_candidates_when_the_record_is_written_then_at_most_a_few_are_evaluated():
    calls = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def evaluate(self, doc):
            calls.append("evaluate")
            return self.inner.evaluate(doc)

        def matches(self, doc):
            calls.append("matches")
            return self.inner.matches(doc)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    compiled = []
    for i in range(200):  # the key is not the leading conjunct: explaining a pruned one means evaluating it
        c = make_when(i, "a.created", "*", i % 7, {"all": [{"path": "$.payload.n", "gt": 0},
                                                          {"path": "$.payload.kind", "equals": f"k{i}"}]})
        compiled.append(FakeCompiled(c.strategy, Counting(c.condition)))
    decision, selected = StrategyIndex(compiled, "r").decide(
        event_type="a.created", tenant_id="acme", event_id="e", doc={"payload": {"kind": "k150", "n": 3}},
        bus_event={})
    assert selected.strategy.id == "s-150" and calls == ["matches"]
    record = decision.to_dict()
    assert len(calls) == 1 + NEAR_MISSES  # the record explains the nearest misses only
    assert record["others"] == {KEY_MISMATCH: 200 - 1 - NEAR_MISSES - record["others"].get(RANKED_BELOW, 0),
                                RANKED_BELOW: record["others"][RANKED_BELOW]}
