"""Library revisions and the last-known-good cache the matcher serves from.

A revision is either the set of approved, active strategy versions published in
``agent_strategies`` (the normal source) or the baseline directory shipped with the deployment
(used when the ``agent-strategy-library`` flag is off, and by the CLI). A revision is used only if
every one of its strategies compiles: the matcher never matches against a half-loaded library; on
failure it keeps serving the last good revision and reports why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from powerx_agent.strategy.index import StrategyIndex
from powerx_agent.strategy.loader import CompiledStrategy, Finding, load_directory, load_strategy_text


@dataclass(frozen=True)
class Library:
    revision: str
    strategies: tuple[CompiledStrategy, ...]
    index: StrategyIndex = field(compare=False)

    def get(self, strategy_id: str) -> CompiledStrategy | None:
        return next((c for c in self.strategies if c.strategy.id == strategy_id), None)


class LibraryLoadError(Exception):
    def __init__(self, revision: str, findings: list[Finding]) -> None:
        self.revision = revision
        self.findings = findings
        shown = "; ".join(str(f) for f in findings[:5])
        super().__init__(f"library revision {revision} is not usable: {len(findings)} error(s): {shown}")


def build_library(documents: list[tuple[str, str]], revision: str, approved_elsewhere: bool = True) -> Library:
    """Compile every (source, yaml text); raise LibraryLoadError if any has an error."""
    compiled: list[CompiledStrategy] = []
    errors: list[Finding] = []
    for source, text in documents:
        strategy, findings = load_strategy_text(text, source)
        errors += [f for f in findings if f.severity == "error"]
        if strategy is not None:
            compiled.append(strategy)
    if errors:
        raise LibraryLoadError(revision, errors)
    return Library(revision, tuple(compiled), StrategyIndex(compiled, revision, only_approved=not approved_elsewhere))


def library_from_directory(path: str | Path, revision: str | None = None) -> Library:
    compiled, findings = load_directory(path)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise LibraryLoadError(revision or f"dir:{path}", errors)
    revision = revision or f"dir:{Path(path).name}"
    return Library(revision, tuple(compiled), StrategyIndex(compiled, revision))


class LibraryCache:
    """Serve the newest usable revision; check for a new one at most every ``refresh_seconds``."""

    def __init__(self, refresh_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._good: Library | None = None
        self._checked_at = 0.0
        self._failed_revision: str | None = None
        self.last_error: str | None = None

    def get(self, current_revision: Callable[[], str], load: Callable[[str], Library],
            on_error: Callable[[Exception], None]) -> Library:
        now = self._clock()
        with self._lock:
            if self._good is not None and now - self._checked_at < self._refresh:
                return self._good
            try:
                revision = current_revision()
                if self._good is None or (revision != self._good.revision and revision != self._failed_revision):
                    self._good = load(revision)
                    self._failed_revision = None
                    self.last_error = None
            except Exception as exc:  # noqa: BLE001 - any load failure keeps the last good revision
                self.last_error = str(exc)
                self._failed_revision = getattr(exc, "revision", None)
                on_error(exc)
                if self._good is None:
                    raise
            self._checked_at = now
            return self._good

    def invalidate(self) -> None:
        with self._lock:
            self._checked_at = 0.0
