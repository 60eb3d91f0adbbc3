"""Strategy tests a CI can rely on (docs/strategies.md, "Testing strategies"): ``strategy test --expect``
and ``strategy test --suite``.

Fixtures come from two places: a strategy's own ``tests:`` (an expectation without ``strategy``
expects that strategy), and the files under ``<library>/tests/`` (each a mapping with a ``tests:``
list, every expectation naming its ``strategy`` or ``none``). Each event goes through the matcher's
own evaluation (:func:`powerx_agent.strategy.evaluate.evaluate`) and, given a tenant registry,
through the tenant checks ingest and the matcher apply (unknown or suspended tenant, event type or
plugin not allowed), so a fixture passes only when the engine would do what it says.

Results are reported per case and as a JUnit XML document for CI.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from powerx_agent.errors import AgentError, EventRejected
from powerx_agent.ingest.service import check_tenant_scope
from powerx_agent.json_limits import MAX_DEPTH, JsonLimitError
from powerx_agent.json_limits import loads as loads_bounded
from powerx_agent.ops.strategy import event_facts
from powerx_agent.strategy.dsl import StrategyTest
from powerx_agent.strategy.evaluate import Evaluation, EventFacts, evaluate
from powerx_agent.strategy.library import Library
from powerx_agent.strategy.loader import TESTS_FOLDER, strategy_files
from powerx_agent.strategy.yamlload import MAX_BYTES, load_yaml

MAX_EVENT_FILE_BYTES = 1024 * 1024
NONE = "none"
REGISTRY_BUILTINS = ("tenant_owner", "owner")
Tenants = Mapping[str, Mapping[str, Any]]
"""tenant id → registry record (``status``, ``owner``, ``allowed_event_types``, ``allowed_plugins``)."""


class FixtureFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tests: tuple[StrategyTest, ...] = Field(min_length=1, max_length=1000)


@dataclass(frozen=True)
class Case:
    test: StrategyTest
    source: str  # file (and strategy) the case comes from
    base: Path  # folder an ``event_file`` is relative to
    default_strategy: str | None = None  # the strategy whose own ``tests:`` hold the case

    @property
    def expected_strategy(self) -> str | None:
        return self.test.expect.strategy or self.default_strategy


@dataclass
class CaseResult:
    name: str
    source: str
    passed: bool
    failures: list[str] = field(default_factory=list)
    selected: str | None = None
    rejected: str | None = None
    seconds: float = 0.0
    skipped: str | None = None  # why the case could not run here (it is not a failure)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "passed": self.passed, "failures": self.failures,
                "skipped": self.skipped, "selected": self.selected, "rejected": self.rejected,
                "seconds": round(self.seconds, 6)}


def read_event(path: Path) -> dict[str, Any]:
    """One EventBridge event from a JSON file (bounded as ingest bounds an event)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_EVENT_FILE_BYTES + 1)
    except OSError as exc:
        raise AgentError(f"{path}: cannot read the event file ({exc.strerror or exc})", code="test.event_file") \
            from None
    if len(raw) > MAX_EVENT_FILE_BYTES:
        raise AgentError(f"{path} is larger than {MAX_EVENT_FILE_BYTES} bytes: an event file holds one EventBridge "
                         "event (at most 256 KiB)", code="test.event_file")
    try:
        event = loads_bounded(raw, root="", max_depth=MAX_DEPTH + 1)
    except JsonLimitError as exc:
        raise AgentError(f"{path}: {exc.message}", code="test.event_file") from None
    if not isinstance(event, dict) or "detail-type" not in event or "detail" not in event:
        raise AgentError(f"{path} must hold an EventBridge event with detail-type and detail", code="test.event_file")
    return event


# -- collecting --------------------------------------------------------------------------------------


def collect(library: Library, directory: Path) -> tuple[list[Case], list[str]]:
    """Every case of the library: the strategies' own ``tests:``, then ``<directory>/tests/**``; and
    the problems of fixture files that cannot be read (each ``file: message``)."""
    cases = [Case(test, f"{s.source} ({s.id} v{s.version})", Path(s.source).parent, s.id)
             for s in library.strategies for test in s.strategy.tests]
    problems: list[str] = []
    folder = directory / TESTS_FOLDER
    if folder.is_dir():
        for path in strategy_files(folder):
            found, problem = _fixture_file(path)
            cases += found
            if problem:
                problems.append(problem)
    return cases, problems


