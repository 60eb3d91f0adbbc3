"""``powerx-agent strategy lint``: every problem of a strategy library as ``file:line:col: CODE msg``.

The findings are those of :func:`~powerx_agent.strategy.loader.load_directory` (YAML safety,
schema, conditions, patterns, templates and variables, taskflow checks from
``flow_problems``, duplicate ids, weight ties), sorted by source, line and column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import re2

from powerx_agent.strategy.loader import CompiledStrategy, Finding, load_directory, load_strategy_text
from powerx_agent.strategy.paths import _simple_keys

# a payload path as written in a strategy: $.payload.a.b[0] (linear: RE2)
_PAYLOAD_PATH = re2.compile(r"\$\.payload(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]+\])+")


def lint_directory(path: str | Path, contracts: dict[str, Any] | None = None) -> list[Finding]:
    """Lint a directory (or one file). Raises ``StrategyError(code="library.not_found")`` when the
    path does not exist (a usage error for the CLI, exit code 2). With ``contracts`` (event type ->
    ``powerx_agent.payload_contracts.Contract``), a payload path the event type's contract says cannot exist is
    a warning (``path.impossible``): the condition can never hold, the variable is always its default."""
    compiled, findings = load_directory(path)
    for strategy in compiled:
        findings += contract_findings(strategy, contracts or {})
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


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
