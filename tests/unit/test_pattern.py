"""Unit tests of the EventBridge event-pattern matcher (powerx_agent.strategy.pattern)."""

from __future__ import annotations

import ipaddress
import json
import re
from decimal import Decimal
from typing import Any

import pytest

from powerx_agent.errors import StrategyError
from powerx_agent.strategy.pattern import (
    MAX_BRANCHES,
    MAX_DEPTH,
    MAX_FIELDS,
    CompiledPattern,
    compile_pattern,
)


def ev(detail: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """An EventBridge event with the usual envelope."""
    event: dict[str, Any] = {
        "version": "0", "id": "e-1", "detail-type": "Job Completed", "source": "powerx.plugin",
        "account": "123456789012", "time": "2024-05-01T10:00:00Z", "region": "eu-west-1", "resources": [],
        "detail": detail if detail is not None else {},
    }
    event.update(top)
    return event


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return compile_pattern(pattern).matches(event)


def invalid(pattern: Any) -> StrategyError:
    with pytest.raises(StrategyError) as info:
        compile_pattern(pattern)
    assert info.value.code == "pattern.invalid"
    return info.value


# ---- exact values ---------------------------------------------------------------------------


def test_given_exact_strings_when_event_value_is_one_of_them_then_matches() -> None:
    pattern = {"source": ["powerx.plugin", "other"], "detail-type": ["Job Completed"]}
    assert matches(pattern, ev())
    assert not matches(pattern, ev(source="powerx.other"))


def test_given_exact_number_when_event_has_same_value_spelled_differently_then_matches() -> None:
    pattern = {"detail": {"rows": [300]}}
    assert matches(pattern, ev({"rows": 300.0}))
    assert matches(pattern, json.loads('{"detail": {"rows": 3.0e+2}}'))
    assert matches(pattern, ev({"rows": Decimal("300.00")}))
    assert not matches(pattern, ev({"rows": 301}))


def test_given_exact_number_when_event_has_it_as_a_string_then_does_not_match() -> None:
    assert not matches({"detail": {"rows": [300]}}, ev({"rows": "300"}))
    assert not matches({"detail": {"rows": ["300"]}}, ev({"rows": 300}))


def test_given_null_and_booleans_when_event_has_them_then_types_are_respected() -> None:
    assert matches({"detail": {"x": [None]}}, ev({"x": None}))
    assert not matches({"detail": {"x": [None]}}, ev({"x": "null"}))
    assert matches({"detail": {"x": [True]}}, ev({"x": True}))
    assert not matches({"detail": {"x": [True]}}, ev({"x": 1}))
    assert not matches({"detail": {"x": [1]}}, ev({"x": True}))
    assert not matches({"detail": {"x": [False]}}, ev({"x": 0}))


def test_given_exact_ip_string_when_event_spells_the_same_address_differently_then_matches() -> None:
    assert matches({"detail": {"ip": ["2001:db8::1"]}}, ev({"ip": "2001:0DB8:0:0::0001"}))
    assert not matches({"detail": {"ip": ["2001:db8::1"]}}, ev({"ip": "2001:db8::2"}))


def test_given_several_fields_when_one_differs_then_does_not_match() -> None:
    pattern = {"source": ["powerx.plugin"], "detail": {"job": {"type": ["report"]}}}
    assert matches(pattern, ev({"job": {"type": "report"}}))
    assert not matches(pattern, ev({"job": {"type": "export"}}))


def test_given_field_absent_from_pattern_when_event_has_extra_fields_then_they_are_ignored() -> None:
    assert matches({"source": ["powerx.plugin"]}, ev({"anything": {"deep": [1, 2, 3]}}))


# ---- prefix / suffix / equals-ignore-case ---------------------------------------------------


def test_given_prefix_pattern_when_value_starts_with_it_then_matches() -> None:
    pattern = {"time": [{"prefix": "2024-05"}]}
    assert matches(pattern, ev())
    assert not matches(pattern, ev(time="2023-05-01"))
    assert not matches({"detail": {"n": [{"prefix": "12"}]}}, ev({"n": 123}))


def test_given_prefix_ignoring_case_when_value_differs_in_case_then_matches() -> None:
    pattern = {"detail": {"state": [{"prefix": {"equals-ignore-case": "RuN"}}]}}
    assert matches(pattern, ev({"state": "running"}))
    assert matches(pattern, ev({"state": "RUNNING"}))
    assert not matches(pattern, ev({"state": "rerun"}))


def test_given_suffix_pattern_when_value_ends_with_it_then_matches() -> None:
    pattern = {"detail": {"file": [{"suffix": ".png"}]}}
    assert matches(pattern, ev({"file": "a/b.png"}))
    assert not matches(pattern, ev({"file": "a/b.PNG"}))
    assert matches({"detail": {"file": [{"suffix": {"equals-ignore-case": ".png"}}]}}, ev({"file": "b.PNG"}))
    assert not matches({"detail": {"file": [{"suffix": {"equals-ignore-case": "xpng"}}]}}, ev({"file": "png"}))


def test_given_equals_ignore_case_when_value_differs_only_in_case_then_matches() -> None:
    pattern = {"detail": {"name": [{"equals-ignore-case": "Alice"}]}}
    assert matches(pattern, ev({"name": "ALICE"}))
    assert not matches(pattern, ev({"name": "ALICE "}))
    assert matches({"detail": {"name": [{"equals-ignore-case": "ÉCOLE"}]}}, ev({"name": "école"}))


# ---- anything-but ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operand", "value", "expected"),
    [
        ("initializing", "running", True),
        ("initializing", "initializing", False),
        (["stopped", "overloaded"], "stopped", False),
        (["stopped", "overloaded"], None, True),
        ("initializing", 12, True),
        ([100, 200], 200.0, False),
        ([100, 200], 150, True),
        ([100, 200], "100", True),
        ({"prefix": "init"}, "init-1", False),
        ({"prefix": ["init", "post"]}, "post-1", False),
        ({"prefix": "init"}, 12, True),
        ({"suffix": ".txt"}, "a.txt.bak", True),
        ({"suffix": [".txt", ".jpg"]}, "a.jpg", False),
        ({"wildcard": "*/init/*"}, "dir/init/file", False),
        ({"wildcard": ["*/a/*", "*/b/*"]}, "x/c/y", True),
        ({"equals-ignore-case": "Stopped"}, "STOPPED", False),
        ({"equals-ignore-case": ["a", "b"]}, "C", True),
    ],
)
def test_given_anything_but_when_value_is_or_is_not_excluded_then_matches_accordingly(
        operand: Any, value: Any, expected: bool) -> None:
    assert matches({"detail": {"state": [{"anything-but": operand}]}}, ev({"state": value})) is expected


