"""Templates (${name}) and variables: typed exact placeholders, escapes, data-only rendering."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerx_agent.errors import StrategyError
from powerx_agent.strategy.templates import BUILTINS, compile_template, compile_variables

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=15,
)
_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(name=_names, value=_json)
def test_given_exact_placeholder_when_rendered_then_value_keeps_its_type(name: str, value) -> None:
    rendered = compile_template("${" + name + "}", "t").render({name: value})
    assert rendered == value
    assert type(rendered) is type(value)


def escape(text: str, before_placeholder: bool = False) -> str:
    """Make ``text`` render verbatim (also when a placeholder follows it, if told so)."""
    pattern = r"(\$+)(\{|\Z)" if before_placeholder else r"(\$+)(\{)"
    return re.sub(pattern, lambda m: m.group(1) * 2 + m.group(2), text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("${}ab_ \n"), max_size=40) | st.text(max_size=40))
def test_given_any_text_with_escaped_placeholders_when_rendered_then_text_comes_back_verbatim(text: str) -> None:
    assert compile_template(escape(text), "t").render({}) == text
    assert compile_template(escape(text, True) + "${x}", "t").render({"x": "v"}) == text + "v"


@settings(max_examples=200, deadline=None)
@given(payload=st.sampled_from(["__import__('os').system('id')", "{{7*7}}", "${7*7}", "`id`", "$(id)",
                                "{0.__class__}", "%s%s", "'; DROP TABLE x; --", "\x00\n\t"]),
       prefix=st.text(max_size=10))
def test_given_code_like_values_when_rendered_then_they_are_inserted_as_plain_text(payload: str, prefix: str) -> None:
    template = compile_template(escape(prefix, True) + "${x}", "t")
    assert template.render({"x": payload}) == prefix + payload
    assert compile_template("${x}", "t").render({"x": payload}) == payload


def test_given_code_like_template_text_when_compiled_then_refused_not_evaluated() -> None:
    for text in ["${__import__('os').system('id')}", "${1+1}", "${x.y}", "${ x }", "${}", "${x"]:
        with pytest.raises(StrategyError) as info:
            compile_template(text, "flow.nodes[0].input.a")
        assert info.value.code == "template.invalid"
        assert info.value.where == "flow.nodes[0].input.a"


@pytest.mark.parametrize("value,expected", [
    ("job-${id}", "job-42"),
    ("${n} rows", "3 rows"),
    ("${f}", 2.5),
    ("${b}/${z}", "true/null"),
    ("${obj}!", '{"k":"v"}!'),
    ("${lst}", [1, "a"]),
    ("${id}${id}", "4242"),
    ("$${id}", "${id}"),
    ("$$${id}", "$42"),      # odd run of $ before {: half of them literal, then the placeholder
    ("$$$${id}", "$${id}"),  # even run: an escape
    ("price: $5, $$5", "price: $5, $$5"),
    ("cost $5 and $ {id}", "cost $5 and $ {id}"),
    ("plain", "plain"),
    (7, 7),
    (None, None),
    (True, True),
    ({"a": "${id}", "b": ["${n}", "x-${n}", {"c": "${z}"}]}, {"a": "42", "b": [3, "x-3", {"c": None}]}),
    ({"${id}": "keys are literal"}, {"${id}": "keys are literal"}),
])
def test_given_template_when_rendered_then_documented_output(value, expected) -> None:
    values = {"id": "42", "n": 3, "f": 2.5, "b": True, "z": None, "obj": {"k": "v"}, "lst": [1, "a"]}
    assert compile_template(value, "t").render(values) == expected


def test_given_template_when_compiled_then_names_lists_every_placeholder() -> None:
    template = compile_template({"a": "${x}-${y}", "b": ["${z}", "$${w}"]}, "t")
    assert template.names == frozenset({"x", "y", "z"})
    assert compile_template("static", "t").is_static


def test_given_known_names_when_template_uses_unknown_name_then_unknown_name_error() -> None:
    with pytest.raises(StrategyError) as info:
        compile_template({"a": "${job}"}, "flow.nodes[0].input", known=BUILTINS)
    assert info.value.code == "template.unknown_name"
    assert info.value.details["name"] == "job"


def test_given_missing_value_at_render_when_rendered_then_missing_value_error() -> None:
    with pytest.raises(StrategyError) as info:
        compile_template("${x}", "t").render({})
    assert info.value.code == "template.missing_value"


BUILTIN_VALUES = {"tenant": "acme", "event_id": "e-1", "owner": "o@example.com", "event_type": "t",
                  "idempotency_key": "k-1"}


def test_given_design_variables_when_rendered_then_paths_defaults_and_templates_resolve() -> None:
    variables = compile_variables({
        "job_id": "$.payload.job.id",
        "rows": {"path": "$.payload.job.rows", "default": 0},
        "report_name": "daily-${job_id}",
        "who": "${owner}/${tenant}",
        "const": 5,
        "wrapped": {"value": {"id": "${job_id}"}},
        "absent": "$.nope",
    }, BUILTINS)
    assert variables.render({"payload": {"job": {"id": "42"}}}, BUILTIN_VALUES) == {
        "job_id": "42", "rows": 0, "report_name": "daily-42", "who": "o@example.com/acme", "const": 5,
        "wrapped": {"id": "42"}, "absent": None,
    }


def test_given_null_value_at_path_with_default_when_rendered_then_null_is_kept() -> None:
    variables = compile_variables({"x": {"path": "$.x", "default": 1}}, BUILTINS)
    assert variables.render({"x": None}, BUILTIN_VALUES) == {"x": None}
    assert variables.render({}, BUILTIN_VALUES) == {"x": 1}


def test_given_variable_used_before_definition_when_compiled_then_ordered_by_dependency() -> None:
    variables = compile_variables({"full": "${first}-${second}", "first": "$.a", "second": "${first}!"}, BUILTINS)
    assert variables.names == ("first", "second", "full")
    assert variables.render({"a": "x"}, BUILTIN_VALUES) == {"first": "x", "second": "x!", "full": "x-x!"}


@pytest.mark.parametrize("raw,code,where", [
    ({"a": "${b}", "b": "${a}"}, "template.cycle", "variables.a"),
    ({"a": "x${a}"}, "template.cycle", "variables.a"),
    ({"a": "${b}", "b": "${c}", "c": "${a}"}, "template.cycle", "variables.a"),
    ({"a": "${nope}"}, "template.unknown_name", "variables.a"),
    ({"tenant": "$.t"}, "template.shadows_builtin", "variables.tenant"),
    ({"1bad": "$.x"}, "template.invalid_variable", "variables.1bad"),
    ({"a-b": "$.x"}, "template.invalid_variable", "variables.a-b"),
    ({"a": {"path": "$.x", "defualt": 1}}, "template.invalid_variable", "variables.a.defualt"),
    ({"a": {"nopath": 1}}, "template.invalid_variable", "variables.a"),
    ({"a": "$.x["}, "path.invalid", "variables.a"),
    ({"a": {"path": "x"}}, "path.invalid", "variables.a.path"),
    ({"a": "${x.y}"}, "template.invalid", "variables.a"),
])
def test_given_bad_variables_when_compiled_then_error_with_code_and_where(raw, code, where) -> None:
    with pytest.raises(StrategyError) as info:
        compile_variables(raw, BUILTINS)
    assert info.value.code == code
    assert info.value.where == where


def test_given_no_variables_when_compiled_then_render_is_empty() -> None:
    assert compile_variables({}, BUILTINS).render({}, {}) == {}
    assert compile_variables(None, BUILTINS).names == ()
