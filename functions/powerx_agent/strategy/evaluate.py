"""One function evaluates an event against a library: the matcher, ``strategy test`` and
``strategy simulate`` all call :func:`evaluate`, so the tools can never disagree with the engine.

The steps are the matcher's: the evaluation document (the envelope's detail plus ``event_type``),
the decision (tenant scope, ``when`` or ``pattern``, weights), then, for the selected strategy, the
rendered ``variables`` and each node's ``when``. Variables and ``when`` are computed on first use,
so a caller that refuses the strategy first (a plugin the tenant may not use) never renders them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from powerx_agent.strategy.decision import Decision
from powerx_agent.strategy.library import Library
from powerx_agent.strategy.loader import CompiledStrategy


@dataclass(frozen=True)
class EventFacts:
    """What the evaluation needs of an accepted event (the envelope, already validated)."""

    event_type: str
    source: str
    tenant_id: str
    event_id: str
    idempotency_key: str
    detail: Mapping[str, Any]  # the envelope as JSON (``model_dump(mode="json", exclude_none=True)``)
    bus_event_id: str | None = None

    def doc(self) -> dict[str, Any]:
        """The document conditions and templates read: the detail plus ``event_type``."""
        return {**self.detail, "event_type": self.event_type}

    def bus_event(self) -> dict[str, Any]:
        """The event as EventBridge patterns see it."""
        return {"source": self.source, "detail-type": self.event_type, "id": self.bus_event_id,
                "detail": self.detail}


@dataclass
class Evaluation:
    facts: EventFacts
    decision: Decision
    selected: CompiledStrategy | None
    doc: dict[str, Any]
    builtins: dict[str, str] = field(default_factory=dict)

    @property
    def matched(self) -> bool:
        return self.selected is not None

    @cached_property
    def variables(self) -> dict[str, Any]:
        """The selected strategy's ``variables`` rendered (builtins not included); {} when unmatched."""
        return self.selected.variables.render(self.doc, self.builtins) if self.selected else {}

    @cached_property
    def when(self) -> dict[str, bool]:
        """node id → whether the node runs (its ``when`` holds, or it has none)."""
        if self.selected is None:
            return {}
        whens = self.selected.node_whens
        return {n.id: (whens[n.id].evaluate(self.doc) is None) if n.id in whens else True
                for n in self.selected.strategy.flow.nodes}


def evaluate(library: Library, event: EventFacts, tenant: Mapping[str, Any], *,
             explain_all: bool = True) -> Evaluation:
    """Decide which strategy of ``library`` serves ``event`` for ``tenant`` (its registry record:
    its ``owner`` is the ``${tenant_owner}`` builtin, alias ``${owner}``; the selected strategy's own
    ``owner`` key is ``${strategy_owner}``), and what it would run."""
    doc = event.doc()
    index, arm = library.route(event.event_type, event.idempotency_key)
    decision, selected = index.decide(event_type=event.event_type, tenant_id=event.tenant_id,
                                      event_id=event.event_id, doc=doc, bus_event=event.bus_event(),
                                      explain_all=explain_all)
    decision.library_revision = library.revision  # with running canaries: r<revision>+c<canary change>
    if arm is not None:  # a canary covers the event type: the record says which arm decided and why
        decision.arm = arm
    tenant_owner = str(tenant.get("owner") or "")
    builtins = {"tenant": event.tenant_id, "event_id": event.event_id, "tenant_owner": tenant_owner,
                "strategy_owner": selected.strategy.owner if selected else "", "owner": tenant_owner,
                "event_type": event.event_type, "idempotency_key": event.idempotency_key}
    return Evaluation(event, decision, selected, doc, builtins)