def test_given_anything_but_when_field_is_missing_then_does_not_match() -> None:
    assert not matches({"detail": {"state": [{"anything-but": "x"}]}}, ev({}))


def test_given_anything_but_or_absent_when_field_is_missing_then_matches() -> None:
    pattern = {"detail": {"state": [{"anything-but": "x"}, {"exists": False}]}}
    assert matches(pattern, ev({}))
    assert matches(pattern, ev({"state": "y"}))
    assert not matches(pattern, ev({"state": "x"}))


# ---- numeric --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ([">", 0, "<=", 5], 5, True),
        ([">", 0, "<=", 5], 0, False),
        ([">", 0, "<=", 5], 0.000001, True),
        ([">=", 10, "<", 20], 20, False),
        (["<", 10], -3.5, True),
        (["<=", 10], 10.0, True),
        (["=", 301.8], 301.8, True),
        (["=", 3.018e2], 301.80000001, False),
        ([">", 0], "5", False),
        ([">", 0], True, False),
        ([">", 0], None, False),
        ([">", 0], Decimal("0.5"), True),
        ([">", 0], 6e9, False),  # outside EventBridge's numeric range
    ],
)
def test_given_numeric_range_when_value_is_tested_then_bounds_are_respected(
        spec: list, value: Any, expected: bool) -> None:
    assert matches({"detail": {"n": [{"numeric": spec}]}}, ev({"n": value})) is expected


# ---- exists ---------------------------------------------------------------------------------


def test_given_exists_true_when_field_has_a_leaf_value_then_matches() -> None:
    pattern = {"detail": {"x": [{"exists": True}]}}
    assert matches(pattern, ev({"x": "a"}))
    assert matches(pattern, ev({"x": None}))
    assert matches(pattern, ev({"x": [1]}))
    assert not matches(pattern, ev({}))


def test_given_exists_true_when_field_is_an_empty_array_or_an_object_then_does_not_match() -> None:
    pattern = {"detail": {"x": [{"exists": True}]}}
    assert not matches(pattern, ev({"x": []}))
    assert not matches(pattern, ev({"x": {"y": 1}}))


