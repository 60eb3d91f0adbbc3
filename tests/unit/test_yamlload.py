"""The safe YAML reader: YAML 1.2 scalars, no aliases, limits, positions."""

from __future__ import annotations

import math
import time

import pytest

from powerx_agent.errors import StrategyError
from powerx_agent.strategy.yamlload import MAX_BYTES, MAX_DEPTH, load_yaml


def _code(text: str | bytes) -> str:
    with pytest.raises(StrategyError) as info:
        load_yaml(text, "f.yaml")
    return info.value.code


def test_given_on_yes_no_off_when_loaded_then_they_stay_strings() -> None:
    loaded = load_yaml("on: {event: x}\na: yes\nb: no\nc: off\nd: On\ne: y\n", "f.yaml")
    assert loaded.data == {"on": {"event": "x"}, "a": "yes", "b": "no", "c": "off", "d": "On", "e": "y"}


def test_given_yaml_12_core_scalars_when_loaded_then_types_follow_the_core_schema() -> None:
    text = ("t: true\nf: false\nT: True\nn: null\nz: ~\ne:\ni: 12\nneg: -3\noct: 0o17\nhex: 0x1f\n"
            "fl: 2.5\nexp: 1e3\ninf: .inf\nninf: -.inf\nnan: .nan\ndate: 2026-11-28\nsexa: 1:30\n"
            "under: 1_000\nq: '12'\nexplicit: !!str 12\n")
    data = load_yaml(text, "f.yaml").data
    assert data["t"] is True and data["f"] is False and data["T"] is True
    assert data["n"] is None and data["z"] is None and data["e"] is None
    assert data["i"] == 12 and data["neg"] == -3 and data["oct"] == 15 and data["hex"] == 31
    assert data["fl"] == 2.5 and data["exp"] == 1000.0 and data["inf"] == math.inf and data["ninf"] == -math.inf
    assert math.isnan(data["nan"])
    assert data["date"] == "2026-11-28" and data["sexa"] == "1:30" and data["under"] == "1_000"
    assert data["q"] == "12" and data["explicit"] == "12"


def test_given_nested_document_when_loaded_then_every_key_and_item_has_a_1_based_position() -> None:
    loaded = load_yaml("id: x\nflow:\n  nodes:\n    - id: a\n      after: [b, c]\n", "f.yaml")
    assert loaded.positions[("id",)] == (1, 1)
    assert loaded.positions[("flow", "nodes")] == (3, 3)
    assert loaded.positions[("flow", "nodes", 0)] == (4, 7)
    assert loaded.positions[("flow", "nodes", 0, "id")] == (4, 7)
    assert loaded.positions[("flow", "nodes", 0, "after", 1)] == (5, 18)
    assert loaded.position(("flow", "nodes", 0, "after", 7, "deeper")) == (5, 7)
    assert loaded.position(("nope",)) == (1, 1)


def test_given_anchor_or_alias_when_loaded_then_refused() -> None:
    assert _code("a: &x 1\nb: *x\n") == "yaml.anchor"
    assert _code("b: *x\n") == "yaml.alias"


def test_given_billion_laughs_when_loaded_then_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    start = time.perf_counter()
    assert _code("\n".join(lines)) == "yaml.anchor"
    assert time.perf_counter() - start < 1.0


def test_given_file_over_the_size_limit_when_loaded_then_too_large() -> None:
    big = "a: '" + "x" * MAX_BYTES + "'\n"
    assert _code(big) == "yaml.too_large"
    assert _code(big.encode()) == "yaml.too_large"


def test_given_huge_scalar_under_file_limit_when_loaded_then_too_large() -> None:
    assert _code("a: '" + "x" * 70_000 + "'\n") == "yaml.too_large"


@pytest.mark.parametrize("opener,closer", [("[", "]"), ("{a: ", "}")])
def test_given_nesting_deeper_than_the_limit_when_loaded_then_too_deep(opener: str, closer: str) -> None:
    depth = MAX_DEPTH + 1
    assert _code(opener * depth + "1" + closer * depth) == "yaml.too_deep"


def test_given_very_deep_nesting_when_loaded_then_no_recursion_error() -> None:
    assert _code("[" * 50_000 + "]" * 50_000) in ("yaml.too_deep", "yaml.too_large")


def test_given_nesting_at_the_limit_when_loaded_then_accepted() -> None:
    assert load_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH, "f.yaml").data is not None


def test_given_non_utf8_bytes_when_loaded_then_encoding_error_with_line_and_col() -> None:
    with pytest.raises(StrategyError) as info:
        load_yaml(b"id: ok\nname: caf\xe9\n", "f.yaml")
    assert info.value.code == "yaml.encoding"
    assert info.value.where == "f.yaml:2:10"


def test_given_utf8_bom_when_loaded_then_ignored() -> None:
    assert load_yaml(b"\xef\xbb\xbfa: 1\n", "f.yaml").data == {"a": 1}


def test_given_tab_indentation_when_loaded_then_tab_error() -> None:
    assert _code("a:\n\tb: 1\n") == "yaml.tab"


def test_given_duplicate_key_when_loaded_then_duplicate_key_at_second_occurrence() -> None:
    with pytest.raises(StrategyError) as info:
        load_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert info.value.code == "yaml.duplicate_key"
    assert info.value.where == "f.yaml:3:1"


