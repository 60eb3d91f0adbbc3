"""Loader and lint: compiled strategies, positioned findings, cross-file checks, bad inputs."""

from __future__ import annotations

import importlib.util
import time
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerx_agent.errors import StrategyError
from powerx_agent.strategy.lint import has_errors, lint_directory, lint_text
from powerx_agent.strategy.loader import (
    CompiledStrategy,
    Finding,
    load_directory,
    load_strategy_text,
)

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ROOT / "strategies"
BAD = ROOT / "tests" / "bad_inputs" / "strategies"

MINIMAL = """\
id: minimal
version: 1
status: approved
owner: ops@example.com
on: {event: test.event}
flow:
  nodes:
    - {id: a, plugin: p}
"""


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


# --- the shipped library -------------------------------------------------------------------------


def test_given_shipped_strategies_when_linted_then_no_findings() -> None:
    assert lint_directory(STRATEGIES) == []


def test_given_shipped_strategies_when_loaded_then_everything_is_compiled() -> None:
    strategies, findings = load_directory(STRATEGIES)
    assert findings == []
    by_id = {s.id: s for s in strategies}
    report = by_id["report-on-job-completed"]
    assert isinstance(report, CompiledStrategy)
    assert report.source.endswith("report-on-job-completed.yaml")
    assert report.event_types == ("plugin.job.completed",) and report.weight == 100 and report.version == 3
    assert set(report.node_inputs) == {"render", "archive", "tell-owner", "approve"}
    assert set(report.notify_targets) == {"tell-owner"} and set(report.node_whens) == {"approve"}
    assert report.key_positions["id"] == (2, 1)
    doc = {"event_type": "plugin.job.completed",
           "payload": {"job": {"id": "42", "type": "report", "rows": 1200}}}
    assert report.condition is not None and report.condition.evaluate(doc) is None
    builtins = {"tenant": "acme", "event_id": "e", "tenant_owner": "owner@acme.example",
                "strategy_owner": "automation@example.com", "owner": "owner@acme.example",
                "event_type": "plugin.job.completed", "idempotency_key": "k"}
    variables = report.variables.render(doc, builtins)
    assert variables == {"job_id": "42", "rows": 1200, "report_name": "daily-42"}
    scope = {**builtins, **variables}
    assert report.node_inputs["render"].render(scope) == {"job": "42", "name": "daily-42", "rows": 1200}
    assert report.notify_targets["tell-owner"].render(scope) == "owner@acme.example"  # the tenant's owner
    assert report.node_whens["approve"].evaluate(doc) is not None
    ticket = by_id["ticket-on-job-failed"]
    # not_equals on a missing path is True: a job without "retriable" opens a ticket
    assert ticket.condition.evaluate({"payload": {"job": {"id": "1"}}}) is None
    assert ticket.condition.evaluate({"payload": {"job": {"retriable": True}}}) is not None


def test_given_on_key_when_loaded_then_it_is_the_trigger_not_a_boolean() -> None:
    compiled, findings = load_strategy_text(MINIMAL, "m.yaml")
    assert findings == [] and compiled is not None
    assert compiled.strategy.on.event == ("test.event",)


# --- findings --------------------------------------------------------------------------------------


def test_given_finding_when_formatted_then_file_line_col_code_message() -> None:
    finding = Finding("s/x.yaml", 3, 7, "schema.unknown_key", "unknown key 'x'")
    assert str(finding) == "s/x.yaml:3:7: schema.unknown_key unknown key 'x'"
    assert finding.to_dict()["severity"] == "error"


def test_given_unknown_key_when_loaded_then_finding_points_at_the_key_and_lists_allowed_keys() -> None:
    text = MINIMAL.replace("    - {id: a, plugin: p}", "    - id: a\n      plugin: p\n      retires: 3")
    compiled, findings = load_strategy_text(text, "s.yaml")
    assert compiled is None
    assert [(f.line, f.col, f.code) for f in findings] == [(10, 7, "schema.unknown_key")]
    assert "retires" in findings[0].message and "retry" in findings[0].message


