"""Find events: ``powerx-agent events show ID`` and ``events list`` (docs/runbook.md, "Find an event").

An event is what ingest recorded of one delivery (or several deliveries of one idempotency key): its
``event.*`` audit records (``event.accepted`` / ``.deferred`` / ``.rejected`` / ``.duplicate`` /
``.takeover`` / ``.resumed``), its ``agent_events`` record (status, outcome, the event itself when it
was deferred) and the workflow it started. ``show`` finds it by the envelope's event id, its
idempotency key or the EventBridge ``EventId`` PutEvents returned (``id`` of the delivered event);
``list`` lists those of a time window.

Statuses: ``IN_PROGRESS`` (accepted, being matched), ``COMPLETED`` (matched: a workflow started or
the event was escalated), ``DEFERRED`` (recorded while the orchestrator was off), ``REJECTED`` (with
the rejection code). ``replayable`` holds the event as ``replay --file`` reads it, when the engine kept
it: a deferred event is kept with its record; a rejected one is in the ingest DLQ, an accepted one in
the bus archive.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from powerx_agent.audit.records import workflow_chain
from powerx_agent.errors import AgentError
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.ops.audit import normalise_since
from powerx_agent.status import EventStatus

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

EVENT_KINDS = ("event.accepted", "event.deferred", "event.rejected", "event.duplicate", "event.takeover",
               "event.resumed")
STATUSES = tuple(EventStatus)
DEFAULT_SHOW_WINDOW = "7d"
MAX_ID_CHARS = 256


class EventNotFound(AgentError):
    code = "events.not_found"


@dataclass
class EventView:
    chain: str
    tenant_id: str | None = None
    event_id: str | None = None
    idempotency_key: str | None = None
    event_type: str | None = None
    source: str | None = None
    bus_event_ids: list[str] = field(default_factory=list)
    status: str | None = None
    outcome: str | None = None
    rejection: dict[str, Any] | None = None
    workflow_id: str | None = None
    workflow_status: str | None = None
    strategy_id: str | None = None
    received_at: str | None = None
    deliveries: int = 0
    duplicates: int = 0
    replay_of: str | None = None
    replayable: dict[str, Any] | None = None
    decision: dict[str, Any] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)

    def matches(self, wanted: str) -> bool:
        return wanted in (self.event_id, self.idempotency_key, self.workflow_id, self.chain, *self.bus_event_ids)

    def to_dict(self, full: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not full:
            out.pop("records")
            out.pop("decision")
        return out


def _fold(chain: str, records: list[dict[str, Any]]) -> EventView:
    """One event from its chain's ``event.*`` records (oldest first)."""
    view = EventView(chain)
    for record in sorted(records, key=lambda r: int(r["seq"])):
        kind, data = record.get("kind"), record.get("data") or {}
        if kind not in EVENT_KINDS:
            continue
        view.received_at = view.received_at or record.get("ts")
        view.tenant_id = view.tenant_id or record.get("tenant_id")
        view.event_id = view.event_id or record.get("event_id")
        view.workflow_id = view.workflow_id or record.get("workflow_id")
        view.idempotency_key = view.idempotency_key or data.get("idempotency_key")
        view.event_type = view.event_type or data.get("event_type")
        view.source = view.source or data.get("source")
        view.replay_of = view.replay_of or data.get("replay_of")
        if data.get("bus_event_id") and data["bus_event_id"] not in view.bus_event_ids:
            view.bus_event_ids.append(str(data["bus_event_id"]))
        view.deliveries += 1
        if kind == "event.duplicate":
            view.duplicates += 1
        elif kind == "event.rejected":
            view.status = "REJECTED"
            view.rejection = {k: data.get(k) for k in ("code", "message", "where") if data.get(k)}
        elif kind == "event.deferred":
            view.status = "DEFERRED"
        elif kind in ("event.accepted", "event.takeover", "event.resumed"):
            view.status, view.rejection = "IN_PROGRESS", None
    if view.workflow_id and not view.workflow_id.startswith("wf-"):
        view.workflow_id = None
    return view


