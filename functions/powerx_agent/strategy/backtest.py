"""``strategy simulate``: a backtest of a library over recorded events, optionally against a baseline
library. Every event goes through :func:`~powerx_agent.strategy.evaluate.evaluate`, the matcher's own
evaluation; this module only counts: hit rate, matches per strategy, unmatched events, lines that
are not events, and every decision that differs from the baseline."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from powerx_agent.strategy.evaluate import EventFacts, evaluate
from powerx_agent.strategy.library import Library


@dataclass
class Backtest:
    library: Library
    baseline: Library | None = None
    decided: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: list[dict[str, Any]] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    per_strategy: Counter[str] = field(default_factory=Counter)

    def add(self, line: int, event: EventFacts) -> None:
        found = evaluate(self.library, event, {}, explain_all=False)
        selected, decision = found.selected, found.decision
        self.decided.append({"line": line, "event_id": decision.event_id, "event_type": decision.event_type,
                             "tenant_id": decision.tenant_id,
                             "selected": selected.strategy.id if selected else None})
        if selected is not None:
            self.per_strategy[f"{selected.strategy.id}@v{selected.strategy.version}"] += 1
        if self.baseline is None:
            return
        before = evaluate(self.baseline, event, {}, explain_all=False)
        old = (before.selected.strategy.id, before.selected.strategy.version) if before.selected else None
        new = (selected.strategy.id, selected.strategy.version) if selected else None
        if old != new:
            self.differences.append({"line": line, "event_id": decision.event_id, "event_type": decision.event_type,
                                     "tenant_id": decision.tenant_id, "baseline": before.decision.selected,
                                     "candidate": decision.selected, "baseline_reason": before.decision.reason(),
                                     "reason": decision.reason()})

    def refuse(self, line: int, error: str) -> None:
        self.bad_lines.append({"line": line, "error": error[:300]})

    def report(self) -> dict[str, Any]:
        matched = sum(1 for d in self.decided if d["selected"])
        out: dict[str, Any] = {
            "events": len(self.decided), "matched": matched,
            "hit_rate": round(matched / len(self.decided), 4) if self.decided else None,
            "per_strategy": dict(sorted(self.per_strategy.items())),
            "unmatched": [{k: d[k] for k in ("line", "event_id", "event_type", "tenant_id")}
                          for d in self.decided if d["selected"] is None],
            "bad_lines": self.bad_lines, "library": self.library.revision}
        if self.baseline is not None:
            out["baseline"] = self.baseline.revision
            out["differences"] = self.differences
        return out

