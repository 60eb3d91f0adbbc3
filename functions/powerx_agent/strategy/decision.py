"""The decision record: why an event did or did not get a strategy (explainable matching)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from powerx_agent.redaction import DEFAULT_POLICY, RedactionPolicy, redact
from powerx_agent.strategy.paths import MISSING

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def redact_actual(path: str, value: Any, policy: RedactionPolicy | None = None) -> Any:
    """Redact the value found at JSONPath ``path`` for a decision record.

    If any name in the path is sensitive (``$.payload.credentials.user``), the value is masked;
    otherwise it is :func:`redact`-ed. :data:`~powerx_agent.strategy.paths.MISSING` and the
    ``"<missing>"`` marker are kept as ``"<missing>"``.
    """
    policy = policy or DEFAULT_POLICY
    if value is MISSING or value == "<missing>":
        return "<missing>"
    if any(policy.sensitive(segment) for segment in _SEGMENT.findall(path or "")):
        return policy.mask
    return redact(value, policy)


@dataclass(frozen=True)
class FailedCondition:
    path: str
    op: str
    expected: Any
    actual: Any

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "expected": self.expected,
                "actual": redact_actual(self.path, self.actual)}


@dataclass(frozen=True)
class Candidate:
    strategy_id: str
    version: int
    weight: int
    matched: bool
    failed: FailedCondition | None

    def to_dict(self) -> dict[str, Any]:
        return {"strategy_id": self.strategy_id, "version": self.version, "weight": self.weight,
                "matched": self.matched, "failed": self.failed.to_dict() if self.failed else None}


class Decision:
    """One decision. ``candidates`` is either given, or produced on first access by ``resolve``: the
    indexed matcher selects without explaining every candidate and explains them when the record is
    read (the record is the same either way; see :mod:`powerx_agent.strategy.index`)."""

    __slots__ = ("event_id", "tenant_id", "event_type", "library_revision", "selected", "_candidates", "_resolve",
                 "arm")

    def __init__(self, *, event_id: str, tenant_id: str, event_type: str, library_revision: str,
                 selected: dict[str, Any] | None, candidates: tuple[Candidate, ...] | None = None,
                 resolve: Callable[[], tuple[Candidate, ...]] | None = None) -> None:
        if (candidates is None) == (resolve is None):
            raise ValueError("give either candidates or resolve")
        self.event_id = event_id
        self.tenant_id = tenant_id
        self.event_type = event_type
        self.library_revision = library_revision
        self.selected = selected
        self._candidates = candidates
        self._resolve = resolve
        self.arm: dict[str, Any] | None = None
        """When a canary covers the event type: which arm decided and why
        (:func:`powerx_agent.strategy.canary.arm_of`)."""

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        if self._candidates is None:
            assert self._resolve is not None
            self._candidates = tuple(self._resolve())
            self._resolve = None
        return self._candidates

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decision) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Decision({self.to_dict()!r})"

    @property
    def matched(self) -> bool:
        return self.selected is not None

    def to_dict(self) -> dict[str, Any]:
        record = {"event_id": self.event_id, "tenant_id": self.tenant_id, "event_type": self.event_type,
                  "library_revision": self.library_revision, "selected": self.selected,
                  "candidates": [c.to_dict() for c in self.candidates]}
        if self.arm is not None:
            record["arm"] = self.arm
        return record

    def reason(self) -> str:
        if self.selected:
            others = sum(1 for c in self.candidates if c.matched) - 1
            extra = f"; {others} other matching candidate(s) had lower weight or a higher id" if others > 0 else ""
            arm = f" ({self.arm['arm']} arm of {self.arm['strategy_id']}'s canary)" if self.arm else ""
            return (f"{self.selected['strategy_id']} v{self.selected['version']} matched with weight "
                    f"{self.selected['weight']}{extra}{arm}")
        if not self.candidates:
            return f"no approved strategy handles {self.event_type} for tenant {self.tenant_id}"
        fails = "; ".join(f"{c.strategy_id}: {c.failed.path} {c.failed.op} {c.failed.expected!r}"
                          for c in self.candidates if c.failed)
        return f"{len(self.candidates)} candidate(s), none matched ({fails})"