def test_given_exists_false_when_field_is_absent_then_matches() -> None:
    pattern = {"detail": {"x": [{"exists": False}]}}
    assert matches(pattern, ev({}))
    assert matches(pattern, ev({"x": []}))
    assert not matches(pattern, ev({"x": 0}))
    assert not matches(pattern, ev({"x": None}))


# ---- wildcard -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wildcard", "value", "expected"),
    [
        ("*.png", "dir/file.png", True),
        ("*.png", "dir/file.jpg", False),
        ("dir/*/file", "dir/a/b/file", True),
        ("a*b*c", "abc", True),
        ("a*b*c", "acb", False),
        ("exact", "exact", True),
        (r"a\*b", "a*b", True),
        (r"a\*b", "axb", False),
        (r"a\\*", "a\\anything", True),
        ("*", "", True),
    ],
)
def test_given_wildcard_when_value_is_tested_then_star_matches_any_sequence(
        wildcard: str, value: str, expected: bool) -> None:
    assert matches({"detail": {"p": [{"wildcard": wildcard}]}}, ev({"p": value})) is expected


def test_given_wildcard_when_value_is_not_a_string_then_does_not_match() -> None:
    assert not matches({"detail": {"p": [{"wildcard": "*"}]}}, ev({"p": 5}))


# ---- cidr -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "value", "expected"),
    [
        ("10.0.0.0/24", "10.0.0.255", True),
        ("10.0.0.0/24", "10.0.1.0", False),
        ("10.0.0.0/24", "not-an-ip", False),
        ("220.160.154.255/24", "220.160.154.0", True),  # host bits set: the network is the floor
        ("2001:db8::/32", "2001:db8:ffff::1", True),
        ("2001:db8::/32", "2001:db9::1", False),
        ("10.0.0.0/8", "::ffff:10.0.0.1", False),
    ],
)
def test_given_cidr_when_ip_is_tested_then_network_membership_decides(
        cidr: str, value: str, expected: bool) -> None:
    assert matches({"detail": {"ip": [{"cidr": cidr}]}}, ev({"ip": value})) is expected


# ---- $or ------------------------------------------------------------------------------------


def test_given_or_when_any_branch_matches_then_matches() -> None:
    pattern = {"source": ["powerx.plugin"],
               "$or": [{"detail": {"rows": [{"numeric": [">", 100]}]}}, {"detail": {"force": [True]}}]}
    assert matches(pattern, ev({"rows": 500}))
    assert matches(pattern, ev({"rows": 5, "force": True}))
    assert not matches(pattern, ev({"rows": 5}))
    assert not matches(pattern, ev({"rows": 500}, source="other"))


def test_given_nested_or_inside_detail_when_matching_then_branches_combine_with_outer_fields() -> None:
    pattern = {"detail": {"kind": ["a"], "$or": [{"x": [1]}, {"$or": [{"y": [2]}, {"z": [3]}]}]}}
    assert matches(pattern, ev({"kind": "a", "z": 3}))
    assert not matches(pattern, ev({"kind": "b", "z": 3}))
    assert not matches(pattern, ev({"kind": "a", "z": 4}))


# ---- arrays ---------------------------------------------------------------------------------


def test_given_event_array_of_values_when_any_element_matches_then_matches() -> None:
    assert matches({"resources": [{"prefix": "arn:aws:s3"}]}, ev(resources=["arn:aws:ec2:x", "arn:aws:s3:::b"]))
    assert not matches({"resources": ["x"]}, ev(resources=[]))


def test_given_nested_arrays_when_any_leaf_matches_then_matches() -> None:
    assert matches({"detail": {"m": [4]}}, ev({"m": [[1, 2], [3, [4]]]}))


def test_given_pattern_descending_into_array_of_objects_when_an_element_matches_then_matches() -> None:
    event = ev({"employees": [{"firstName": "John"}, {"firstName": "Anna"}]})
    assert matches({"detail": {"employees": {"firstName": ["Anna"]}}}, event)
    assert not matches({"detail": {"employees": {"firstName": ["Peter"]}}}, event)


