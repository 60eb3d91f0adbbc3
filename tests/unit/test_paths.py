"""JSONPath compiled once; simple chains use a tuple-of-keys getter that agrees with jsonpath-ng."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonpath_ng.ext import parse

from powerx_agent.errors import StrategyError
from powerx_agent.strategy.paths import MISSING, compile_path

DOC = {"payload": {"job": {"id": "42", "rows": 0, "tags": ["a", "b"], "none": None}},
       "items": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": 3}], "detail-type": "t", "a b": {"c": 1}}


@pytest.mark.parametrize("expr,keys,value", [
    ("$.payload.job.id", ("payload", "job", "id"), "42"),
    ("$.payload.job.rows", ("payload", "job", "rows"), 0),
    ("$.payload.job.none", ("payload", "job", "none"), None),
    ("$.payload.job.tags[1]", ("payload", "job", "tags", 1), "b"),
    ("$.items[0].sku", ("items", 0, "sku"), "x"),
    ("$['detail-type']", ("detail-type",), "t"),
    ("$.detail-type", ("detail-type",), "t"),
    ('$["a b"].c', ("a b", "c"), 1),
    ("$", (), DOC),
])
def test_given_simple_path_when_compiled_then_fast_getter_returns_the_value(expr, keys, value) -> None:
    path = compile_path(expr)
    assert path.is_simple and path.keys == keys
    assert path.get(DOC) == value


@pytest.mark.parametrize("expr", [
    "$.payload.job.missing", "$.nope.deeper", "$.payload.job.tags[5]", "$.payload.job.id.x",
    "$.payload.job.tags.x", "$.payload.job[0]", "$.payload.job.none.x",
])
def test_given_absent_step_when_get_then_missing(expr: str) -> None:
    assert compile_path(expr).get(DOC) is MISSING


def test_given_null_value_when_get_then_none_not_missing() -> None:
    assert compile_path("$.payload.job.none").get(DOC) is None


@pytest.mark.parametrize("expr,value", [
    ("$.items[*].sku", ["x", "y"]),
    ("$..sku", ["x", "y"]),
    ("$.items[-1].sku", ["y"]),
    ("$.items[?(@.qty > 1)].sku", ["y"]),
    ("$.items[*].nope", MISSING),
])
def test_given_multi_match_path_when_get_then_list_of_matches_or_missing(expr, value) -> None:
    path = compile_path(expr)
    assert not path.is_simple
    assert path.get(DOC) == value if value is not MISSING else path.get(DOC) is MISSING


@pytest.mark.parametrize("expr", ["payload.x", "", "$.a[", "$.a b", "$." + "a" * 600, 12, None])
def test_given_invalid_path_when_compiled_then_path_invalid(expr) -> None:
    with pytest.raises(StrategyError) as info:
        compile_path(expr, where="when.path")
    assert info.value.code == "path.invalid"
    assert info.value.where == "when.path"


_keys = st.sampled_from(["a", "b", "c"])
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(doc=st.dictionaries(_keys, _json, max_size=3),
       steps=st.lists(st.one_of(_keys, st.integers(0, 3)), min_size=1, max_size=4))
def test_given_random_documents_when_simple_path_then_fast_getter_agrees_with_jsonpath_ng(doc, steps) -> None:
    expr = "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)
    fast = compile_path(expr).get(doc)
    slow = [m.value for m in parse(expr).find(doc)]
    if fast is MISSING:
        assert slow == []
    else:
        assert slow == [fast]
