"""Event-type payload contracts (config/event-types, powerx_agent/payload_contracts.py): what they accept and refuse,
the static question strategy lint asks, and that validation stays bounded on any payload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerx_agent.payload_contracts import (
    MAX_VIOLATIONS,
    Contract,
    ContractError,
    default_directory,
    load_contracts,
)
from powerx_agent.strategy.loader import load_directory

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = load_contracts(REPO / "config" / "event-types")
C1 = json.loads((REPO / "tests" / "events" / "c1-plugin-job-completed.json").read_text())["detail"]["payload"]


def test_given_the_strategy_library_when_read_then_every_event_type_it_uses_has_a_contract():
    compiled, _ = load_directory(REPO / "strategies")
    used = {event for c in compiled for event in c.strategy.on.event}
    assert used and used <= set(CONTRACTS), used - set(CONTRACTS)
    assert default_directory() == REPO / "config" / "event-types"


def test_given_the_c1_payload_when_checked_then_it_is_valid():
    assert CONTRACTS["plugin.job.completed"].violations(C1) == []


@pytest.mark.parametrize(("payload", "where", "says"), [
    ({"job": {"type": "report", "rows": 3}}, "detail.payload.job.id", "required"),
    ({"job": {"id": "", "type": "report"}}, "detail.payload.job.id", "shorter"),
    ({"job": {"id": 42, "type": "report"}}, "detail.payload.job.id", "is integer"),
    ({"job": {"id": "1", "type": "report", "rows": -1}}, "detail.payload.job.rows", "below 0"),
    ({"job": {"id": "1", "type": "report", "rows": "many"}}, "detail.payload.job.rows", "is string"),
    ({"job": {"id": "1", "type": "report", "idd": "1"}}, "detail.payload.job.idd", "not a field"),
    ({}, "detail.payload.job", "required"),
    ({"job": "42"}, "detail.payload.job", "is string"),
])
def test_given_a_payload_that_breaks_the_c1_contract_when_checked_then_the_field_and_why(payload, where, says):
    (first, *_) = CONTRACTS["plugin.job.completed"].violations(payload)
    assert first.where == where and says in first.message


def test_given_extra_top_level_fields_when_checked_then_accepted_the_payload_stays_open():
    assert CONTRACTS["plugin.job.completed"].violations({**C1, "note": "anything"}) == []


@pytest.mark.parametrize("schema", [
    {"type": "object", "anyOf": [{}]}, {"$ref": "#/x"}, {"type": "thing"},
    {"properties": {"a": {"pattern": "(?<=x)y"}}}, {"additionalProperties": {"type": "string"}}, [],
])
def test_given_a_schema_the_validator_cannot_apply_fully_when_loaded_then_refused(schema):
    with pytest.raises(ContractError):
        Contract("t", schema)


def test_given_paths_when_asked_whether_they_can_exist_then_the_contract_answers():
    contract = CONTRACTS["plugin.job.completed"]
    assert contract.impossible(("job", "id")) is None
    assert "no field 'idd'" in contract.impossible(("job", "idd"))
    assert "is string" in contract.impossible(("job", "id", "value"))
    assert contract.impossible(("note", "anything")) is None  # payload is open: may be there
    assert "not an array" in contract.impossible(("job", 0))


def test_given_a_pattern_when_matched_then_re2_runs_it_linear_with_no_backtracking():
    contract = Contract("t", {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}})
    assert contract.violations({"s": "a" * 50_000 + "!"})[0].message.startswith("does not match")


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                     lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8),
                                                                                         children, max_size=5),
                     max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(payload=st.one_of(_json, st.fixed_dictionaries({"job": _json}), st.fixed_dictionaries({"request": _json})))
def test_given_any_payload_when_checked_then_violations_are_bounded_and_nothing_raises(payload):
    for contract in CONTRACTS.values():
        found = contract.violations(payload)
        assert len(found) <= MAX_VIOLATIONS
        assert all(v.where.startswith("detail.payload") for v in found)