def test_given_several_schema_problems_when_loaded_then_each_is_reported_at_its_line() -> None:
    text = MINIMAL.replace("version: 1", "version: 0").replace("status: approved", "status: live")
    _, findings = load_strategy_text(text, "s.yaml")
    assert [(f.line, f.code) for f in findings] == [(2, "schema.invalid"), (3, "schema.invalid")]
    assert "version" in findings[0].message and "live" in findings[1].message


def test_given_missing_required_key_when_loaded_then_schema_invalid_names_it() -> None:
    _, findings = load_strategy_text(MINIMAL.replace("owner: ops@example.com\n", ""), "s.yaml")
    assert [f.code for f in findings] == ["schema.invalid"]
    assert "owner" in findings[0].message


def test_given_model_validator_error_when_loaded_then_points_at_the_node() -> None:
    text = MINIMAL.replace("    - {id: a, plugin: p}", "    - {id: a, plugin: p, notify: {to: x, template: t}}")
    _, findings = load_strategy_text(text, "s.yaml")
    assert [(f.line, f.col, f.code) for f in findings] == [(8, 7, "schema.invalid")]
    assert "exactly one of plugin" in findings[0].message


def test_given_schema_errors_and_bad_condition_when_loaded_then_both_reported() -> None:
    text = MINIMAL.replace("version: 1", "version: x") + "when: {path: $.x, gtt: 1}\n"
    _, findings = load_strategy_text(text, "s.yaml")
    assert {f.code for f in findings} == {"schema.invalid", "condition.unknown_operator"}


def test_given_several_independent_problems_when_loaded_then_all_reported() -> None:
    text = MINIMAL.replace("    - {id: a, plugin: p}",
                           "    - {id: a, plugin: p, input: {x: '${nope}'}, when: {path: $.x, matches: '(?=a)'}}\n"
                           "    - {id: b, notify: {to: '${who}', template: t}}") + "when: {path: $.y, in: 3}\n"
    _, findings = load_strategy_text(text, "s.yaml")
    assert sorted(f.code for f in findings) == ["condition.bad_regex", "condition.bad_value",
                                                 "template.unknown_name", "template.unknown_name"]


def test_given_builtins_and_variables_when_templates_use_them_then_no_findings() -> None:
    text = MINIMAL.replace("    - {id: a, plugin: p}",
                           "    - {id: a, plugin: p, input: {t: '${tenant}', e: '${event_id}', o: '${tenant_owner}',"
                           " s: '${strategy_owner}', y: '${event_type}', k: '${idempotency_key}', v: '${v}'}}")
    compiled, findings = load_strategy_text(text + "variables: {v: $.v}\n", "s.yaml")
    assert findings == [] and compiled is not None


def test_given_the_ambiguous_owner_when_linted_then_a_warning_at_each_use_names_both_builtins() -> None:
    text = MINIMAL.replace("    - {id: a, plugin: p}",
                           "    - {id: a, plugin: p, input: {o: '${owner}'}}\n"
                           "    - {id: b, notify: {to: '${owner}', template: t}}") + "variables: {v: 'by ${owner}'}\n"
    compiled, findings = load_strategy_text(text, "s.yaml")
    assert compiled is not None  # an alias of tenant_owner: it still loads and runs
    assert [(f.code, f.severity) for f in findings] == [("template.ambiguous_owner", "warning")] * 3
    assert all("${tenant_owner}" in f.message and "${strategy_owner}" in f.message for f in findings)


def test_given_yaml_error_when_loaded_then_single_positioned_finding() -> None:
    compiled, findings = load_strategy_text(MINIMAL + "weight: 1\nweight: 2\n", "s.yaml")
    assert compiled is None
    assert [str(f) for f in findings] == [
        "s.yaml:10:1: yaml.duplicate_key key 'weight' appears twice in the same mapping (first at line 9)"]