def _fixture_file(path: Path) -> tuple[list[Case], str | None]:
    try:
        if path.stat().st_size > MAX_BYTES:
            return [], f"{path}: larger than {MAX_BYTES} bytes"
        loaded = load_yaml(path.read_bytes(), str(path))
        fixtures = FixtureFile.model_validate(loaded.data)
    except AgentError as exc:
        return [], f"{path}: {exc.code}: {exc.message}"
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return [], f"{path}: test.invalid: {where}: {first.get('msg')}"
    except OSError as exc:
        return [], f"{path}: cannot read ({exc.strerror or exc})"
    missing = [t.name for t in fixtures.tests if not t.expect.strategy and not t.expect.rejected]
    if missing:
        return [], (f"{path}: test.invalid: a fixture under {TESTS_FOLDER}/ names the strategy it expects "
                    f"(expect.strategy: ID or {NONE}); missing in {', '.join(missing[:5])}")
    return [Case(t, str(path), path.parent) for t in fixtures.tests], None


# -- running ---------------------------------------------------------------------------------------


def screen(tenants: Tenants | None) -> Callable[[EventFacts], str | None]:
    """The ingest rejection code the registry makes of an event (None: accepted; no registry: no check)."""
    def check(facts: EventFacts) -> str | None:
        if tenants is None:
            return None
        try:
            check_tenant_scope(tenants.get(facts.tenant_id), facts.tenant_id, facts.event_type)
        except EventRejected as exc:
            return exc.code
        return None
    return check


def tenant_of(tenants: Tenants | None, tenant_id: str) -> Mapping[str, Any]:
    """The registry record the evaluation reads (``owner``); a placeholder owner offline."""
    if tenants is None:
        return {"owner": "<tenant owner>"}
    return tenants.get(tenant_id) or {}


def refused_plugins(found: Evaluation, tenant: Mapping[str, Any], tenants: Tenants | None) -> list[str]:
    """Plugins of the selected strategy the tenant may not use (the matcher escalates the event)."""
    if tenants is None or found.selected is None:
        return []
    allowed = tenant.get("allowed_plugins") or []
    return sorted({n.plugin for n in found.selected.strategy.flow.nodes
                   if n.plugin and "*" not in allowed and n.plugin not in allowed})


def run_case(library: Library, case: Case, tenants: Tenants | None = None) -> CaseResult:
    started = time.perf_counter()
    result = CaseResult(case.test.name, case.source, passed=False)
    try:
        event = case.test.event if case.test.event is not None else read_event(case.base / str(case.test.event_file))
        facts = event_facts(event)
    except AgentError as exc:
        result.failures.append(f"the event cannot be read: {exc.code}: {exc.message}")
        result.seconds = time.perf_counter() - started
        return result
    expect = case.test.expect
    if expect.rejected and tenants is None:
        result.passed, result.skipped = True, "expects an ingest rejection: give the tenant registry (--tenants)"
        return result
    result.rejected = screen(tenants)(facts)
    if result.rejected or expect.rejected:
        if result.rejected != expect.rejected:
            result.failures.append(f"expected {'rejection ' + expect.rejected if expect.rejected else 'acceptance'}"
                                   f", ingest would {'reject it: ' + result.rejected if result.rejected else 'accept it'}")
        result.passed = not result.failures
        result.seconds = time.perf_counter() - started
        return result
    tenant = tenant_of(tenants, facts.tenant_id)
    found = evaluate(library, facts, tenant)
    selected = found.selected
    result.selected = f"{selected.id}@v{selected.version}" if selected else None
    wanted = case.expected_strategy
    if wanted == NONE:
        if selected is not None:
            result.failures.append(f"expected no strategy, got {result.selected} ({found.decision.reason()})")
    elif wanted is not None and (selected is None or selected.id != wanted):
        result.failures.append(f"expected {wanted}, got {result.selected or 'none'} ({found.decision.reason()})")
    elif selected is not None:
        if expect.version is not None and selected.version != expect.version:
            result.failures.append(f"expected version {expect.version}, got {selected.version}")
        refused = refused_plugins(found, tenant, tenants)
        if refused:
            result.failures.append(f"the tenant may not use plugin(s) {', '.join(refused)}: the matcher escalates "
                                   "the event (plugin_not_allowed)")
        variables = {**found.builtins, **found.variables}
        for name, value in expect.variables.items():
            if name in REGISTRY_BUILTINS and tenants is None:
                continue  # the tenant's owner is known only with the registry (--tenants)
            if name not in variables:
                result.failures.append(f"variable {name!r} is not defined")
            elif variables[name] != value:
                result.failures.append(f"variable {name!r}: expected {value!r}, got {variables[name]!r}")
        for node, runs in expect.when.items():
            if node not in found.when:
                result.failures.append(f"node {node!r} is not in the flow")
            elif found.when[node] != runs:
                result.failures.append(f"node {node!r}: expected it to {'run' if runs else 'be skipped'}, it "
                                       f"{'runs' if found.when[node] else 'is skipped'}")
    result.passed = not result.failures
    result.seconds = time.perf_counter() - started
    return result


