"""Library revisions and the last-known-good cache the matcher serves from.

A revision is either the set of approved, active strategy versions published in
``agent_strategies`` (the normal source: read from the revision's compiled artifact,
:mod:`powerx_agent.strategy.artifact`, or compiled from each version's YAML when the artifact
cannot be used) or the baseline directory shipped with the deployment (used when the
``agent-strategy-library`` flag is off, and by the CLI). A revision is used only if every one of its
strategies compiled: the matcher never matches against a half-loaded library; on failure it keeps
serving the last good revision and reports why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from powerx_agent.strategy.artifact import Artifact
from powerx_agent.strategy.canary import CanaryPlan, arm_of
from powerx_agent.strategy.index import Member, StrategyIndex
from powerx_agent.strategy.loader import CompiledStrategy, Finding, load_directory, load_strategy_text


class CanaryLane:
    """A running canary inside a library: the canary version, the event types it covers (its own and
    the baseline's) and, built on first use, the index the canary arm decides with: the library's
    strategies of those event types with the baseline version replaced by the canary version."""

    def __init__(self, plan: CanaryPlan, canary: CompiledStrategy, baseline: Member | None) -> None:
        self.plan = plan
        self.canary = canary
        self.event_types = frozenset(canary.event_types) | frozenset(baseline.event_types if baseline else ())
        self._index: StrategyIndex | None = None
        self._lock = threading.Lock()

    def index(self, members: Sequence[Member], revision: str) -> StrategyIndex:
        with self._lock:  # matchers decide from several threads; the index is built once
            if self._index is None:
                sid = self.plan.strategy_id
                chosen: list[Member] = [m for m in members
                                        if m.id != sid and not self.event_types.isdisjoint(m.event_types)]
                self._index = StrategyIndex([*chosen, self.canary], revision, only_approved=False)
            return self._index


class Library:
    """A revision's strategies and their index. ``members`` are compiled strategies, or an
    artifact's members, which compile on first use (``strategies`` compiles them all). ``lanes``:
    the running canaries (at most one per event type)."""

    def __init__(self, revision: str, members: Sequence[Member], index: StrategyIndex,
                 lanes: Sequence[CanaryLane] = ()) -> None:
        self.revision = revision
        self.members = members
        self.index = index
        self.lanes = tuple(lanes)

    def with_canaries(self, revision: str, canaries: Sequence[tuple[CanaryPlan, CompiledStrategy]]) -> Library:
        """This library with the canaries running (sharing its members and index)."""
        by_id = {m.id: m for m in self.members} if canaries else {}
        lanes = [CanaryLane(plan, canary, by_id.get(plan.strategy_id)) for plan, canary in canaries]
        return Library(revision, self.members, self.index, lanes)

    def route(self, event_type: str, idempotency_key: str) -> tuple[StrategyIndex, dict[str, Any] | None]:
        """The index that decides this event, and the canary arm it is in (None when no canary covers
        its event type). Every event of a covered type is in exactly one arm, the same on every replay."""
        for lane in self.lanes:
            if event_type in lane.event_types:
                arm = arm_of(lane.plan, idempotency_key)
                return (lane.index(self.members, self.revision) if arm["arm"] == "canary" else self.index), arm
        return self.index, None

    @property
    def strategies(self) -> tuple[CompiledStrategy, ...]:
        return tuple(m.full() for m in self.members)

    def get(self, strategy_id: str) -> CompiledStrategy | None:
        found = next((m for m in self.members if m.id == strategy_id), None)
        return found.full() if found is not None else None


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


def library_from_artifact(artifact: Artifact, revision: str) -> Library:
    """The library of a verified artifact: ready without compiling anything (its members compile
    when first looked up)."""
    members = artifact.members()
    return Library(revision, members, StrategyIndex(members, revision, only_approved=False, order=artifact.order))


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
            on_error: Callable[[Exception], None], fallback: Callable[[], Library | None] | None = None) -> Library:
        """``fallback``: what a process that has served nothing yet serves when the current revision
        cannot be loaded (the newest earlier revision that can), instead of failing."""
        now = self._clock()
        with self._lock:
            if self._good is not None and now - self._checked_at < self._refresh:
                return self._good
            revision: str | None = None
            try:
                revision = current_revision()
                if self._good is None or (revision != self._good.revision and revision != self._failed_revision):
                    self._good = load(revision)
                    self._failed_revision = None
                    self.last_error = None
            except Exception as exc:  # noqa: BLE001 - any load failure keeps the last good revision
                self.last_error = str(exc)
                self._failed_revision = getattr(exc, "revision", None) or revision
                on_error(exc)
                if self._good is None and fallback is not None:
                    self._good = fallback()
                if self._good is None:
                    raise
            self._checked_at = now
            return self._good

    def invalidate(self) -> None:
        with self._lock:
            self._checked_at = 0.0
