"""The matcher's index: strategies by event type, selection by weight, explainable decisions.

Built once per library revision. Looking up an event costs a dict access for its type plus the
evaluation of that type's candidates (those that apply to the tenant); strategies for other event
types are never touched, so the cost does not grow with the size of the library.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from powerx_agent.strategy.decision import Candidate, Decision, FailedCondition

if TYPE_CHECKING:
    from powerx_agent.strategy.loader import CompiledStrategy


@dataclass(frozen=True)
class _Entry:
    compiled: CompiledStrategy
    wildcard_tenant: bool
    tenants: frozenset[str]


class StrategyIndex:
    def __init__(self, strategies: list[CompiledStrategy], revision: str, only_approved: bool = True) -> None:
        """``only_approved=False`` when the approval lives outside the YAML (published versions whose
        approval is recorded in ``agent_strategies``)."""
        self.revision = revision
        by_type: dict[str, list[_Entry]] = defaultdict(list)
        for compiled in strategies:
            strategy = compiled.strategy
            if strategy.status == "retired" or (only_approved and strategy.status != "approved"):
                continue
            entry = _Entry(compiled, "*" in strategy.tenants, frozenset(strategy.tenants))
            for event_type in strategy.on.event:
                by_type[event_type].append(entry)
        # highest weight first, then lowest id: the first match in this order is the selection
        self._by_type = {t: tuple(sorted(es, key=lambda e: (-e.compiled.strategy.weight, e.compiled.strategy.id)))
                         for t, es in by_type.items()}
        self.size = len(strategies)

    def candidates(self, event_type: str, tenant_id: str) -> list[CompiledStrategy]:
        return [e.compiled for e in self._by_type.get(event_type, ())
                if e.wildcard_tenant or tenant_id in e.tenants]

    def decide(self, *, event_type: str, tenant_id: str, event_id: str, doc: dict[str, Any],
               bus_event: dict[str, Any], explain_all: bool = True) -> tuple[Decision, CompiledStrategy | None]:
        """Evaluate the candidates in selection order; with ``explain_all`` every candidate is evaluated
        so the decision record says why each one did or did not match."""
        candidates: list[Candidate] = []
        selected: CompiledStrategy | None = None
        for compiled in self.candidates(event_type, tenant_id):
            strategy = compiled.strategy
            if selected is not None and not explain_all:
                break
            failure = evaluate(compiled, doc, bus_event)
            candidates.append(Candidate(strategy.id, strategy.version, strategy.weight, failure is None, failure))
            if failure is None and selected is None:
                selected = compiled
        decision = Decision(
            event_id=event_id, tenant_id=tenant_id, event_type=event_type, library_revision=self.revision,
            selected=None if selected is None else {
                "strategy_id": selected.strategy.id, "version": selected.strategy.version,
                "weight": selected.strategy.weight},
            candidates=tuple(candidates),
        )
        return decision, selected


def evaluate(compiled: CompiledStrategy, doc: dict[str, Any], bus_event: dict[str, Any]) -> FailedCondition | None:
    if compiled.pattern is not None:
        failed = compiled.pattern.explain(bus_event)
        if failed is None:
            return None
        return FailedCondition(path=str(failed.get("path")), op=str(failed.get("op")),
                               expected=failed.get("expected"), actual=failed.get("actual"))
    if compiled.condition is None:
        return None
    failure = compiled.condition.evaluate(doc)
    if failure is None:
        return None
    return FailedCondition(path=failure.path, op=failure.op, expected=failure.expected, actual=failure.actual)