def test_given_two_fields_in_array_of_objects_when_they_come_from_different_elements_then_does_not_match() -> None:
    event = ev({"items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 5}]})
    assert matches({"detail": {"items": {"sku": ["b"], "qty": [5]}}}, event)
    assert not matches({"detail": {"items": {"sku": ["a"], "qty": [5]}}}, event)


def test_given_exists_false_in_array_of_objects_when_the_matched_element_lacks_the_field_then_matches() -> None:
    event = ev({"tasks": [{"kind": "a", "result": "boom"}, {"kind": "b"}]})
    assert matches({"detail": {"tasks": {"kind": ["b"], "result": [{"exists": False}]}}}, event)
    assert not matches({"detail": {"tasks": {"kind": ["a"], "result": [{"exists": False}]}}}, event)


def test_given_exists_false_sorting_before_the_array_field_when_matched_then_any_element_counts_like_event_ruler() -> None:
    # event-ruler walks a rule's fields in sorted name order and checks exists:false against the
    # array elements chosen by the fields before it: "error" < "kind", so nothing is chosen yet and
    # the "error" of element 0 counts although "kind" is then matched in element 1.
    event = ev({"tasks": [{"kind": "a", "error": "boom"}, {"kind": "b"}]})
    assert not matches({"detail": {"tasks": {"kind": ["b"], "error": [{"exists": False}]}}}, event)
    assert matches({"detail": {"tasks": {"kind": ["b"], "error": [{"exists": False}]}}},
                   ev({"tasks": [{"kind": "a"}, {"kind": "b"}]}))


def test_given_field_outside_the_array_when_combined_with_one_inside_then_both_are_consistent() -> None:
    event = ev({"owner": "x", "items": [{"sku": "a"}, {"sku": "b"}]})
    assert matches({"detail": {"owner": ["x"], "items": {"sku": ["b"]}}}, event)


# ---- dotted keys ----------------------------------------------------------------------------


def test_given_dotted_key_in_pattern_when_event_nests_the_same_path_then_matches() -> None:
    assert matches({"detail": {"state.status": ["running"]}}, ev({"state": {"status": "running"}}))


def test_given_nested_pattern_when_event_uses_a_dotted_key_then_matches() -> None:
    assert matches({"detail": {"state": {"status": ["running"]}}}, ev({"state.status": "running"}))
    assert matches({"detail.state": {"status": ["running"]}}, ev({"state": {"status": "running"}}))
    assert not matches({"detail": {"state": {"status": ["running"]}}}, ev({"state.status": "stopped"}))


# ---- explain --------------------------------------------------------------------------------


def test_given_matching_event_when_explained_then_returns_none() -> None:
    assert compile_pattern({"source": ["powerx.plugin"]}).explain(ev()) is None


def test_given_wrong_value_when_explained_then_reports_path_op_expected_and_actual() -> None:
    compiled = compile_pattern({"source": ["powerx.plugin"], "detail": {"job": {"rows": [{"numeric": [">", 10]}]}}})
    assert compiled.explain(ev({"job": {"rows": 3}})) == {
        "path": "detail.job.rows", "op": "numeric", "expected": [{"numeric": [">", 10]}], "actual": 3,
    }


def test_given_missing_field_when_explained_then_actual_is_missing_marker() -> None:
    compiled = compile_pattern({"detail": {"job": {"type": ["report"]}}})
    assert compiled.explain(ev({})) == {
        "path": "detail.job.type", "op": "equals", "expected": ["report"], "actual": "<missing>",
    }


def test_given_or_when_explained_then_reports_the_branch_that_got_furthest() -> None:
    compiled = compile_pattern({"$or": [{"source": ["nope"]}, {"source": ["powerx.plugin"], "region": ["us-east-1"]}]})
    report = compiled.explain(ev())
    assert report is not None
    assert report["path"] == "region"
    assert report["actual"] == "eu-west-1"


def test_given_array_inconsistency_when_explained_then_reports_a_field_of_the_array() -> None:
    compiled = compile_pattern({"detail": {"items": {"sku": ["a"], "qty": [5]}}})
    report = compiled.explain(ev({"items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 5}]}))
    assert report is not None
    assert report["path"] in {"detail.items.sku", "detail.items.qty"}


# ---- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "where"),
    [
        ({"source": "powerx.plugin"}, "pattern.source"),
        ({"detail": {"x": 5}}, "pattern.detail.x"),
        ({"detail": {"x": []}}, "pattern.detail.x"),
        ({"detail": {}}, "pattern.detail"),
        ({"detail": {"x": [{"regex": "a.*"}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"prefix": "a", "suffix": "b"}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"prefix": 5}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"prefix": {"wildcard": "a"}}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"numeric": [">", "a"]}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"numeric": ["<", 5, ">", 1]}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"numeric": [">", 5, "<", 1]}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"numeric": [">", 5, "<"]}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"numeric": ["==", 5]}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"numeric": [">", 6e9]}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"numeric": [">", True]}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"cidr": "10.0.0.0"}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"cidr": "10.0.0.0/33"}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"cidr": "banana/8"}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"wildcard": "a**b"}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"wildcard": "a\\b"}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"exists": "yes"}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"anything-but": [1, "a"]}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"anything-but": None}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"anything-but": {"prefix": ""}}]}}, "pattern.detail.x"),
        ({"detail": {"x": [{"anything-but": {"numeric": [">", 1]}}]}}, "pattern.detail.x"),
        ({"detail": {"x": [["nested"]]}}, "pattern.detail.x"),
        ({"detail": {"x": [float("nan")]}}, "pattern.detail.x"),
        ({"$or": [{"a": [1]}]}, "pattern.$or"),
        ({"$or": {"a": [1]}}, "pattern.$or"),
        ({"$or": [{"a": [1]}, "b"]}, "pattern.$or[1]"),
        ({"$or": [{"a": [1]}, {"prefix": ["b"]}]}, "pattern.$or[1].prefix"),
        ({"detail": {"a.b": [1], "a": {"b": [2]}}}, "pattern.detail.a.b"),
    ],
)
def test_given_invalid_pattern_when_compiled_then_raises_pattern_invalid_with_location(
        pattern: dict[str, Any], where: str) -> None:
    error = invalid(pattern)
    assert error.where == where
    assert error.message