def run_suite(library: Library, directory: Path, tenants: Tenants | None = None
              ) -> tuple[list[CaseResult], list[str]]:
    cases, problems = collect(library, directory)
    return [run_case(library, case, tenants) for case in cases], problems


def junit_xml(results: list[CaseResult], problems: list[str], suite: str = "strategies") -> str:
    """A JUnit XML report (one ``testcase`` per fixture, classname = its file; a fixture file that
    cannot be read is an ``error``), as CI systems read it."""
    failures = sum(1 for r in results if not r.passed)
    root = ElementTree.Element("testsuites")
    node = ElementTree.SubElement(root, "testsuite", name=suite, tests=str(len(results) + len(problems)),
                                  failures=str(failures), errors=str(len(problems)),
                                  skipped=str(sum(1 for r in results if r.skipped)),
                                  time=f"{sum(r.seconds for r in results):.6f}")
    for result in results:
        case = ElementTree.SubElement(node, "testcase", classname=result.source, name=result.name,
                                      time=f"{result.seconds:.6f}")
        if result.skipped:
            ElementTree.SubElement(case, "skipped", message=result.skipped)
        elif not result.passed:
            failure = ElementTree.SubElement(case, "failure", message=result.failures[0][:500])
            failure.text = "\n".join(result.failures)
    for problem in problems:
        case = ElementTree.SubElement(node, "testcase", classname=problem.split(":", 1)[0], name="fixture file")
        error = ElementTree.SubElement(case, "error", message=problem[:500])
        error.text = problem
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# -- the tenant registry ---------------------------------------------------------------------------

DEPLOYED = "deployed"


def load_registry(path: Path) -> dict[str, dict[str, Any]]:
    """A tenant registry file (``tenants:`` list, as ``config/tenants.yaml``) read with the bounded YAML
    reader: tenant id → record."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise AgentError(f"{path} is larger than {MAX_BYTES} bytes", code="tenants.invalid")
        data = load_yaml(path.read_bytes(), str(path)).data
    except OSError as exc:
        raise AgentError(f"cannot read the tenant registry {path}: {exc.strerror or exc}", code="tenants.invalid") \
            from None
    entries = data.get("tenants") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("tenant_id"), str)
                                                for e in entries):
        raise AgentError(f"{path}: a tenant registry is a mapping with a 'tenants' list, each entry with a "
                         "tenant_id", code="tenants.invalid")
    return {e["tenant_id"]: e for e in entries}


class DeployedTenants(Mapping[str, Mapping[str, Any]]):
    """The deployment's ``agent_tenants``, read one tenant at a time (as ingest reads it)."""

    def __init__(self, get: Callable[[str], dict[str, Any] | None]) -> None:
        self._get = get
        self._seen: dict[str, dict[str, Any] | None] = {}

    def __getitem__(self, tenant_id: str) -> Mapping[str, Any]:
        if tenant_id not in self._seen:
            self._seen[tenant_id] = self._get(tenant_id)
        found = self._seen[tenant_id]
        if found is None:
            raise KeyError(tenant_id)
        return found

    def __iter__(self) -> Any:
        return iter([k for k, v in self._seen.items() if v is not None])

    def __len__(self) -> int:
        return sum(1 for v in self._seen.values() if v is not None)
