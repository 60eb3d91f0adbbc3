"""JSON limits: the bracket pre-scan agrees with the real depth, refusals name their path, and any
text at all ends in a value or a JsonLimitError (never another exception)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerx_agent.json_limits import MAX_DEPTH, JsonLimitError, check_value, dumps, loads, raw_depth_exceeds


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


_scalars = st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.text(alphabet='ab"\\[]{}\u6f22', max_size=6)
_json = st.recursive(_scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
    st.text(alphabet='k"[\\', max_size=3), kids, max_size=3), max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(value=_json, limit=st.integers(1, 8))
def test_given_any_json_when_prescanned_then_verdict_equals_the_real_depth(value: object, limit: int) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert raw_depth_exceeds(text, limit) is (_depth(value) > limit)


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet='[]{}",:\\0123456789.eE+-NaInfity tru\u00b2\ud800', max_size=60))
def test_given_any_text_when_loaded_then_a_value_or_a_limit_error_and_nothing_else(text: str) -> None:
    try:
        value = loads(text)
    except JsonLimitError as exc:
        assert exc.kind in ("too_deep", "invalid_number", "invalid_string", "invalid_json")
        return
    check_value(value)  # what loads accepts passes the walk too


@pytest.mark.parametrize(("text", "kind", "where"), [
    ('{"a": {"b": [1, NaN]}}', "invalid_number", "$.a.b[1]"),
    ('{"a": Infinity}', "invalid_number", "$.a"),
    ('{"a": -Infinity}', "invalid_number", "$.a"),
    ('{"a": 1e999}', "invalid_number", "$.a"),
    ('{"a": 1e-200}', "invalid_number", "$.a"),
    ('{"a": 12345678901234567890123456789012345678901}', "invalid_number", "$.a"),
    ('{"a": 1.0000000000000000000000000000000000000001}', "invalid_number", "$.a"),
    ('{"a": ' + "9" * 5000 + "}", "invalid_number", "$.a"),
    ('{"k\\ud800": 1}', "invalid_string", "$"),
    ('["\\udc00"]', "invalid_string", "$[0]"),
    ("[" * 5000 + "]" * 5000, "too_deep", "$"),
    ('{"a": "' + "[" * 100 + '"}', None, None),  # brackets inside strings do not count
    ('{"a": "\\\\"}', None, None),
])
def test_given_hostile_json_when_loaded_then_refused_with_kind_and_path(text: str, kind: str | None,
                                                                         where: str | None) -> None:
    if kind is None:
        loads(text)
        return
    with pytest.raises(JsonLimitError) as caught:
        loads(text)
    assert (caught.value.kind, caught.value.where) == (kind, where)


@pytest.mark.parametrize("number", [0, -0.0, 1e125, -9.9e125, 1e-130, 10**37, 10**100, 2**120, 0.1, Decimal("1.5")])
def test_given_numbers_dynamodb_stores_when_checked_then_accepted(number: object) -> None:
    check_value({"n": number})


def test_given_exactly_the_limit_when_checked_then_accepted_and_one_more_refused() -> None:
    deep: object = 1
    for _ in range(MAX_DEPTH):
        deep = {"x": deep}
    check_value(deep)
    loads(json.dumps(deep))
    with pytest.raises(JsonLimitError):
        check_value({"x": deep})
    with pytest.raises(JsonLimitError):
        loads(json.dumps({"x": deep}))


def test_given_a_value_deeper_than_recursion_allows_when_dumped_then_written_whole_without_recursion() -> None:
    deep: object = [float("nan"), 10**5000]
    for _ in range(20_000):
        deep = {"x": deep}
    text = dumps(deep, sort_keys=True)
    assert text.startswith('{"x":{"x":') and text.count("{") == 20_000 and "<int of" in text
