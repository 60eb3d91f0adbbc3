"""Property-based fuzz of the strategy surfaces: JSONPath, templates, strategy YAML, and events
against every strategy lint accepts; plus the bus envelope through ingest on the in-memory fakes.

For any input: a finding or error with a code docs/strategies.md (or docs/reliability.md) lists, or a
value; never another exception. What lint accepts is bounded: a path selects at most
``MAX_BRANCHES`` copies of each value of the event, a render never builds more than
``MAX_RENDERED_BYTES``, and an accepted strategy evaluates any event without raising. Time and memory
per input are measured by ``make bench`` (docs/benchmarks-hostile.md), not asserted here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile import EVENT_TYPES, events, examples, json_values, nested, scalars, texts
from powerx_agent import spec
from powerx_agent.errors import RetryableError, StrategyError
from powerx_agent.ingest.service import UNREGISTERED_TENANT, Ingestor
from powerx_agent.json_limits import JsonLimitError, check_value
from powerx_agent.match.service import Matcher
from powerx_agent.strategy.decision import RECORD_BUDGET, record_size
from powerx_agent.strategy.evaluate import EventFacts, evaluate
from powerx_agent.strategy.library import build_library
from powerx_agent.strategy.lint import lint_text
from powerx_agent.strategy.paths import MAX_BRANCHES, MISSING, compile_path
from powerx_agent.strategy.templates import MAX_RENDERED_BYTES, compile_template, compile_variables, json_size
from powerx_agent.testing.fakes import FakeDeps, bus_event, fake_http

REPO = Path(__file__).resolve().parents[2]
_LINT_TABLE = (REPO / "docs" / "strategies.md").read_text().split("## 7. Lint codes")[1].split("\n## ")[0]
LINT_CODES = {code for cell in re.findall(r"^\| (`[^|]+`) \|", _LINT_TABLE, re.M)
              for code in re.findall(r"`([a-z_]+\.[a-z_]+)`", cell)}
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _nodes(doc: Any) -> int:
    count, stack = 0, [doc]
    while stack:
        item = stack.pop()
        count += 1
        stack.extend(item.values() if isinstance(item, dict) else item if isinstance(item, list) else ())
    return count


# ----------------------------------------------------------------------------------------- JSONPath
_PATH_TOKENS = [".a", ".b", "[0]", "[-1]", "[*]", ".*", "..", "..a", "[0:2]", "[::-1]", "['a','a']", "['a','b']",
                "[0,0]", "[0,1,0]", ".(a|a)", ".`parent`", ".`len`", ".`keys`", "[?(@.a > 1)]",
                "[?(@.a =~ \"(a+)+b\")]", "[?(@ == 'x')]", " * 2", " + $.a", ".`sub(/a/, b)`",
                ".`split(,, *, -1)`", ".`str()`", " & $.b", " where $.a", "[", "]", "(", ")", "'", "\"",
                "\\", "\u6f22", "\x00", "$", "@"]
paths = st.lists(st.sampled_from(_PATH_TOKENS), max_size=10).map(lambda parts: "$" + "".join(parts)) \
    | st.text(alphabet="$.[]*()?@'\"=~<>!&|,:-0123456789ab `", max_size=40)
docs = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "b", "x", ""]),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.sampled_from(["a", "b"]), kids,
                                                                              max_size=2), max_leaves=20)


@settings(FUZZ, max_examples=examples(400))
@given(expr=paths, doc=docs)
def test_given_any_path_text_when_compiled_then_a_path_code_or_a_path_whose_matches_stay_bounded(expr, doc) -> None:
    try:
        path = compile_path(expr, where="when.path")
    except StrategyError as exc:
        assert exc.code.startswith("path.") and exc.code in LINT_CODES, exc
        assert exc.where == "when.path"
        return
    found = path.get(doc)
    if found is not MISSING and not path.is_simple:
        assert isinstance(found, list)
        assert len(found) <= MAX_BRANCHES * _nodes(doc), (expr, len(found))


@pytest.mark.parametrize("expr", ["$.a" + "['b','b']" * 5, "$.a" + "[0,0]" * 5, "$.a" + ".(b|b)" * 5,
                                  "$.a[*].`parent`[*]", "$.a[?(@.b['c','c','c','c','c'][0,0,0,0] > 1)]"])
def test_given_path_whose_alternatives_multiply_when_compiled_then_too_complex(expr: str) -> None:
    # unions that repeat a value over 16 levels selected 65,536 copies of it in 1.5 s (2^24 at depth 24)
    with pytest.raises(StrategyError) as caught:
        compile_path(expr)
    assert caught.value.code == "path.too_complex"


def test_given_a_few_distinct_alternatives_when_compiled_then_accepted() -> None:
    assert compile_path("$.payload['a','b','c'].items[0,1]").get(
        {"payload": {"a": {"items": [1, 2]}, "c": {"items": [3]}}}) == [1, 2, 3]


# ----------------------------------------------------------------------------------------- templates
_TEMPLATE_TEXT = st.lists(st.sampled_from(["${a}", "${b}", "${owner}", "$${a}", "$$${a}", "${", "}", "${a.b}",
                                           "${ a }", "${}", "$", "x", "\u6f22", "${zz}", "${__class__}"]),
                          max_size=6).map("".join)
template_values = st.recursive(_TEMPLATE_TEXT | scalars, lambda kids: st.lists(kids, max_size=3)
                               | st.dictionaries(texts, kids, max_size=3), max_leaves=10)
render_values = json_values | st.sampled_from(["x" * 100_000, ["y" * 50_000] * 4, nested(30)])


@settings(FUZZ, max_examples=examples(300))
@given(value=template_values | st.builds(nested, st.integers(30, 40), _TEMPLATE_TEXT),
       a=render_values, b=render_values)
def test_given_any_template_when_compiled_and_rendered_then_a_template_code_or_a_bounded_value(value, a, b) -> None:
    try:
        template = compile_template(value, "input", known=frozenset({"a", "b", "owner"}))
    except StrategyError as exc:
        assert exc.code.startswith("template.") and exc.code in LINT_CODES, exc
        return
    try:
        rendered = template.render({"a": a, "b": b, "owner": "o@x"})
    except StrategyError as exc:
        assert exc.code == "template.too_large", exc
        assert template.size({"a": a, "b": b, "owner": "o@x"}) > MAX_RENDERED_BYTES
        return
    assert json_size(rendered, MAX_RENDERED_BYTES) <= MAX_RENDERED_BYTES


@settings(FUZZ, max_examples=examples(60))
@given(levels=st.integers(1, 12), repeat=st.integers(1, 8), size=st.sampled_from([1, 100, 10_000, 200_000]),
       shape=st.sampled_from(["text", "list"]))
def test_given_variables_that_repeat_each_other_when_rendered_then_refused_before_they_grow(
        levels, repeat, size, shape) -> None:
    # a: the event's value; v1 repeats a, v2 repeats v1, ...: repeat ** levels copies
    raw: dict[str, Any] = {"a": "$.payload.s"}
    previous = "a"
    for i in range(1, levels + 1):
        refs = ["${" + previous + "}"] * repeat
        raw[f"v{i}"] = "".join(refs) if shape == "text" else {"value": refs}
        previous = f"v{i}"
    variables = compile_variables(raw)
    expected = (size + 2) * repeat ** levels  # the last variable alone, at least
    try:
        out = variables.render({"payload": {"s": "x" * size}}, {})
    except StrategyError as exc:
        assert exc.code == "template.too_large"
        assert expected > MAX_RENDERED_BYTES // (2 * levels + 2)  # refused only when it would really grow
        return
    assert sum(json_size(v, MAX_RENDERED_BYTES) for v in out.values()) <= MAX_RENDERED_BYTES


# ----------------------------------------------------------------------------------------- strategy YAML
_OPERATORS = ["equals", "not_equals", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "prefix", "suffix",
              "contains", "matches", "regex", "between"]
_REGEXES = ["^a", "(a+)+b", "(a|aa)*c", "a{1000}{1000}", "(?<=a)b", "(a)\\1", "[", "x" * 600, ".*.*.*=.*"]
_SIMPLE_PATHS = ["$.payload.job.id", "$.payload.job.rows", "$.payload.s", "$.payload.items[*]", "$..id",
                 "$.payload.items[?(@.qty > 1)]", "$.context.actor", "$", "$.payload['a','b']"]


def _mostly(valid: Any, hostile: Any) -> Any:
    """``valid`` four times in five: lint must accept enough strategies for events to meet them."""
    return st.integers(0, 4).flatmap(lambda n: hostile if n == 4 else valid)


_VALID_OPERAND = {"equals": scalars.filter(lambda v: v == v), "not_equals": st.integers() | st.text(max_size=5),
                  "in": st.lists(st.integers() | st.text(max_size=5), min_size=1, max_size=3),
                  "not_in": st.lists(st.text(max_size=5), min_size=1, max_size=3), "gt": st.integers(),
                  "gte": st.floats(allow_nan=False, allow_infinity=False), "lt": st.integers(), "lte": st.integers(),
                  "exists": st.booleans(), "prefix": st.text(max_size=5), "suffix": st.text(max_size=5),
                  "contains": st.integers() | st.text(max_size=5), "matches": st.sampled_from(_REGEXES[:3])}


def _leaf(draw: Any) -> dict[str, Any]:
    operator = draw(_mostly(st.sampled_from(sorted(_VALID_OPERAND)), st.sampled_from(_OPERATORS)))
    valid = _VALID_OPERAND.get(operator, scalars)
    operand = draw(_mostly(valid, st.sampled_from(_REGEXES) | scalars | st.lists(scalars, max_size=2)))
    return {"path": draw(_mostly(st.sampled_from(_SIMPLE_PATHS), paths)), operator: operand}


@st.composite
def conditions(draw: Any, depth: int = 0) -> dict[str, Any]:
    if depth >= 3 or draw(st.integers(0, 2)) == 0:
        return _leaf(draw)
    kind = draw(st.sampled_from(["all", "any", "not"]))
    if kind == "not":
        return {"not": draw(conditions(depth + 1))}
    return {kind: draw(st.lists(conditions(depth + 1), min_size=draw(_mostly(st.just(1), st.just(0))), max_size=3))}


_MATCHERS = [{"prefix": "a"}, {"suffix": ".log"}, {"wildcard": "*a*a*a*a*b"}, {"anything-but": ["x"]},
             {"anything-but": {"wildcard": "*.*"}}, {"numeric": [">", 0, "<=", 5]}, {"exists": True},
             {"equals-ignore-case": "\u212aB"}, {"cidr": "10.0.0.0/24"}, "report", 5, None, True]
_BAD_MATCHERS = [{"wildcard": "a**b"}, {"numeric": [">", "x"]}, {"exists": "yes"}, {"cidr": "10.0.0.0/99"},
                 {"unknown": 1}, {"prefix": 5}]


@st.composite
def patterns(draw: Any) -> dict[str, Any]:
    field = draw(st.sampled_from(["s", "job", "items", "rows"]))
    matchers = draw(st.lists(_mostly(st.sampled_from(_MATCHERS), st.sampled_from(_BAD_MATCHERS) | scalars),
                             min_size=1, max_size=3))
    pattern: dict[str, Any] = {"detail": {"payload": {field: matchers}}}
    if draw(st.booleans()):
        pattern["$or"] = [{"source": ["powerx.plugins"]}, {"detail": {"tenant_id": [{"prefix": "ac"}]}}]
    return pattern


_VARIABLE_TEXT = st.lists(st.sampled_from(["${a}", "${b}", "${owner}", "$${a}", "x", "\u6f22", "${tenant}"]),
                          max_size=5).map("".join)
_GOOD_INPUT = st.recursive(_VARIABLE_TEXT | st.integers() | st.booleans(),
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids,
                                                                                     max_size=3), max_leaves=8)


@st.composite
def strategy_documents(draw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": draw(_mostly(st.just("fuzz-a"), st.sampled_from(["Fuzz", ""]) | texts)),
        "version": draw(_mostly(st.just(1), st.sampled_from([0, -1, "1", 10**40]))),
        "status": draw(_mostly(st.just("approved"), st.sampled_from(["draft", "retired", "yes"]))),
        "owner": "o@example.com",
        "on": {"event": draw(st.sampled_from(EVENT_TYPES[:2]))},
        "weight": draw(_mostly(st.integers(0, 100), st.sampled_from([-1, 1_000_001, 1.5]))),
        "flow": {"nodes": [{"id": "n", "plugin": "report-renderer",
                            "input": {"v": draw(_mostly(_GOOD_INPUT, template_values))}}]},
    }
    if draw(st.integers(0, 3)) == 0:
        doc["flow"]["nodes"][0]["when"] = draw(conditions())
    if draw(st.booleans()):
        doc["when"] = draw(conditions())
    elif draw(st.booleans()):
        doc["pattern"] = draw(patterns())
    variables = {"a": draw(_mostly(st.sampled_from(_SIMPLE_PATHS), paths)),
                 "b": draw(_mostly(_VARIABLE_TEXT.filter(lambda t: "${b}" not in t)
                                   | st.fixed_dictionaries({"path": st.sampled_from(_SIMPLE_PATHS), "default": scalars}),
                                   _TEMPLATE_TEXT | st.fixed_dictionaries({"path": paths, "default": scalars})))}
    if draw(st.integers(0, 9)) == 0:
        variables[draw(st.sampled_from(["tenant", "1x", "a b"]))] = "x"
    doc["variables"] = variables
    return doc


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _yaml(doc: dict[str, Any]) -> str | None:
    try:
        return yaml.dump(doc, Dumper=_NoAliases, allow_unicode=True, sort_keys=False, width=10_000)
    except (yaml.YAMLError, UnicodeEncodeError, ValueError):
        return None


hostile_payloads = st.dictionaries(st.sampled_from(["s", "job", "items", "rows", "id", "a", "b"]),
                                   json_values | st.just("x" * 200_000) | st.builds(nested, st.just(20)),
                                   max_size=4)


@settings(FUZZ, max_examples=examples(150))
@given(doc=strategy_documents(), payloads=st.lists(hostile_payloads, min_size=1, max_size=3),
       event_type=st.sampled_from(EVENT_TYPES[:2]))
def test_given_any_strategy_when_linted_then_documented_codes_and_if_accepted_it_evaluates_any_event(
        doc, payloads, event_type) -> None:
    text = _yaml(doc)
    if text is None:
        return
    findings = lint_text(text, "fuzz.yaml")
    assert {f.code for f in findings} <= LINT_CODES, [str(f) for f in findings]
    if any(f.severity == "error" for f in findings):
        return
    library = build_library([("fuzz.yaml", text)], "r-fuzz")
    for payload in payloads:
        detail = {"tenant_id": "acme", "event_id": "e-1", "idempotency_key": "k-1",
                  "occurred_at": "2026-11-28T10:00:00Z", "payload": payload}
        try:
            check_value(detail)
        except JsonLimitError:
            continue  # the envelope refuses it before any strategy sees it
        found = evaluate(library, EventFacts(event_type, "powerx.plugins", "acme", "e-1", "k-1", detail),
                         {"owner": "o@example.com"})
        assert found.decision.explained()["candidates"] is not None
        assert record_size(found.decision.to_dict()) <= RECORD_BUDGET
        try:
            _ = found.variables
        except StrategyError as exc:  # the matcher escalates it as input_too_large
            assert exc.code == "template.too_large"
        _ = found.when


# ----------------------------------------------------------------------------------------- the envelope on fakes
@pytest.fixture(scope="module")
def deps() -> FakeDeps:
    return FakeDeps.create()


_counter = iter(range(10**9))


@settings(FUZZ, max_examples=examples(200))
@given(data=st.data())
def test_given_hostile_events_when_ingested_on_fakes_then_defined_outcome_dlq_audit_metric_and_no_claim(
        deps, data) -> None:
    event = data.draw(events(f"u{next(_counter)}"))
    dlq = deps.queues.queues.setdefault(deps.settings.ingest_dlq_url, [])
    dlq_before, emf_before = len(dlq), len(deps.logs.events)
    keys_before = dict(deps.events.items)
    rejected_before = sum(1 for r in deps.audit.scan_all() if r["kind"] == "event.rejected")
    metrics = deps.metrics()
    try:
        result = Ingestor(deps, metrics).handle(event).to_dict()
    except RetryableError as exc:
        # an accepted event's key is in progress until a matcher finishes it (none runs here): the same
        # event again, within the lease, is handed back for Lambda to retry, with nothing written
        assert exc.code == "idempotency.in_progress", exc
        assert len(dlq) == dlq_before and deps.events.items == keys_before
        return
    metrics.flush()
    assert result["outcome"] in ("accepted", "duplicate", "rejected", "deferred"), result
    if result["outcome"] != "rejected":
        return
    assert result["code"] in _reliability_codes("Bus event (ingest)"), result
    assert len(dlq) == dlq_before + 1
    assert json.loads(dlq[-1]["Body"])["reason"]["code"] == result["code"]
    assert sum(1 for r in deps.audit.scan_all() if r["kind"] == "event.rejected") == rejected_before + 1
    if result["code"] != "idempotency.payload_conflict":
        assert deps.events.items == keys_before  # nothing claimed
    counted = [doc for doc in (json.loads(e["message"]) for e in deps.logs.events[emf_before:])
               if spec.METRICS["rejected"] in doc]
    assert len(counted) == 1 and counted[0]["code"] == result["code"], counted
    assert counted[0]["tenant"] in ("acme", "globex", "initech", UNREGISTERED_TENANT), counted[0]["tenant"]


def _reliability_codes(surface: str) -> set[str]:
    text = (REPO / "docs" / "reliability.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| {surface} |"))
    return set(re.findall(r"`([a-z_]+\.[a-z_]+)`", row))


# ----------------------------------------------------------------------------------------- a refused input on fakes
def test_given_variables_too_large_for_an_execution_when_matched_then_escalated_once_and_the_key_finished(
        tmp_path: Path) -> None:
    (tmp_path / "whole.yaml").write_text(
        "id: whole\nversion: 1\nstatus: approved\nowner: o@example.com\non: {event: plugin.job.completed}\n"
        "weight: 99\nvariables:\n  a: $.payload\n  b: '${a}${a}'\nflow:\n  nodes:\n    - {id: n, plugin: report-renderer}\n")
    deps = FakeDeps.create(strategies_dir=tmp_path)
    detail = {"tenant_id": "acme", "event_id": "e-big", "idempotency_key": "k-big",
              "occurred_at": "2026-11-28T10:00:00Z",
              "payload": {"job": {"id": "j-1", "type": "report"}, "note": "\u6f22" * 60_000}}  # 180 KB
    assert Ingestor(deps, deps.metrics()).handle(bus_event("plugin.job.completed", detail)).outcome == "accepted"
    (body,) = deps.queues.drain(deps.settings.match_queue_url)
    with fake_http() as http:
        result = Matcher(deps, deps.metrics()).handle(json.loads(body))
    assert [c["path"] for c in http.calls] == ["/ops/manual-review", "/notifications/agent-task"]
    assert result["outcome"] == "escalated", result
    assert deps.events.get("acme", "k-big")["status"] == "COMPLETED"
    (review,) = deps.workflows.open_reviews()
    assert review["reason"] == "input_too_large" and review["details"]["code"] == "template.too_large"
    assert deps.state_machines.executions == {}
