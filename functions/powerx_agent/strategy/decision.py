"""The decision record: why an event did or did not get a strategy (explainable matching)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from powerx_agent.strategy.redaction import redact_actual


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


@dataclass(frozen=True)
class Decision:
    event_id: str
    tenant_id: str
    event_type: str
    library_revision: str
    selected: dict[str, Any] | None
    candidates: tuple[Candidate, ...]

    @property
    def matched(self) -> bool:
        return self.selected is not None

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "tenant_id": self.tenant_id, "event_type": self.event_type,
                "library_revision": self.library_revision, "selected": self.selected,
                "candidates": [c.to_dict() for c in self.candidates]}

    def reason(self) -> str:
        if self.selected:
            others = sum(1 for c in self.candidates if c.matched) - 1
            extra = f"; {others} other matching candidate(s) had lower weight or a higher id" if others > 0 else ""
            return (f"{self.selected['strategy_id']} v{self.selected['version']} matched with weight "
                    f"{self.selected['weight']}{extra}")
        if not self.candidates:
            return f"no approved strategy handles {self.event_type} for tenant {self.tenant_id}"
        fails = "; ".join(f"{c.strategy_id}: {c.failed.path} {c.failed.op} {c.failed.expected!r}"
                          for c in self.candidates if c.failed)
        return f"{len(self.candidates)} candidate(s), none matched ({fails})"
