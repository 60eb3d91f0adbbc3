"""ingest → matcher: the body of a match-queue message."""

from __future__ import annotations

from typing import Any

from powerx_agent.handoffs import Handoff


class TenantRef(Handoff):
    """The registry record's fields the later steps use."""

    tenant_id: str
    name: str | None = None
    owner: str | None = None
    notify: list[str] | None = None
    allowed_plugins: list[str] | None = None


class EventRef(Handoff):
    event_type: str
    source: str
    bus_event_id: str | None = None
    event_id: str
    idempotency_key: str
    occurred_at: str
    detail: dict[str, Any]  # the validated envelope (ingest/envelope.py), as JSON


class TraceRef(Handoff):
    """The W3C trace context of the event's span (``powerx_agent.trace.continue_or_start``)."""

    traceparent: str
    trace_id: str = ""
    parent_span_id: str = ""
    continued: str = "false"


class MatchMessage(Handoff):
    workflow_id: str
    tenant: TenantRef
    event: EventRef
    trace: TraceRef
    received_at: float | None = None
