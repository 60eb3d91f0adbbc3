"""Conditions: every operator, strict types, missing paths, nulls, arrays, combinators, errors."""

from __future__ import annotations

import time

import pytest

from powerx_agent.errors import StrategyError
from powerx_agent.strategy.conditions import (
    MAX_DEPTH,
    Failure,
    compile_condition,
    strict_equals,
)

DOC = {
    "event_type": "plugin.job.completed",
    "s": "report", "n": 5, "f": 2.5, "zero": 0, "t": True, "fa": False, "nul": None,
    "arr": ["a", 1, True, None], "nums": [1, 2], "obj": {"k": "v"}, "empty": "", "text": "hello world",
}


def matches(raw: dict, doc: dict = DOC) -> bool:
    return compile_condition(raw).evaluate(doc) is None


# (operator, operand, path, expected result)
CASES = [
    # equals: strict types
    ("equals", "report", "$.s", True),
    ("equals", "other", "$.s", False),
    ("equals", 5, "$.n", True),
    ("equals", 5.0, "$.n", True),           # numbers compare as numbers
    ("equals", "5", "$.n", False),          # a string never equals a number
    ("equals", 1, "$.t", False),            # a bool is not a number
    ("equals", True, "$.t", True),
    ("equals", 0, "$.fa", False),
    ("equals", None, "$.nul", True),
    ("equals", None, "$.missing", False),   # missing is not null
    ("equals", "", "$.nul", False),
    ("equals", ["a", 1, True, None], "$.arr", True),
    ("equals", ["a", 1.0, True, None], "$.arr", True),
    ("equals", ["a", True, True, None], "$.arr", False),
    ("equals", {"k": "v"}, "$.obj", True),
    ("equals", "a", "$.arr", False),        # equals does not look inside arrays
    ("equals", "x", "$.missing", False),
    # not_equals: exact negation of equals
    ("not_equals", "other", "$.s", True),
    ("not_equals", "report", "$.s", False),
    ("not_equals", "5", "$.n", True),
    ("not_equals", True, "$.missing", True),
    ("not_equals", None, "$.nul", False),
    ("not_equals", None, "$.missing", True),
    # in / not_in
    ("in", ["x", "report"], "$.s", True),
    ("in", ["x", "y"], "$.s", False),
    ("in", ["5", 6], "$.n", False),
    ("in", [5.0], "$.n", True),
    ("in", [1], "$.t", False),
    ("in", [True], "$.t", True),
    ("in", [None], "$.nul", True),
    ("in", [None], "$.missing", False),
    ("in", ["a"], "$.arr", False),          # an array value is never "in"
    ("not_in", ["x", "y"], "$.s", True),
    ("not_in", ["report"], "$.s", False),
    ("not_in", ["report"], "$.missing", True),
    ("not_in", ["a"], "$.arr", True),
    # numeric comparisons: numbers only
    ("gt", 4, "$.n", True), ("gt", 5, "$.n", False), ("gte", 5, "$.n", True), ("gte", 5.5, "$.n", False),
    ("lt", 6, "$.n", True), ("lt", 5, "$.n", False), ("lte", 5, "$.n", True), ("lte", 2.4, "$.f", False),
    ("gt", -1, "$.zero", True),
    ("gt", 0, "$.t", False),                # bool is not a number
    ("lt", 1, "$.fa", False),
    ("gt", 0, "$.s", False),                # string
    ("gt", 0, "$.nul", False),              # null
    ("lt", 0, "$.nul", False),
    ("gt", 0, "$.nums", False),             # array
    ("gt", 0, "$.missing", False),          # missing
    ("lte", 0, "$.missing", False),
    # exists
    ("exists", True, "$.s", True), ("exists", True, "$.nul", True), ("exists", True, "$.missing", False),
    ("exists", False, "$.missing", True), ("exists", False, "$.nul", False), ("exists", False, "$.s", False),
    # prefix / suffix: strings only
    ("prefix", "rep", "$.s", True), ("prefix", "port", "$.s", False), ("prefix", "", "$.s", True),
    ("prefix", "5", "$.n", False), ("prefix", "x", "$.missing", False), ("prefix", "a", "$.arr", False),
    ("suffix", "port", "$.s", True), ("suffix", "rep", "$.s", False), ("suffix", "x", "$.nul", False),
    ("prefix", "plugin.job.", "$.event_type", True),
    # contains: membership in arrays, substring in strings
    ("contains", "a", "$.arr", True), ("contains", 1, "$.arr", True), ("contains", True, "$.arr", True),
    ("contains", None, "$.arr", True), ("contains", "b", "$.arr", False), ("contains", 1, "$.nums", True),
    ("contains", True, "$.nums", False),    # True is not 1
    ("contains", "1", "$.nums", False),     # "1" is not 1
    ("contains", "lo wo", "$.text", True), ("contains", "xyz", "$.text", False),
    ("contains", 5, "$.n", False),          # not an array nor a string
    ("contains", 1, "$.text", False),       # non-string operand on a string
    ("contains", "k", "$.obj", False),      # objects: False (no key lookup)
    ("contains", "a", "$.missing", False),
    # matches: anchored RE2, strings only
    ("matches", "rep.*", "$.s", True), ("matches", "ep", "$.s", False), ("matches", "^report$", "$.s", True),
    ("matches", "[0-9]+", "$.n", False),    # numbers are not stringified
    ("matches", ".*", "$.missing", False), ("matches", ".*", "$.nul", False), ("matches", "", "$.empty", True),
    ("matches", "plugin\\.job\\.(completed|failed)", "$.event_type", True),
]


