"""``powerx-agent strategy lint``: every problem of a strategy library as ``file:line:col: CODE msg``.

The findings are those of :func:`~powerx_agent.strategy.loader.load_directory` (YAML safety,
schema, conditions, patterns, templates and variables, taskflow checks from
``flow_problems``, duplicate ids, weight ties), sorted by source, line and column; given the tenant
registry, also the strategies no tenant can use (:func:`tenant_findings`).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import re2

from powerx_agent.strategy.loader import (
    Finding,
    Summary,
    _position,
    cross_file_findings,
    load_file,
    load_strategy_text,
    strategy_files,
)
from powerx_agent.strategy.paths import _simple_keys

# a payload path as written in a strategy: $.payload.a.b[0] (linear: RE2)
_PAYLOAD_PATH = re2.compile(r"\$\.payload(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]+\])+")

PARALLEL_FROM_FILES = 400
"""Below this many files one process lints faster than starting workers."""
MAX_JOBS = 8


def default_jobs(files: int) -> int:
    if files < PARALLEL_FROM_FILES:
        return 1
    return max(1, min(MAX_JOBS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1))


def _lint_files(files: list[Path]) -> tuple[list[Finding], list[Summary]]:
    findings: list[Finding] = []
    loaded: list[Summary] = []
    for file in files:
        compiled, found = load_file(file)
        findings += found
        if compiled is not None:
            loaded.append(Summary.of(compiled))
    return findings, loaded


def lint_directory(path: str | Path, contracts: dict[str, Any] | None = None,
                   tenants: Mapping[str, Mapping[str, Any]] | None = None, jobs: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> list[Finding]:
    """Lint a directory (or one file). Raises ``StrategyError(code="library.not_found")`` when the
    path does not exist (a usage error for the CLI, exit code 2). See :func:`lint_library`. With
    ``contracts`` (event type -> ``powerx_agent.payload_contracts.Contract``), a payload path the event
    type's contract says cannot exist is a warning (``path.impossible``): the condition can never hold,
    the variable is always its default. With ``tenants`` (the tenant registry), the strategies no
    tenant can use are warnings (``tenant.*``)."""
    findings, loaded = lint_library(path, jobs, progress)
    extra = [f for summary in loaded for f in contract_findings(summary, contracts or {})]
    if tenants is not None:
        extra += tenant_findings(loaded, tenants)
    return sorted(findings + extra, key=lambda f: f.sort_key) if extra else findings


def lint_library(path: str | Path, jobs: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> tuple[list[Finding], list[Summary]]:
    """Every finding of the library at ``path`` (sorted) and the strategies that loaded, without
    the later copies of a duplicate (path order).

    Files are loaded by ``jobs`` worker processes (default: one per CPU from
    :data:`PARALLEL_FROM_FILES` files on, when the platform forks and this process runs no other
    thread); the cross-file checks then run over every file in path order, as with one process.
    ``progress(done, total)`` is told as files are loaded."""
    files = strategy_files(path)
    jobs = default_jobs(len(files)) if jobs is None else max(1, jobs)
    can_fork = "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
    size = max(1, -(-len(files) // (jobs * 4)))  # a few chunks per worker balance uneven files
    chunks = [files[i:i + size] for i in range(0, len(files), size)]
    findings: list[Finding] = []
    loaded: list[Summary] = []
    done = 0
    if jobs > 1 and can_fork and len(chunks) > 1:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            results = pool.map(_lint_files, chunks)
            for chunk, (found, summaries) in zip(chunks, results, strict=True):
                findings += found
                loaded += summaries
                done += len(chunk)
                if progress is not None:
                    progress(done, len(files))
    else:
        for chunk in chunks:
            found, summaries = _lint_files(chunk)
            findings += found
            loaded += summaries
            done += len(chunk)
            if progress is not None:
                progress(done, len(files))
    kept, cross = cross_file_findings(loaded)
    return sorted(findings + cross, key=lambda f: f.sort_key), kept


def lint_text(text: str | bytes, source: str) -> list[Finding]:
    """Lint one strategy held in memory (no cross-file checks)."""
    _, findings = load_strategy_text(text, source)
    return sorted(findings, key=lambda f: f.sort_key)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


def contract_findings(compiled: Summary, contracts: dict[str, Any]) -> list[Finding]:
    applicable = [contracts[e] for e in compiled.event_types if e in contracts]
    if not applicable:
        return []
    try:
        text = Path(compiled.source).read_text(encoding="utf-8")
    except OSError:
        return []
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _PAYLOAD_PATH.finditer(line):
            keys = _simple_keys(match.group(0))
            for contract in applicable:
                why = contract.impossible(tuple(keys[1:])) if keys else None
                if not why:
                    continue
                found.append(Finding(compiled.source, number, match.start() + 1, "path.impossible",
                                     f"{match.group(0)} cannot exist in a valid {contract.event_type} event: "
                                     f"{why} ({contract.source})", "warning"))
    return found


def _allows(values: Any, wanted: str) -> bool:
    return "*" in (values or []) or wanted in (values or [])


def tenant_findings(strategies: list[Summary], tenants: Mapping[str, Mapping[str, Any]]) -> list[Finding]:
    """Warnings for what the tenant registry makes of each strategy, as ingest and the matcher would:
    a tenant it names that is not registered; no active tenant in its scope; an event type no active
    tenant in scope may send (ingest rejects them all); a plugin no such tenant may use (the matcher
    escalates instead of running it)."""
    out: list[Finding] = []
    for item in strategies:
        def warn(key: str, code: str, message: str, item: Summary = item) -> None:
            line, col = _position(item, key)
            out.append(Finding(item.source, line, col, code, message, "warning"))

        for tenant_id in item.tenants:
            if tenant_id != "*" and tenant_id not in tenants:
                warn("tenants", "tenant.unknown", f"tenant '{tenant_id}' is not in the tenant registry")
        active = [t for tenant_id, t in tenants.items()
                  if ("*" in item.tenants or tenant_id in item.tenants) and t.get("status", "active") == "active"]
        if not active:
            warn("tenants", "tenant.none_active", "no active tenant of the registry is in this strategy's scope: "
                 "it never runs")
            continue
        for event_type in item.event_types:
            if not any(_allows(t.get("allowed_event_types"), event_type) for t in active):
                warn("on", "tenant.event_type_not_allowed", f"no active tenant in scope may send {event_type} "
                     "(allowed_event_types): ingest rejects every such event")
        for plugin in item.plugins:
            if not any(_allows(t.get("allowed_plugins"), plugin) for t in active):
                warn("flow", "tenant.plugin_not_allowed", f"no active tenant in scope may use plugin {plugin} "
                     "(allowed_plugins): the matcher escalates instead of running the flow")
    return out

