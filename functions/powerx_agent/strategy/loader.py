"""Load strategy files into compiled strategies, with a positioned finding for every problem.

``load_strategy_text`` runs, for one file: the safe YAML reader (:mod:`.yamlload`), the strict
pydantic models (:mod:`.dsl`), the condition compiler (``when`` and every node ``when``), the
EventBridge pattern compiler (``pattern``), the variable and template compilers (node ``input``,
``notify.to``; unknown names are errors) and the taskflow checks (cycles, unknown ``after``
targets, ... from :func:`powerx_agent.taskflow.builder.flow_problems`). It collects every problem
it can instead of stopping at the first; a strategy with any error-severity finding is not
returned.

``load_directory`` loads every ``*.yaml``/``*.yml`` under a directory (recursively, sorted by
path, hidden files and directories skipped) and adds the cross-file checks: duplicate
``(id, version)`` (error, the first file in path order is kept) and weight ties between approved
strategies that could match the same event (warning).
"""

from __future__ import annotations

import functools
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from powerx_agent import spec
from powerx_agent.errors import StrategyError, TaskflowError
from powerx_agent.strategy.conditions import Condition, _loc, compile_condition
from powerx_agent.strategy.dsl import Strategy
from powerx_agent.strategy.pattern import compile_pattern
from powerx_agent.strategy.templates import BUILTINS, Template, Variables, compile_template, compile_variables
from powerx_agent.strategy.yamlload import MAX_BYTES, Loaded, load_yaml
from powerx_agent.taskflow.asl import FunctionArns, compile_flow
from powerx_agent.taskflow.builder import flow_problems

Severity = Literal["error", "warning"]
STRATEGY_SUFFIXES = (".yaml", ".yml")
TESTS_FOLDER = "tests"
"""``<library>/tests/``: strategy test fixtures (``tests:`` lists), run by ``strategy test --suite``."""


@dataclass(frozen=True)
class Finding:
    """One lint finding: ``source:line:col: CODE message`` (line and col are 1-based)."""

    source: str
    line: int
    col: int
    code: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.col}: {self.code} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "col": self.col, "code": self.code,
                "message": self.message, "severity": self.severity}

    @property
    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.source, self.line, self.col, self.code, self.message)


@dataclass(frozen=True)
class CompiledStrategy:
    """A validated strategy with everything compiled once: ready for the matcher."""

    strategy: Strategy
    source: str
    condition: Condition | None
    pattern: Any | None
    variables: Variables
    node_inputs: dict[str, Template]
    node_whens: dict[str, Condition]
    notify_targets: dict[str, Template]
    key_positions: Mapping[str, tuple[int, int]] = field(default_factory=dict, repr=False, compare=False)
    """(line, col) of each top-level key in the source file (for cross-file findings)."""
    flow_template: Any | None = field(default=None, repr=False, compare=False)
    """The flow compiled once when a library artifact was built (a :class:`~powerx_agent.taskflow.asl.
    FlowTemplate`), or None: the matcher then compiles the flow itself."""

    def full(self) -> CompiledStrategy:
        """This strategy, compiled (a library artifact's members compile on first use)."""
        return self

    @property
    def id(self) -> str:
        return self.strategy.id

    @property
    def version(self) -> int:
        return self.strategy.version

    @property
    def weight(self) -> int:
        return self.strategy.weight

    @property
    def event_types(self) -> tuple[str, ...]:
        return self.strategy.on.event

    @property
    def status(self) -> str:
        return self.strategy.status

    @property
    def tenants(self) -> tuple[str, ...]:
        return self.strategy.tenants

    @property
    def key(self) -> str:
        return self.strategy.key


# --- one file ----------------------------------------------------------------------------------