@pytest.mark.parametrize("op,operand,path,expected", CASES,
                         ids=[f"{c[0]}-{c[1]!r}-{c[2]}" for c in CASES])
def test_given_operator_and_value_when_evaluated_then_documented_result(op, operand, path, expected) -> None:
    assert matches({"path": path, op: operand}) is expected


def test_given_operators_when_listed_then_every_operator_has_cases() -> None:
    from powerx_agent.strategy.conditions import OPERATORS

    assert {c[0] for c in CASES} == set(OPERATORS)


def test_given_multi_match_path_when_contains_then_checks_membership_of_matches() -> None:
    doc = {"items": [{"sku": "x"}, {"sku": "y"}]}
    assert matches({"path": "$.items[*].sku", "contains": "y"}, doc)
    assert not matches({"path": "$.items[*].sku", "contains": "z"}, doc)
    assert matches({"path": "$.items[*].sku", "equals": ["x", "y"]}, doc)


def test_given_failing_leaf_when_evaluated_then_failure_reports_path_op_expected_actual() -> None:
    failure = compile_condition({"path": "$.n", "gt": 10}).evaluate(DOC)
    assert failure == Failure("$.n", "gt", 10, 5)
    assert failure.to_dict() == {"path": "$.n", "op": "gt", "expected": 10, "actual": 5}


def test_given_missing_value_when_failed_then_actual_is_missing_marker() -> None:
    failure = compile_condition({"path": "$.nope", "equals": 1}).evaluate(DOC)
    assert failure == Failure("$.nope", "equals", 1, "<missing>")


def test_given_all_when_evaluated_then_first_failing_leaf_is_reported() -> None:
    cond = compile_condition({"all": [{"path": "$.s", "equals": "report"}, {"path": "$.n", "lt": 0},
                                      {"path": "$.f", "gt": 100}]})
    assert cond.evaluate(DOC) == Failure("$.n", "lt", 0, 5)
    assert compile_condition({"all": [{"path": "$.s", "equals": "report"}]}).evaluate(DOC) is None


def test_given_any_when_all_children_fail_then_first_failure_reported() -> None:
    cond = compile_condition({"any": [{"path": "$.s", "equals": "x"}, {"path": "$.n", "lt": 0}]})
    assert cond.evaluate(DOC) == Failure("$.s", "equals", "x", "report")
    assert compile_condition({"any": [{"path": "$.s", "equals": "x"}, {"path": "$.n", "gt": 0}]}).evaluate(DOC) is None


def test_given_not_when_inner_matches_then_failure_op_is_prefixed_with_not() -> None:
    cond = compile_condition({"not": {"path": "$.s", "equals": "report"}})
    assert cond.evaluate(DOC) == Failure("$.s", "not:equals", "report", "report")
    assert compile_condition({"not": {"path": "$.s", "equals": "x"}}).evaluate(DOC) is None


