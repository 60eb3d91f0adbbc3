"""``powerx-agent strategy lint``: every problem of a strategy library as ``file:line:col: CODE msg``.

The findings are those of :func:`~powerx_agent.strategy.loader.load_directory` (YAML safety,
schema, conditions, patterns, templates and variables, taskflow checks from
``flow_problems``, duplicate ids, weight ties), sorted by source, line and column; given the tenant
registry, also the strategies no tenant can use (:func:`tenant_findings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import re2

from powerx_agent.strategy.loader import (
    CompiledStrategy,
    Finding,
    _position,
    load_directory,
    load_strategy_text,
)
from powerx_agent.strategy.paths import _simple_keys

# a payload path as written in a strategy: $.payload.a.b[0] (linear: RE2)
_PAYLOAD_PATH = re2.compile(r"\$\.payload(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]+\])+")


def lint_directory(path: str | Path, contracts: dict[str, Any] | None = None,
                   tenants: Mapping[str, Mapping[str, Any]] | None = None) -> list[Finding]:
    """Lint a directory (or one file). Raises ``StrategyError(code="library.not_found")`` when the
    path does not exist (a usage error for the CLI, exit code 2). With ``contracts`` (event type ->
    ``powerx_agent.payload_contracts.Contract``), a payload path the event type's contract says cannot exist is
    a warning (``path.impossible``): the condition can never hold, the variable is always its default.
    With ``tenants`` (the tenant registry), the strategies no tenant can use are warnings (``tenant.*``)."""
    compiled, findings = load_directory(path)
    for strategy in compiled:
        findings += contract_findings(strategy, contracts or {})
    if tenants is not None:
        findings += tenant_findings(compiled, tenants)
    return sorted(findings, key=lambda f: f.sort_key)


def contract_findings(compiled: CompiledStrategy, contracts: dict[str, Any]) -> list[Finding]:
    applicable = [contracts[e] for e in compiled.strategy.on.event if e in contracts]
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


def lint_text(text: str | bytes, source: str) -> list[Finding]:
    """Lint one strategy held in memory (no cross-file checks)."""
    _, findings = load_strategy_text(text, source)
    return sorted(findings, key=lambda f: f.sort_key)


def _allows(values: Any, wanted: str) -> bool:
    return "*" in (values or []) or wanted in (values or [])


def tenant_findings(strategies: list[CompiledStrategy], tenants: Mapping[str, Mapping[str, Any]]) -> list[Finding]:
    """Warnings for what the tenant registry makes of each strategy, as ingest and the matcher would:
    a tenant it names that is not registered; no active tenant in its scope; an event type no active
    tenant in scope may send (ingest rejects them all); a plugin no such tenant may use (the matcher
    escalates instead of running it)."""
    out: list[Finding] = []
    for item in strategies:
        strategy = item.strategy

        def warn(key: str, code: str, message: str, item: CompiledStrategy = item) -> None:
            line, col = _position(item, key)
            out.append(Finding(item.source, line, col, code, message, "warning"))

        for tenant_id in strategy.tenants:
            if tenant_id != "*" and tenant_id not in tenants:
                warn("tenants", "tenant.unknown", f"tenant '{tenant_id}' is not in the tenant registry")
        active = [t for tenant_id, t in tenants.items()
                  if strategy.applies_to_tenant(tenant_id) and t.get("status", "active") == "active"]
        if not active:
            warn("tenants", "tenant.none_active", "no active tenant of the registry is in this strategy's scope: "
                 "it never runs")
            continue
        for event_type in strategy.on.event:
            if not any(_allows(t.get("allowed_event_types"), event_type) for t in active):
                warn("on", "tenant.event_type_not_allowed", f"no active tenant in scope may send {event_type} "
                     "(allowed_event_types): ingest rejects every such event")
        for plugin in sorted({n.plugin for n in strategy.flow.nodes if n.plugin}):
            if not any(_allows(t.get("allowed_plugins"), plugin) for t in active):
                warn("flow", "tenant.plugin_not_allowed", f"no active tenant in scope may use plugin {plugin} "
                     "(allowed_plugins): the matcher escalates instead of running the flow")
    return out


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