class _Collector:
    def __init__(self, source: str, loaded: Loaded | None) -> None:
        self.source = source
        self.loaded = loaded
        self.findings: list[Finding] = []

    def at(self, path: tuple, code: str, message: str, severity: Severity = "error") -> None:
        line, col = self.loaded.position(path) if self.loaded is not None else (1, 1)
        self.findings.append(Finding(self.source, line, col, code, message, severity))

    def error(self, exc: StrategyError, fallback: tuple) -> None:
        loc = exc.details.get("loc") if isinstance(exc.details.get("loc"), tuple) else None
        if loc is None and exc.where and not exc.where.startswith(self.source + ":"):
            loc = _loc(exc.where)
        self.at(loc if loc else fallback, exc.code, exc.message)

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)


def load_strategy_text(text: str | bytes, source: str) -> tuple[CompiledStrategy | None, list[Finding]]:
    """Load and compile one strategy file. Never raises for bad input: problems are findings."""
    try:
        loaded = load_yaml(text, source)
    except StrategyError as exc:
        line = int(exc.details.get("line", 1))
        col = int(exc.details.get("col", 1))
        return None, [Finding(source, line, col, exc.code, exc.message)]
    out = _Collector(source, loaded)
    data = loaded.data
    if not isinstance(data, dict):
        kind = "an empty file" if data is None else f"a {type(data).__name__}"
        out.at((), "schema.invalid", f"a strategy file is a mapping (id, version, on, flow, ...), found {kind}")
        return None, out.findings
    try:
        strategy = Strategy.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for error in errors:
            if error.get("type") == "too_short" and _has_nested_error(errors, tuple(error.get("loc", ()))):
                continue  # a list emptied by an invalid item: the item's error says it all
            _schema_finding(out, error, data)
        _compile_parts_from_raw(out, data)
        return None, out.findings

    parts = _compile_parts(strategy, out.error)
    _flow_findings(out, strategy)
    if parts is not None:
        _owner_findings(out, strategy, parts["variables"], parts["node_inputs"], parts["notify_targets"])

    if out.has_errors or parts is None:
        return None, out.findings
    top = {key: loaded.positions[(key,)] for key in data if (key,) in loaded.positions}
    return CompiledStrategy(strategy=strategy, source=source, **parts, key_positions=top), out.findings


def compile_checked(strategy: Strategy, source: str, condition: Condition | None = None,
                    pattern: Any | None = None) -> CompiledStrategy:
    """Compile a strategy that was checked before (a library artifact's model, validated again):
    raises the first :class:`StrategyError` instead of collecting findings. ``condition`` and
    ``pattern``, when given, were compiled from this strategy's ``when``/``pattern`` already."""

    def fail(exc: StrategyError, fallback: tuple) -> None:
        raise exc

    parts = _compile_parts(strategy, fail, condition=condition, pattern=pattern)
    assert parts is not None  # any problem raised
    return CompiledStrategy(strategy=strategy, source=source, **parts)


def _compile_parts(strategy: Strategy, on_error: Callable[[StrategyError, tuple], None], *,
                   condition: Condition | None = None, pattern: Any | None = None) -> dict[str, Any] | None:
    """Conditions, pattern, variables and templates of a validated strategy; every problem goes to
    ``on_error(exc, location)``. None when the variables do not compile."""
    if condition is None and strategy.when is not None:
        try:
            condition = compile_condition(strategy.when, "when")
        except StrategyError as exc:
            on_error(exc, ("when",))
    if pattern is None and strategy.pattern is not None:
        try:
            pattern = compile_pattern(strategy.pattern, "pattern")
        except StrategyError as exc:
            on_error(exc, ("pattern",))
    try:
        variables = compile_variables(strategy.variables, BUILTINS, "variables")
        known = BUILTINS | frozenset(variables.names)
    except StrategyError as exc:
        on_error(exc, ("variables",))
        variables, known = None, BUILTINS | frozenset(k for k in strategy.variables if isinstance(k, str))
    node_inputs: dict[str, Template] = {}
    notify_targets: dict[str, Template] = {}
    node_whens: dict[str, Condition] = {}
    for index, node in enumerate(strategy.flow.nodes):
        base = f"flow.nodes[{index}]"
        try:
            node_inputs[node.id] = compile_template(node.input, f"{base}.input", known)
        except StrategyError as exc:
            on_error(exc, ("flow", "nodes", index, "input"))
        if node.notify is not None:
            try:
                notify_targets[node.id] = compile_template(node.notify.to, f"{base}.notify.to", known)
            except StrategyError as exc:
                on_error(exc, ("flow", "nodes", index, "notify", "to"))
        if node.when is not None:
            try:
                node_whens[node.id] = compile_condition(node.when, f"{base}.when")
            except StrategyError as exc:
                on_error(exc, ("flow", "nodes", index, "when"))
    if variables is None:
        return None
    return {"condition": condition, "pattern": pattern, "variables": variables, "node_inputs": node_inputs,
            "node_whens": node_whens, "notify_targets": notify_targets}


