"""``powerx-agent strategy lint``: every problem of a strategy library as ``file:line:col: CODE msg``.

The findings are those of :func:`~powerx_agent.strategy.loader.load_directory` (YAML safety,
schema, conditions, patterns, templates and variables, taskflow checks from
``flow_problems``, duplicate ids, weight ties), sorted by source, line and column.
"""

from __future__ import annotations

from pathlib import Path

from powerx_agent.strategy.loader import Finding, load_directory, load_strategy_text


def lint_directory(path: str | Path) -> list[Finding]:
    """Lint a directory (or one file). Raises ``StrategyError(code="library.not_found")`` when the
    path does not exist (a usage error for the CLI, exit code 2)."""
    _, findings = load_directory(path)
    return sorted(findings, key=lambda f: f.sort_key)


def lint_text(text: str | bytes, source: str) -> list[Finding]:
    """Lint one strategy held in memory (no cross-file checks)."""
    _, findings = load_strategy_text(text, source)
    return sorted(findings, key=lambda f: f.sort_key)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
