"""``strategy simulate``: a backtest of a library over recorded events, optionally against a baseline
library. Every event goes through :func:`~powerx_agent.strategy.evaluate.evaluate`, the matcher's own
evaluation; this module only counts: hit rate, matches per strategy, unmatched events grouped by
why, events the tenant registry makes ingest reject, lines that are not events, and, against a
baseline, the old → new matrix of decisions with examples of each cell."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from powerx_agent.strategy.decision import Decision
from powerx_agent.strategy.evaluate import EventFacts, evaluate
from powerx_agent.strategy.library import Library

EXAMPLES = 3
NONE = "none"


def unmatched_reason(decision: Decision) -> str:
    """Why no strategy was selected, worded to group events: no candidate for the event type, or each
    candidate's first failing condition."""
    if not decision.candidates:
        return f"no approved strategy handles {decision.event_type} for the tenant"
    return "; ".join(sorted(f"{c.strategy_id}: {c.failed.path} {c.failed.op} {c.failed.expected!r}"
                            if c.failed else f"{c.strategy_id}: lost on weight" for c in decision.candidates))


@dataclass
class Backtest:
    library: Library
    baseline: Library | None = None
    screen: Callable[[EventFacts], str | None] | None = None
    """The ingest rejection code the tenant registry makes of an event (None: accepted)."""
    tenant_of: Callable[[str], Mapping[str, Any]] = lambda _tenant_id: {}
    decided: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: list[dict[str, Any]] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    per_strategy: Counter[str] = field(default_factory=Counter)
    rejected: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    reasons: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    matrix: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, line: int, event: EventFacts) -> None:
        where = {"line": line, "event_id": event.event_id, "event_type": event.event_type,
                 "tenant_id": event.tenant_id}
        code = self.screen(event) if self.screen is not None else None
        if code is not None:
            self.rejected[code].append(where)
            return
        tenant = self.tenant_of(event.tenant_id)
        found = evaluate(self.library, event, tenant, explain_all=False)
        selected, decision = found.selected, found.decision
        self.decided.append({**where, "selected": selected.strategy.id if selected else None})
        if selected is not None:
            self.per_strategy[f"{selected.strategy.id}@v{selected.strategy.version}"] += 1
        else:
            self.reasons[unmatched_reason(decision)].append(where)
        if self.baseline is None:
            return
        before = evaluate(self.baseline, event, tenant, explain_all=False)
        old = (before.selected.strategy.id, before.selected.strategy.version) if before.selected else None
        new = (selected.strategy.id, selected.strategy.version) if selected else None
        self.matrix[(_name(old), _name(new))].append(where)
        if old != new:
            self.differences.append({**where, "baseline": before.decision.selected, "candidate": decision.selected,
                                     "baseline_reason": before.decision.reason(), "reason": decision.reason()})

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
            "unmatched_by_reason": [{"reason": reason, "count": len(items), "examples": items[:EXAMPLES]}
                                    for reason, items in sorted(self.reasons.items(), key=lambda kv: -len(kv[1]))],
            "rejected": sum(len(v) for v in self.rejected.values()),
            "rejected_by_code": [{"code": code, "count": len(items), "examples": items[:EXAMPLES]}
                                 for code, items in sorted(self.rejected.items(), key=lambda kv: -len(kv[1]))],
            "bad_lines": self.bad_lines, "library": self.library.revision}
        if self.baseline is not None:
            out["baseline"] = self.baseline.revision
            out["differences"] = self.differences
            out["matrix"] = [{"from": old, "to": new, "count": len(items), "changed": old != new,
                              "examples": items[:EXAMPLES]}
                             for (old, new), items in sorted(self.matrix.items(),
                                                             key=lambda kv: (kv[0][0] == kv[0][1], -len(kv[1])))]
        return out


def _name(selected: tuple[str, int] | None) -> str:
    return f"{selected[0]}@v{selected[1]}" if selected else NONE