def test_given_non_object_pattern_when_compiled_then_raises_pattern_invalid() -> None:
    assert invalid(["source"]).where == "pattern"


def test_given_custom_where_when_pattern_is_invalid_then_location_uses_it() -> None:
    with pytest.raises(StrategyError) as info:
        compile_pattern({"detail": {"x": "y"}}, where="strategies/a.yaml:pattern")
    assert info.value.where == "strategies/a.yaml:pattern.detail.x"


def test_given_pattern_nested_too_deep_when_compiled_then_raises_pattern_invalid() -> None:
    pattern: dict[str, Any] = {"leaf": [1]}
    for _ in range(MAX_DEPTH + 1):
        pattern = {"k": pattern}
    assert "deep" in invalid(pattern).message


def test_given_or_expanding_into_too_many_branches_when_compiled_then_raises_pattern_invalid() -> None:
    pattern: dict[str, Any] = {}
    width = 2
    count = 1
    i = 0
    while count <= MAX_BRANCHES:
        pattern[f"f{i}"] = {"$or": [{"a": [j]} for j in range(width)]}
        count *= width
        i += 1
    assert "$or" in invalid(pattern).message


def test_given_too_many_fields_when_compiled_then_raises_pattern_invalid() -> None:
    assert "fields" in invalid({"detail": {f"f{i}": [i] for i in range(MAX_FIELDS + 1)}}).message


def test_given_invalid_matcher_when_compiled_then_error_details_give_its_index() -> None:
    error = invalid({"detail": {"x": ["ok", {"numeric": ["<"]}]}})
    assert error.details["index"] == 1


# ---- compile once, match without compiling ---------------------------------------------------


def test_given_compiled_pattern_when_matching_then_nothing_is_parsed_or_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = compile_pattern({
        "source": [{"prefix": "powerx."}],
        "detail": {"p": [{"wildcard": "*.png"}], "ip": [{"cidr": "10.0.0.0/8"}],
                   "n": [{"numeric": [">", 1]}], "s": [{"equals-ignore-case": "ÀB"}]},
    })
    event = ev({"p": "a.png", "ip": "10.1.2.3", "n": 2, "s": "àb"})

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("compiled at match time")

    monkeypatch.setattr(re, "compile", forbidden)
    monkeypatch.setattr(ipaddress, "ip_network", forbidden)
    monkeypatch.setattr(json, "loads", forbidden)
    assert isinstance(compiled, CompiledPattern)
    assert compiled.matches(event)
    assert not compiled.matches(ev({"p": "a.jpg", "ip": "10.1.2.3", "n": 2, "s": "àb"}))


def test_given_non_object_event_when_matched_then_does_not_match() -> None:
    compiled = compile_pattern({"source": [{"exists": False}]})
    assert not compiled.matches(["not", "an", "event"])  # type: ignore[arg-type]