def test_given_not_over_any_when_one_child_matches_then_that_leaf_is_reported() -> None:
    cond = compile_condition({"not": {"any": [{"path": "$.s", "equals": "x"}, {"path": "$.n", "equals": 5}]}})
    assert cond.evaluate(DOC) == Failure("$.n", "not:equals", 5, 5)


def test_given_double_not_when_evaluated_then_equivalent_to_the_leaf() -> None:
    cond = compile_condition({"not": {"not": {"path": "$.s", "equals": "x"}}})
    failure = cond.evaluate(DOC)
    assert failure is not None and failure.op == "not:not:equals"
    assert compile_condition({"not": {"not": {"path": "$.s", "equals": "report"}}}).evaluate(DOC) is None


def test_given_design_example_when_evaluated_then_matches_as_documented() -> None:
    cond = compile_condition({"all": [
        {"path": "$.payload.job.type", "equals": "report"},
        {"path": "$.payload.job.rows", "gt": 0},
        {"any": [{"path": "$.context.region", "in": ["eu-west-1", "eu-central-1"]},
                 {"not": {"path": "$.payload.job.dry_run", "equals": True}}]},
    ]})
    base = {"payload": {"job": {"type": "report", "rows": 1200}}}
    assert cond.evaluate(base) is None
    dry = {"payload": {"job": {"type": "report", "rows": 1200, "dry_run": True}}}
    assert cond.evaluate(dry) == Failure("$.context.region", "in", ["eu-west-1", "eu-central-1"], "<missing>")
    assert cond.evaluate({**dry, "context": {"region": "eu-west-1"}}) is None


def test_given_catastrophic_backtracking_pattern_when_matched_then_linear_time() -> None:
    cond = compile_condition({"path": "$.s", "matches": "(a+)+$"})
    start = time.perf_counter()
    assert cond.evaluate({"s": "a" * 50_000 + "b"}) is not None
    assert time.perf_counter() - start < 1.0


def test_given_equality_conditions_when_hints_requested_then_top_level_and_equalities_returned() -> None:
    cond = compile_condition({"all": [
        {"path": "$.payload.job.type", "equals": "report"},
        {"path": "$.context.region", "in": ["eu-west-1", "eu-central-1"]},
        {"path": "$.context.region", "equals": "eu-west-1"},
        {"path": "$.n", "gt": 1},
        {"any": [{"path": "$.x", "equals": 1}, {"path": "$.y", "equals": 2}]},
        {"all": [{"path": "$.nested", "equals": True}]},
        {"path": "$.items[*].sku", "equals": "x"},
        {"path": "$.obj", "equals": {"k": "v"}},
        {"path": "$.name", "prefix": "ab"},
    ]})
    assert cond.equality_hints() == {
        "$.payload.job.type": frozenset({"report"}),
        "$.context.region": frozenset({"eu-west-1"}),
        "$.nested": frozenset({True}),
    }
    assert cond.prefix_hints() == {"$.name": ("ab",)}


def test_given_or_or_not_at_top_when_hints_requested_then_empty() -> None:
    assert compile_condition({"any": [{"path": "$.x", "equals": 1}, {"path": "$.y", "equals": 2}]}).equality_hints() == {}
    assert compile_condition({"not": {"path": "$.x", "equals": 1}}).equality_hints() == {}
    assert compile_condition({"path": "$.x", "not_equals": 1}).equality_hints() == {}
    assert compile_condition({"path": "$.x", "equals": 1}).equality_hints() == {"$.x": frozenset({1})}