@pytest.mark.skipif(not _has_module("powerx_agent.strategy.pattern"), reason="pattern compiler not present")
def test_given_pattern_strategy_when_loaded_then_pattern_is_compiled() -> None:
    text = MINIMAL + "pattern: {source: [powerx.plugins], detail: {payload: {job: {type: [report]}}}}\n"
    compiled, findings = load_strategy_text(text, "s.yaml")
    assert findings == [] and compiled is not None
    assert compiled.pattern is not None and compiled.condition is None


@pytest.mark.skipif(not _has_module("powerx_agent.taskflow.builder"), reason="taskflow builder not present")
def test_given_cycle_when_loaded_then_flow_finding_at_the_node_line() -> None:
    text = MINIMAL.replace("    - {id: a, plugin: p}",
                           "    - {id: a, plugin: p}\n    - {id: b, plugin: p, after: [c]}\n"
                           "    - {id: c, plugin: p, after: [b]}")
    compiled, findings = load_strategy_text(text, "s.yaml")
    assert compiled is None
    assert [(f.line, f.code) for f in findings] == [(9, "flow.cycle")]


# --- directories and cross-file checks ---------------------------------------------------------------


def _write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)


def test_given_duplicate_id_and_version_when_directory_loaded_then_error_and_first_kept(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", MINIMAL)
    _write(tmp_path, "b.yml", MINIMAL)
    _write(tmp_path, "c.yaml", MINIMAL.replace("version: 1", "version: 2"))
    strategies, findings = load_directory(tmp_path)
    assert [(s.source.rsplit("/", 1)[-1], s.version) for s in strategies] == [("a.yaml", 1), ("c.yaml", 2)]
    assert [(Path(f.source).name, f.line, f.code) for f in findings] == [("b.yml", 1, "strategy.duplicate_id")]


def _tie(sid: str, weight: int = 5, tenants: str = '["*"]', event: str = "e.x", status: str = "approved") -> str:
    return (MINIMAL.replace("id: minimal", f"id: {sid}").replace("test.event", event)
            .replace("status: approved", f"status: {status}") + f"weight: {weight}\ntenants: {tenants}\n")


def test_given_same_weight_overlapping_strategies_when_loaded_then_weight_tie_warning(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", _tie("a"))
    _write(tmp_path, "b.yaml", _tie("b", tenants="[acme]"))
    strategies, findings = load_directory(tmp_path)
    assert len(strategies) == 2
    assert [(Path(f.source).name, f.line, f.code, f.severity) for f in findings] == [
        ("b.yaml", 9, "strategy.weight_tie", "warning")]
    assert "'a'" in findings[0].message


@pytest.mark.parametrize("other", [
    _tie("b", weight=6), _tie("b", tenants="[globex]").replace("e.x", "e.y"), _tie("b", event="e.y"),
    _tie("b", status="draft"),
])
def test_given_strategies_that_cannot_tie_when_loaded_then_no_warning(tmp_path: Path, other: str) -> None:
    _write(tmp_path, "a.yaml", _tie("a", tenants="[acme]"))
    _write(tmp_path, "b.yaml", other)
    assert load_directory(tmp_path)[1] == []


def test_given_disjoint_tenants_when_loaded_then_no_tie(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", _tie("a", tenants="[acme]"))
    _write(tmp_path, "b.yaml", _tie("b", tenants="[globex]"))
    assert load_directory(tmp_path)[1] == []


def test_given_nested_and_hidden_files_when_loaded_then_nested_included_hidden_skipped(tmp_path: Path) -> None:
    _write(tmp_path / "team", "x.yaml", MINIMAL.replace("id: minimal", "id: nested"))
    _write(tmp_path / ".git", "y.yaml", "garbage: [")
    _write(tmp_path, "notes.txt", "not a strategy")
    strategies, findings = load_directory(tmp_path)
    assert [s.id for s in strategies] == ["nested"] and findings == []


def test_given_file_over_the_limit_when_directory_loaded_then_too_large_without_parsing(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_bytes(b"# " + b"x" * (2 * 1024 * 1024) + b"\n")
    start = time.perf_counter()
    findings = lint_directory(tmp_path)
    assert [f.code for f in findings] == ["yaml.too_large"]
    assert time.perf_counter() - start < 1.0


def test_given_missing_directory_when_linted_then_library_not_found(tmp_path: Path) -> None:
    with pytest.raises(StrategyError) as info:
        lint_directory(tmp_path / "nope")
    assert info.value.code == "library.not_found"


def test_given_single_file_path_when_linted_then_that_file_is_linted() -> None:
    assert lint_directory(STRATEGIES / "ticket-on-job-failed.yaml") == []


def test_given_findings_in_several_files_when_linted_then_sorted_by_source_line_col(tmp_path: Path) -> None:
    _write(tmp_path, "b.yaml", MINIMAL + "x: 1\ny: 2\n")
    _write(tmp_path, "a.yaml", MINIMAL + "z: 1\n")
    findings = lint_directory(tmp_path)
    assert [(Path(f.source).name, f.line) for f in findings] == [("a.yaml", 9), ("b.yaml", 9), ("b.yaml", 10)]
    assert has_errors(findings)


# --- bad inputs: one file per problem, "# expect: CODE" on the first line ------------------------------

NEEDS = {"flow.": "powerx_agent.taskflow.builder", "pattern.": "powerx_agent.strategy.pattern"}


def _expected(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8")
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: CODE'"
    return first[len("# expect: "):].split()[0]


@lru_cache(maxsize=1)
def _bad_findings() -> tuple[Finding, ...]:
    return tuple(lint_directory(BAD))


BAD_FILES = sorted(BAD.glob("*.yaml"))


def test_given_bad_inputs_directory_when_listed_then_it_holds_many_cases() -> None:
    assert len(BAD_FILES) >= 30


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.name for p in BAD_FILES])
def test_given_bad_strategy_file_when_linted_then_expected_code_reported_at_a_real_position(path: Path) -> None:
    expected = _expected(path)
    for prefix, module in NEEDS.items():
        if expected.startswith(prefix) and not _has_module(module):
            pytest.skip(f"{module} not present")
    start = time.perf_counter()
    findings = [f for f in _bad_findings() if Path(f.source).name == path.name]
    alone = lint_directory(path)
    assert time.perf_counter() - start < 2.0
    lines = path.read_bytes().count(b"\n") + 1
    for finding in findings:
        assert 1 <= finding.line <= lines and finding.col >= 1
        assert finding.message and str(finding).startswith(f"{finding.source}:{finding.line}:{finding.col}: ")
    if expected == "none":
        assert not has_errors(findings) and not has_errors(alone)
        return
    assert expected in {f.code for f in findings}, [str(f) for f in findings]
    if not expected.startswith("strategy."):  # cross-file checks need the partner file
        assert expected in {f.code for f in alone}


# --- robustness: arbitrary input never raises -----------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300))
def test_given_arbitrary_bytes_when_loaded_then_findings_never_exceptions(data: bytes) -> None:
    compiled, findings = load_strategy_text(data, "fuzz.yaml")
    assert compiled is None or findings == [] or not has_errors(findings)
    assert all(isinstance(f, Finding) for f in findings)


_report = (STRATEGIES / "report-on-job-completed.yaml").read_text()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=st.integers(0, len(_report) - 1), length=st.integers(1, 40),
       insert=st.sampled_from(["", "\t", "&a ", "*a", "${", "]", ": ", "\n- ", "True", "{", "'", "\x00", "é"]))
def test_given_mutated_valid_strategy_when_loaded_then_findings_never_exceptions(start, length, insert) -> None:
    text = _report[:start] + insert + _report[start + length:]
    compiled, findings = load_strategy_text(text, "mutated.yaml")
    assert (compiled is None) == has_errors(findings)
    assert all(f.line >= 1 and f.col >= 1 for f in findings)


def test_given_text_when_lint_text_then_same_findings_as_loader() -> None:
    assert lint_text(MINIMAL, "m.yaml") == []
    assert [f.code for f in lint_text(MINIMAL + "x: 1\n", "m.yaml")] == ["schema.unknown_key"]