def _owner_findings(out: _Collector, strategy: Strategy, variables: Variables, node_inputs: dict[str, Template],
                    notify_targets: dict[str, Template]) -> None:
    """``${owner}`` (no variable of that name) is the tenant's owner, which authors have taken for the
    strategy's ``owner``: a warning at each use, naming the two unambiguous builtins."""
    uses: list[tuple] = [("variables", name) for name in variables.names if "owner" in variables.dependencies(name)]
    for index, node in enumerate(strategy.flow.nodes):
        if node.id in node_inputs and "owner" in node_inputs[node.id].names:
            uses.append(("flow", "nodes", index, "input"))
        if node.id in notify_targets and "owner" in notify_targets[node.id].names:
            uses.append(("flow", "nodes", index, "notify", "to"))
    for path in uses:
        out.at(path, "template.ambiguous_owner", "${owner} is the tenant's owner (tenant registry), not this "
               f"strategy's owner ({strategy.owner}): write ${{tenant_owner}} for the tenant's owner or "
               "${strategy_owner} for the strategy's", "warning")


def _compile_parts_from_raw(out: _Collector, data: dict) -> None:
    """After schema errors, still report condition problems (they are independent of the models)."""
    when = data.get("when")
    if isinstance(when, dict):
        try:
            compile_condition(when, "when")
        except StrategyError as exc:
            out.error(exc, ("when",))
    flow = data.get("flow")
    nodes = flow.get("nodes") if isinstance(flow, dict) else None
    if isinstance(nodes, list):
        for index, node in enumerate(nodes):
            if isinstance(node, dict) and isinstance(node.get("when"), dict):
                try:
                    compile_condition(node["when"], f"flow.nodes[{index}].when")
                except StrategyError as exc:
                    out.error(exc, ("flow", "nodes", index, "when"))


def _flow_findings(out: _Collector, strategy: Strategy) -> None:
    index_of = {node.id: i for i, node in enumerate(strategy.flow.nodes)}
    for problem in flow_problems(strategy.flow):
        details = getattr(problem, "details", None) or {}
        node = details.get("node")
        path: tuple = ("flow", "nodes")
        if node in index_of:
            i = index_of[node]
            path = ("flow", "nodes", i, "id")
            target = details.get("target", details.get("after"))
            after = strategy.flow.nodes[i].after
            if isinstance(target, str) and target in after:
                path = ("flow", "nodes", i, "after", after.index(target))
        severity = details.get("severity", getattr(problem, "severity", "error"))
        if severity not in ("error", "warning"):
            severity = "error"
        out.at(path, getattr(problem, "code", "taskflow.invalid"),
               getattr(problem, "message", str(problem)), severity)
        if severity == "error":
            return
    _compile_findings(out, strategy)


@functools.cache
def _lint_arns() -> FunctionArns:
    """Placeholder function ARNs of the shape the stack's have (the compiled size depends on them)."""
    return FunctionArns(**{key: f"arn:aws:lambda:us-east-1:000000000000:function:{spec.FUNCTIONS_BY_KEY[fn].name}"
                           for key, fn in (("plugin", "node_plugin"), ("notify", "node_notify"),
                                           ("review", "node_review"), ("workflow", "workflow"))})


