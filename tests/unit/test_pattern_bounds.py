"""The EventBridge matcher never backtracks: wildcards, case folding and array consistency stay
bounded on hostile patterns and events, and agree with a reference on everything small."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from powerx_agent.strategy import pattern as pattern_mod
from powerx_agent.strategy.pattern import compile_pattern


def _matches(pattern: dict, value: object) -> bool:
    return compile_pattern({"detail": {"x": [pattern]}}).matches({"detail": {"x": value}})


def _reference_glob(glob: str, value: str) -> bool:
    """The wildcard semantics as a regex (backtracking; only ever run on tiny inputs here)."""
    return re.fullmatch(".*".join(re.escape(part) for part in glob.split("*")), value, re.DOTALL) is not None


# consecutive stars are refused at compile time: inner segments are never empty
_globs = st.builds(lambda first, inner, last: "*".join([first, *inner, last]) if inner is not None else first,
                   st.text(alphabet="ab.", max_size=3),
                   st.none() | st.lists(st.text(alphabet="ab.", min_size=1, max_size=3), max_size=4),
                   st.text(alphabet="ab.", max_size=3))


@settings(max_examples=400, deadline=None)
@given(glob=_globs, value=st.text(alphabet="ab.", max_size=12))
def test_given_any_small_glob_when_matched_then_it_agrees_with_the_regex_reference(glob: str, value: str) -> None:
    assert _matches({"wildcard": glob}, value) is _reference_glob(glob, value)


def test_given_backtracking_bomb_wildcards_when_matched_then_they_decide_at_once() -> None:
    # each of these took from seconds to minutes as a backtracking regex
    assert _matches({"wildcard": "*a*a*a*a*a*a*a*a*b"}, "a" * 100_000) is False
    assert _matches({"wildcard": "*.*.log"}, "." * 200_000) is False
    assert _matches({"wildcard": "*.*.log"}, "." * 200_000 + "x.log") is True
    assert _matches({"anything-but": {"wildcard": "*a*a*a*a*b"}}, "a" * 100_000) is True


_folding = st.text(alphabet="aAßSsİiKkÅå\u212a\u00e5xyz", max_size=6)


@settings(max_examples=300, deadline=None)
@given(text=_folding, value=_folding, mode=st.sampled_from(["equals", "prefix", "suffix"]))
def test_given_non_ascii_case_folding_when_matched_on_re2_then_it_agrees_with_the_per_character_rule(
        text: str, value: str, mode: str) -> None:
    # the rule: each pattern character matches its lower or its upper case (event-ruler's)
    body = "".join("(?:" + "|".join(re.escape(v) for v in sorted({c.lower(), c.upper()}, key=lambda s: -len(s)))
                   + ")" for c in text)
    expected = {"equals": re.fullmatch, "prefix": re.match,
                "suffix": lambda b, v, f: re.search("(?:" + b + r")\Z", v, f)}[mode](body, value, re.DOTALL)
    spec = {"equals-ignore-case": text} if mode == "equals" else {mode: {"equals-ignore-case": text}}
    if not text and mode == "equals":
        return
    assert _matches(spec, value) is (expected is not None)


def test_given_lone_surrogate_in_event_when_case_folded_then_no_error_and_no_match() -> None:
    assert _matches({"equals-ignore-case": "ÅB"}, "\ud800b") is False
    assert _matches({"prefix": {"equals-ignore-case": "Åb"}}, "åB\udfff") is True


def _array_bomb(elements: int, fields: int) -> tuple[dict, dict]:
    """Every field is satisfiable alone, in many elements, and the last one never with the others."""
    element = {f"f{i}": [{"p": 1} for _ in range(elements)] for i in range(fields)}
    event = {"detail": {"a": [element, {"g": 1}]}}
    pattern = {"detail": {"a": {**{f"f{i}": {"p": [1]} for i in range(fields)}, "g": [1]}}}
    return pattern, event


def test_given_array_consistency_bomb_when_matched_then_memoised_search_decides_exactly() -> None:
    # without the memo: elements ** fields steps (6 ** 8 took 2.4 s; 10 ** 40 would never end)
    pattern, event = _array_bomb(elements=10, fields=40)
    compiled = compile_pattern(pattern)
    assert compiled.matches(event) is False
    assert compiled.explain(event)["path"] == "detail.a.g"
    event["detail"]["a"][0]["g"] = 1  # now one element holds every field
    assert compiled.matches(event) is True


def test_given_search_over_its_step_budget_when_matched_then_no_match_and_explained(monkeypatch) -> None:
    monkeypatch.setattr(pattern_mod, "MAX_CONSISTENCY_STEPS", 50)
    pattern, event = _array_bomb(elements=10, fields=8)
    compiled = compile_pattern(pattern)
    assert compiled.matches(event) is False
    assert compiled.explain(event)["op"] == "too_complex"