def _enrich(deps: Deps, view: EventView, full: bool = False) -> EventView:
    """The ``agent_events`` record (status, outcome, kept event), the workflow, and with ``full`` the
    decision and every record of the chain."""
    if view.status != "REJECTED" and view.tenant_id and view.idempotency_key:
        record = deps.events.get(view.tenant_id, view.idempotency_key)
        if record:
            view.status = record.get("status") or view.status
            view.outcome = record.get("outcome")
            view.strategy_id = record.get("strategy_id")
            view.event_id = view.event_id or record.get("event_id")
            view.event_type = view.event_type or record.get("event_type")
            if record.get("status") == "DEFERRED" and record.get("event_json"):
                view.replayable = json.loads(record["event_json"])
    if view.status == "REJECTED":
        view.workflow_id = None  # a rejected event starts none (its chain may be named after one)
    if view.workflow_id:
        meta = deps.workflows.get(view.workflow_id)
        if meta:
            view.workflow_status = meta.get("status")
            view.strategy_id = view.strategy_id or meta.get("strategy_id")
        else:
            view.workflow_id = view.workflow_id if view.status == "COMPLETED" else None
    if full:
        chain = deps.audit.chain(view.chain)
        view.records = sorted(chain, key=lambda r: int(r["seq"]))
        decisions = [r for r in view.records if r.get("kind") == "decision"]
        if decisions:
            data = decisions[-1].get("data") or {}
            selected = (data.get("decision") or {}).get("selected") or {}
            view.decision = {"status": decisions[-1].get("status"), "reason": data.get("reason"),
                             "strategy_id": selected.get("strategy_id") or decisions[-1].get("strategy_id"),
                             "version": selected.get("version")}
    return view


def _window(deps: Deps, since: str | None, until: str | None) -> dict[str, list[dict[str, Any]]]:
    try:
        since_iso = normalise_since(since)
        until_iso = normalise_since(until) if until else None
    except ValueError as exc:
        raise AgentError(str(exc), code="events.bad_window") from None
    records = deps.audit.since(since_iso, until_iso) if since_iso else deps.audit.scan_all()
    chains: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record.get("kind") in EVENT_KINDS:
            chains[record["pk"]].append(record)
    return chains


def show_event(deps: Deps, wanted: str, tenant: str | None = None, since: str | None = DEFAULT_SHOW_WINDOW) -> EventView:
    """The one event ``wanted`` names (event id, idempotency key, EventBridge EventId, workflow id or
    chain). With ``tenant`` a key is looked up directly, whatever its age; otherwise the ``event.*``
    records of the window are searched."""
    wanted = wanted.strip()
    if not wanted or len(wanted) > MAX_ID_CHARS:
        raise AgentError(f"give an event id, idempotency key or EventBridge EventId (1 to {MAX_ID_CHARS} "
                         "characters)", code="events.bad_id")
    if tenant:
        chain = workflow_chain(workflow_id_for(tenant, wanted))
        records = deps.audit.chain(chain)
        if any(r.get("kind") in EVENT_KINDS for r in records):
            return _enrich(deps, _fold(chain, records), full=True)
    if wanted.startswith(("WF#", "REJ#", "CONFLICT#")) or wanted.startswith("wf-"):
        chain = wanted if "#" in wanted else workflow_chain(wanted)
        records = deps.audit.chain(chain)
        if records:
            return _enrich(deps, _fold(chain, records), full=True)
    found = [view for chain, records in _window(deps, since, None).items()
             if (view := _fold(chain, records)).matches(wanted) and (not tenant or view.tenant_id == tenant)]
    if not found:
        raise EventNotFound(f"no event {wanted!r}" + (f" of tenant {tenant}" if tenant else "")
                            + (f" since {since}" if since else "") + " (searched by event id, idempotency key, "
                            "EventBridge EventId and workflow id; widen the window with --since 30d)")
    if len(found) > 1:
        raise AgentError(f"{wanted!r} names {len(found)} events (" + ", ".join(sorted(v.chain for v in found)[:5])
                         + "): give --tenant, or the chain", code="events.ambiguous")
    return _enrich(deps, found[0], full=True)


def list_events(deps: Deps, tenant: str | None = None, statuses: list[str] | None = None,
                event_type: str | None = None, since: str | None = "1h", until: str | None = None,
                limit: int = 100) -> list[EventView]:
    """Events of the window, newest first, filtered by tenant, status and event type."""
    wanted = {s.upper() for s in statuses or []}
    unknown = sorted(wanted - set(STATUSES))
    if unknown:
        raise AgentError(f"unknown status {', '.join(unknown)}: one of {', '.join(STATUSES)}",
                         code="events.bad_status")
    views = []
    for chain, records in _window(deps, since, until).items():
        view = _fold(chain, records)
        if tenant and view.tenant_id != tenant:
            continue
        if event_type and view.event_type != event_type:
            continue
        views.append(view)
    views.sort(key=lambda v: v.received_at or "", reverse=True)
    out = []
    for view in views:
        _enrich(deps, view)
        if wanted and view.status not in wanted:
            continue
        out.append(view)
        if len(out) >= limit:
            break
    return out