@pytest.mark.parametrize("raw,code,where", [
    ({"path": "$.x", "between": [1, 2]}, "condition.unknown_operator", "when.between"),
    ({"equals": 1}, "condition.missing_path", "when"),
    ({"path": "$.x"}, "condition.invalid", "when"),
    ({"path": "$.x", "gt": 1, "lt": 2}, "condition.invalid", "when"),
    ({"all": []}, "condition.invalid", "when.all"),
    ({"any": "x"}, "condition.invalid", "when.any"),
    ({"all": [{"path": "$.x", "equals": 1}], "path": "$.y"}, "condition.invalid", "when"),
    ("just a string", "condition.invalid", "when"),
    ({"all": [{"path": "$.x", "equals": 1}, {"any": [{"path": "$.x", "gt": "ten"}]}]},
     "condition.bad_value", "when.all[1].any[0].gt"),
    ({"path": "$.x", "gt": True}, "condition.bad_value", "when.gt"),
    ({"path": "$.x", "gt": float("nan")}, "condition.bad_value", "when.gt"),
    ({"path": "$.x", "equals": float("nan")}, "condition.bad_value", "when.equals"),
    ({"path": "$.x", "in": []}, "condition.bad_value", "when.in"),
    ({"path": "$.x", "in": "abc"}, "condition.bad_value", "when.in"),
    ({"path": "$.x", "in": [[1]]}, "condition.bad_value", "when.in"),
    ({"path": "$.x", "not_in": [{"a": 1}]}, "condition.bad_value", "when.not_in"),
    ({"path": "$.x", "exists": "yes"}, "condition.bad_value", "when.exists"),
    ({"path": "$.x", "prefix": 1}, "condition.bad_value", "when.prefix"),
    ({"path": "$.x", "suffix": None}, "condition.bad_value", "when.suffix"),
    ({"path": "$.x", "contains": [1]}, "condition.bad_value", "when.contains"),
    ({"path": "$.x", "matches": "(?<=a)b"}, "condition.bad_regex", "when.matches"),
    ({"path": "$.x", "matches": "(a)\\1"}, "condition.bad_regex", "when.matches"),
    ({"path": "$.x", "matches": "a" * 513}, "condition.bad_regex", "when.matches"),
    ({"path": "$.x", "matches": "(a|b)" * 2048}, "condition.bad_regex", "when.matches"),
    ({"path": "$.x", "matches": 5}, "condition.bad_regex", "when.matches"),
    ({"path": "$.x", "matches": "((a{100}){100}){100}"}, "condition.bad_regex", "when.matches"),
    ({"path": "x", "equals": 1}, "path.invalid", "when.path"),
    ({"path": "$.a[", "equals": 1}, "path.invalid", "when.path"),
])
def test_given_bad_condition_when_compiled_then_error_has_code_and_where(raw, code, where) -> None:
    with pytest.raises(StrategyError) as info:
        compile_condition(raw)
    assert info.value.code == code
    assert info.value.where == where
    assert isinstance(info.value.details["loc"], tuple)


def test_given_nesting_deeper_than_the_limit_when_compiled_then_too_deep() -> None:
    raw: dict = {"path": "$.x", "equals": 1}
    for _ in range(MAX_DEPTH):
        raw = {"not": raw}
    with pytest.raises(StrategyError) as info:
        compile_condition(raw)
    assert info.value.code == "condition.too_deep"


def test_given_nesting_within_the_limit_when_compiled_then_accepted() -> None:
    raw: dict = {"path": "$.x", "equals": 1}
    for _ in range(MAX_DEPTH - 1):  # 31 nots + the leaf = 32 levels
        raw = {"not": raw}
    cond = compile_condition(raw)
    assert cond.evaluate({"x": 2}) is None  # an odd number of nots negates the leaf
    assert cond.evaluate({"x": 1}) is not None


def test_given_error_in_node_when_when_compiled_then_where_uses_that_prefix() -> None:
    with pytest.raises(StrategyError) as info:
        compile_condition({"any": [{"path": "$.x", "foo": 1}]}, where="flow.nodes[2].when")
    assert info.value.where == "flow.nodes[2].when.any[0].foo"
    assert info.value.details["loc"] == ("flow", "nodes", 2, "when", "any", 0, "foo")


@pytest.mark.parametrize("left,right,expected", [
    (1, 1.0, True), (1, True, False), (0, False, False), ("1", 1, False), (None, None, True),
    (None, 0, False), ([1, [2]], [1.0, [2]], True), ({"a": [1]}, {"a": [1]}, True), ({"a": 1}, {"b": 1}, False),
    ([1], (1,), True), (True, True, True), (False, True, False), ("a", "a", True),
])
def test_given_two_values_when_strict_equals_then_no_coercion(left, right, expected) -> None:
    assert strict_equals(left, right) is expected
    assert strict_equals(right, left) is expected
