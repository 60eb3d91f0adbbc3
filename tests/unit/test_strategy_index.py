"""The indexed matcher selects exactly what a linear scan over every strategy selects."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from powerx_agent.strategy.conditions import compile_condition
from powerx_agent.strategy.dsl import Strategy
from powerx_agent.strategy.index import StrategyIndex, evaluate

EVENT_TYPES = ["a.created", "a.deleted", "b.done"]
TENANTS = ["acme", "globex"]


@dataclass(frozen=True)
class FakeCompiled:
    strategy: Strategy
    condition: object
    pattern: object = None


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
    record = decision.to_dict()
    assert record["library_revision"] == "r7"
    assert [c["strategy_id"] for c in record["candidates"]] == ["s-001", "s-002", "s-003"]
    assert record["candidates"][2]["failed"]["op"] == "gt"


def test_given_other_event_types_when_deciding_then_their_strategies_are_not_candidates():
    compiled = [make(i, "b.done", "*", 1, 0) for i in range(50)] + [make(99, "a.created", "*", 1, 0)]
    decision, _ = StrategyIndex(compiled, "r").decide(event_type="a.created", tenant_id="acme", event_id="e",
                                                      doc={"payload": {"n": 1}}, bus_event={})
    assert [c.strategy_id for c in decision.candidates] == ["s-099"]