@pytest.mark.parametrize("text", ["True: 1\n", "1: x\n", "null: x\n", "? [a]\n: 1\n", "1.5: x\n"])
def test_given_non_string_key_when_loaded_then_refused(text: str) -> None:
    assert _code(text) == "yaml.non_string_key"


def test_given_quoted_true_key_when_loaded_then_accepted() -> None:
    assert load_yaml("'True': 1\n", "f.yaml").data == {"True": 1}


@pytest.mark.parametrize("text", ["a: !!python/object/apply:os.system ['id']\n", "a: !!binary aGk=\n",
                                  "a: !!set {x}\n", "a: !custom 1\n", "a: !!timestamp 2026-01-01\n"])
def test_given_non_standard_tag_when_loaded_then_refused(text: str) -> None:
    assert _code(text) == "yaml.tag"


def test_given_two_documents_when_loaded_then_refused() -> None:
    assert _code("a: 1\n---\nb: 2\n") == "yaml.multiple_documents"


def test_given_control_character_when_loaded_then_invalid_char() -> None:
    assert _code("a: \x07\n") == "yaml.invalid_char"


def test_given_broken_syntax_when_loaded_then_syntax_error_with_position() -> None:
    with pytest.raises(StrategyError) as info:
        load_yaml("a: 1\nb: [1, 2\n", "f.yaml")
    assert info.value.code == "yaml.syntax"
    assert info.value.where.startswith("f.yaml:")


def test_given_integer_with_too_many_digits_when_loaded_then_invalid_scalar() -> None:
    assert _code("a: " + "9" * 5000 + "\n") == "yaml.invalid_scalar"


def test_given_empty_text_when_loaded_then_data_is_none() -> None:
    assert load_yaml("", "f.yaml").data is None
    assert load_yaml("# only a comment\n", "f.yaml").data is None


def test_given_merge_key_when_loaded_then_it_is_a_plain_key() -> None:
    assert load_yaml("<<: {a: 1}\n", "f.yaml").data == {"<<": {"a": 1}}


@pytest.fixture(params=["libyaml", "python"])
def loader_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    from powerx_agent.strategy import yamlload

    if request.param == "python":
        monkeypatch.setattr(yamlload, "_Loader", yamlload._PyLoader)
    return request.param


@pytest.mark.parametrize("text,code", [
    ("a: &x 1\n", "yaml.anchor"), ("b: *x\n", "yaml.alias"), ("a:\n\tb: 1\n", "yaml.tab"),
    ("a: 1\na: 2\n", "yaml.duplicate_key"), ("True: 1\n", "yaml.non_string_key"), ("a: \x07\n", "yaml.invalid_char"),
    ("a: 1\n---\nb: 2\n", "yaml.multiple_documents"), ("[" * 70 + "]" * 70, "yaml.too_deep"),
    ("[" * 5000 + "]" * 5000, "yaml.too_deep"), ("a: [1\n", "yaml.syntax"), ("a: !!binary aGk=\n", "yaml.tag"),
])
def test_given_both_parsers_when_bad_yaml_loaded_then_same_codes(loader_kind: str, text: str, code: str) -> None:
    assert _code(text) == code


def test_given_both_parsers_when_strategy_loaded_then_same_data_and_positions(loader_kind: str) -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "strategies" / "report-on-job-completed.yaml"
    loaded = load_yaml(path.read_bytes(), "r.yaml")
    assert loaded.data["on"] == {"event": "plugin.job.completed"}
    assert loaded.positions[("flow", "nodes", 3, "when", "gt")] == (42, 40)


@pytest.mark.parametrize("text", ["ids: [$.items[*].id]\n", "input: {ids: [*]}\n", "p: *.id\n",
                                  "v: {path: $.payload.items[*].id}\n"])
def test_given_an_unquoted_jsonpath_with_a_star_when_loaded_then_the_error_says_to_quote_it(text: str) -> None:
    with pytest.raises(StrategyError) as caught:
        load_yaml(text, "s.yaml")
    assert caught.value.code == "yaml.syntax"
    assert 'quote it: path: "$.items[*].id"' in caught.value.message


def test_given_a_quoted_jsonpath_with_a_star_when_loaded_then_it_is_a_string() -> None:
    assert load_yaml('ids: ["$.items[*].id"]\n', "s.yaml").data == {"ids": ["$.items[*].id"]}


def test_given_the_same_scalars_in_many_documents_when_loaded_then_each_answer_is_that_of_a_first_reading() -> None:
    # untagged short scalars are remembered across documents: a remembered value never changes an answer,
    # a refused one is refused again with its own place, and a tag still decides over the remembered value
    first = load_yaml("a: 12\nb: true\nc: 'true'\nd: ~\ne: x\n", "one.yaml").data
    assert first == {"a": 12, "b": True, "c": "true", "d": None, "e": "x"}
    again = load_yaml("e: x\nd: ~\nc: 'true'\nb: true\na: 12\nf: !!str 12\n", "two.yaml").data
    assert again == {**first, "f": "12"} and type(again["a"]) is int
    for source in ("three.yaml", "four.yaml"):
        with pytest.raises(StrategyError) as refused:
            load_yaml("k: 1\nbad: !!int twelve\n", source)
        assert refused.value.code == "yaml.invalid_scalar" and refused.value.where == f"{source}:2:6"