def _compile_findings(out: _Collector, strategy: Strategy) -> None:
    """Compile the flow once: limits (definition size, history events, Express duration, ...) that
    only the compiler can check become lint errors here, never failures in the matcher."""
    try:
        compile_flow(strategy, _lint_arns())
    except TaskflowError as exc:
        where = tuple(int(p) if p.isdigit() else p for p in (exc.where or "flow").replace("[", ".").replace("]", "")
                      .split(".") if p)
        out.at(where if where and where[0] == "flow" else ("flow",), exc.code, exc.message, "error")


# --- pydantic errors → findings ------------------------------------------------------------------


def _loc_text(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the strategy"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` (to list its allowed keys)."""
    model: type[BaseModel] | None = Strategy
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        model = _first_model(model.model_fields[part].annotation)
    return model


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _first_model(arg)
            if found is not None:
                return found
    return None


def _has_nested_error(errors: list, loc: tuple) -> bool:
    return any(len(e.get("loc", ())) > len(loc) and tuple(e["loc"][: len(loc)]) == loc for e in errors)


def _shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema_finding(out: _Collector, error: Mapping[str, Any], data: dict) -> None:
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    where = _loc_text(loc)
    if kind == "extra_forbidden":
        parent = loc[:-1]
        model = _model_at(parent)
        allowed = f" (allowed: {', '.join(model.model_fields)})" if model is not None else ""
        out.at(loc, "schema.unknown_key",
               f"unknown key '{loc[-1]}' in {_loc_text(parent)}{allowed}")
        return
    if kind == "missing":
        out.at(loc, "schema.invalid", f"{where}: required key '{loc[-1]}' is missing")
        return
    message = str(error.get("msg", "invalid value"))
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    shown = ""
    if "input" in error and not isinstance(error["input"], dict | list):
        shown = f" (got {_shorten(error['input'])})"
    out.at(loc, "schema.invalid", f"{where}: {message}{shown}")


# --- directories -------------------------------------------------------------------------------


def strategy_files(path: str | Path) -> list[Path]:
    """The one rule for what a strategy library holds (lint, simulate, publish, the local seeding, the
    code asset and the matcher all list it here): ``path`` itself if it is a file; else every
    ``*.yaml`` / ``*.yml`` file under it, subfolders included (``team-a/x.yaml``), whatever else its
    name says (``x.draft.yaml`` too: a draft is a ``status``, not a file name), except hidden files
    and folders (a name starting with ``.``) and the :data:`TESTS_FOLDER` at its top (strategy test
    fixtures, not strategies), sorted by relative path."""
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise StrategyError(f"'{root}' is not a directory of strategies", code="library.not_found",
                            where=str(root))
    # one scandir per folder (no stat of a regular file, no path arithmetic per file: at 10,000 files
    # rglob and relative_to took a quarter of a second); like rglob, a symlinked folder is not entered
    # and an unreadable one is passed over
    found: list[tuple[str, str]] = []
    pending = [(str(root), "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except PermissionError:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_dir() and not entry.is_symlink():
                if prefix or name != TESTS_FOLDER:
                    pending.append((entry.path, f"{prefix}{name}/"))
            elif os.path.splitext(name)[1] in STRATEGY_SUFFIXES and entry.is_file():
                found.append((f"{prefix}{name}", entry.path))
    return [Path(full) for _, full in sorted(found)]


def load_file(path: str | Path) -> tuple[CompiledStrategy | None, list[Finding]]:
    source = str(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size  # the file opened, not a second lookup of its name
            if size > MAX_BYTES:
                return None, [Finding(source, 1, 1, "yaml.too_large",
                                      f"file is {size} bytes, the limit is {MAX_BYTES}")]
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        return None, [Finding(source, 1, 1, "library.unreadable", f"cannot read the file: {exc.strerror}")]
    return load_strategy_text(raw, source)


def load_directory(path: str | Path) -> tuple[list[CompiledStrategy], list[Finding]]:
    """Load a strategy library. Raises ``StrategyError(code="library.not_found")`` if ``path``
    does not exist; everything else is reported as findings."""
    compiled: list[CompiledStrategy] = []
    findings: list[Finding] = []
    for file in strategy_files(path):
        strategy, found = load_file(file)
        findings.extend(found)
        if strategy is not None:
            compiled.append(strategy)
    kept, cross = cross_file_findings(compiled)
    findings.extend(cross)
    return kept, findings


def _position(strategy: Placed, key: str) -> tuple[int, int]:
    return strategy.key_positions.get(key, strategy.key_positions.get("id", (1, 1)))


def _overlap(left: tuple[str, ...], right: tuple[str, ...]) -> bool:
    return "*" in left or "*" in right or bool(set(left) & set(right))


class Identity(Protocol):
    """Who a strategy is and where it applies: what the index and the cross-file checks both read."""

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def weight(self) -> int: ...

    @property
    def status(self) -> str: ...

    @property
    def event_types(self) -> tuple[str, ...]: ...

    @property
    def tenants(self) -> tuple[str, ...]: ...


class Placed(Identity, Protocol):
    """What the cross-file checks read of a strategy: a :class:`CompiledStrategy` or a :class:`Summary`."""

    @property
    def source(self) -> str: ...

    @property
    def key_positions(self) -> Mapping[str, tuple[int, int]]: ...


@dataclass(frozen=True)
class Summary:
    """A loaded strategy reduced to what the cross-file checks read (sent back by a lint worker)."""

    source: str
    id: str
    version: int
    weight: int
    status: str
    event_types: tuple[str, ...]
    tenants: tuple[str, ...]
    key_positions: Mapping[str, tuple[int, int]]
    plugins: tuple[str, ...] = ()
    """The plugins its flow calls (for the tenant checks of ``strategy lint --tenants``)."""

    @classmethod
    def of(cls, compiled: CompiledStrategy) -> Summary:
        return cls(compiled.source, compiled.id, compiled.version, compiled.weight, compiled.status,
                   tuple(compiled.event_types), tuple(compiled.tenants), dict(compiled.key_positions),
                   tuple(sorted({n.plugin for n in compiled.strategy.flow.nodes if n.plugin})))


P = TypeVar("P", bound=Placed)


def cross_file_findings(strategies: list[P]) -> tuple[list[P], list[Finding]]:
    """Duplicate ``(id, version)`` → error (the later copies are dropped); weight ties → warning."""
    findings: list[Finding] = []
    seen: dict[tuple[str, int], P] = {}
    kept: list[P] = []
    for item in strategies:
        key = (item.id, item.version)
        if key in seen:
            line, col = _position(item, "id")
            first = seen[key]
            findings.append(Finding(item.source, line, col, "strategy.duplicate_id",
                                    f"strategy '{item.id}' version {item.version} is already defined in "
                                    f"{first.source}:{_position(first, 'id')[0]}; ids are unique per version "
                                    "(bump version or rename)"))
            continue
        seen[key] = item
        kept.append(item)

    # weight ties: only strategies of the same weight sharing an event type can tie, so pairs are
    # looked up per (weight, event type) instead of comparing every pair of a weight
    seen_at: dict[tuple[int, str], list[int]] = {}
    approved = [item for item in kept if item.status == "approved"]
    for j, later in enumerate(approved):
        earlier_positions: set[int] = set()
        for event_type in later.event_types:
            bucket = seen_at.setdefault((later.weight, event_type), [])
            earlier_positions.update(bucket)
            bucket.append(j)
        for i in sorted(earlier_positions):
            earlier = approved[i]
            if earlier.id == later.id or not _overlap(earlier.tenants, later.tenants):
                continue
            common = set(earlier.event_types) & set(later.event_types)
            winner = min(earlier.id, later.id)
            line, col = _position(later, "weight")
            findings.append(Finding(
                later.source, line, col, "strategy.weight_tie",
                f"weight {later.weight} ties with '{earlier.id}' ({earlier.source}) for event "
                f"{', '.join(sorted(common))}: when both match, the lowest id ('{winner}') wins;"
                " give them different weights", "warning"))
    return kept, findings
