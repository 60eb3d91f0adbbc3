"""Ingest: envelope → tenant scope → idempotency → context → match queue (README.md, "How an event flows"; docs/intake.md).

Bad events are rejected with a specific code, audited, counted and kept in the ingest DLQ with the
reason; they are never retried (retrying cannot fix them) and never lost.

The envelope model (pydantic, ~45 ms to import) is imported on the first event, not with this module:
the ingest handler's module import stays close to a bare ``import boto3``, and the first event
pays for it (``bench/ingest.py`` reports both).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from powerx_agent import spec, telemetry
from powerx_agent.audit.kinds import AuditKind
from powerx_agent.audit.records import AuditEntry, workflow_chain
from powerx_agent.errors import EventRejected, RetryableError
from powerx_agent.json_limits import dumps as dumps_any
from powerx_agent.trace import continue_or_start

UNREGISTERED_TENANT = "unregistered"
"""The ``tenant`` metric dimension of every rejection whose tenant is not a registered one (unknown,
malformed, or an envelope refused before its tenant was read): raw input never becomes a dimension."""

MAX_DLQ_BODY_BYTES = 1000 * 1024
"""Under the queues' 1 MiB message limit (``spec.QueueSpec.max_message_bytes``): a rejection record
larger than this (only an event refused for its size can be) keeps the reason and a head of the event;
the bus archive keeps the whole event."""

if TYPE_CHECKING:
    from powerx_agent.deps import Deps
    from powerx_agent.handoffs.match import MatchMessage
    from powerx_agent.ingest.envelope import IncomingEvent


def workflow_id_for(tenant_id: str, idempotency_key: str) -> str:
    """Deterministic: the same (tenant, key) always names the same workflow and execution."""
    digest = hashlib.sha256(f"{tenant_id}\x1f{idempotency_key}".encode()).hexdigest()
    return f"wf-{tenant_id[:20]}-{digest[:24]}"


@dataclass(frozen=True)
class IngestResult:
    outcome: str  # accepted | duplicate | rejected | deferred
    workflow_id: str | None = None
    code: str | None = None
    message: str | None = None
    where: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def check_tenant_scope(tenant: dict[str, Any] | None, tenant_id: str, event_type: str) -> None:
    if tenant is None:
        raise EventRejected(f"tenant '{tenant_id}' is not registered", code="tenant.unknown", where="detail.tenant_id")
    if tenant.get("status") != "active":
        raise EventRejected(f"tenant '{tenant_id}' is {tenant.get('status', 'not active')}",
                            code="tenant.suspended", where="detail.tenant_id")
    allowed = tenant.get("allowed_event_types") or []
    if "*" not in allowed and event_type not in allowed:
        raise EventRejected(f"event type '{event_type}' is not allowed for tenant '{tenant_id}'",
                            code="tenant.event_type_not_allowed", where="detail-type")


def build_context(incoming: IncomingEvent, tenant: dict[str, Any], workflow_id: str) -> MatchMessage:
    """The match-queue message of an accepted event."""
    # pydantic is loaded by now (the envelope model); see the module docstring
    from powerx_agent.handoffs.match import EventRef, MatchMessage, TenantRef, TraceRef

    env = incoming.envelope
    # without a traceparent of its own, the event's W3C trace is the X-Ray trace that ingests it
    trace = continue_or_start(env.context.get("traceparent"), new_trace_id=telemetry.w3c_trace_id_of_xray())
    return MatchMessage(
        workflow_id=workflow_id,
        tenant=TenantRef(**{k: tenant.get(k) for k in ("tenant_id", "name", "owner", "notify", "allowed_plugins")}),
        event=EventRef(
            event_type=incoming.event_type, source=incoming.source, bus_event_id=incoming.bus_event_id,
            event_id=env.event_id, idempotency_key=env.key, occurred_at=env.occurred_at.isoformat(),
            detail=env.model_dump(mode="json", exclude_none=True)),
        trace=TraceRef(**trace),
        received_at=round(time.time(), 3),
    )


class Ingestor:
    def __init__(self, deps: Deps, metrics: Any) -> None:
        self.deps = deps
        self.metrics = metrics
        self.settings = deps.settings

    def handle(self, event: dict[str, Any]) -> IngestResult:
        with telemetry.work("ingest"):
            result = self._handle(event)
            if result.outcome == "rejected":
                telemetry.logger.warning(f"event rejected: {result.code}",
                                         extra={"code": result.code, "where": result.where, "reason": result.message})
            else:
                telemetry.logger.info(f"event {result.outcome}", extra={"outcome": result.outcome})
            return result

    def _handle(self, event: dict[str, Any]) -> IngestResult:
        # pydantic is imported on the first event, not with this module (see the module docstring)
        from powerx_agent.ingest.envelope import parse_event

        try:
            incoming = parse_event(event)
        except EventRejected as exc:
            tenant_id = _peek(event, "tenant_id")
            return self._reject(event, exc, tenant_id=tenant_id, event_id=_peek(event, "event_id"),
                                registered=self._registered(tenant_id))
        env = incoming.envelope
        workflow_id = workflow_id_for(env.tenant_id, env.key)
        telemetry.bind(tenant_id=env.tenant_id, event_id=env.event_id, workflow_id=workflow_id,
                       event_type=incoming.event_type)
        tenant = self.deps.tenants.get(env.tenant_id)
        try:
            check_tenant_scope(tenant, env.tenant_id, incoming.event_type)
        except EventRejected as exc:
            return self._reject(event, exc, tenant_id=env.tenant_id, event_id=env.event_id, workflow_id=workflow_id,
                                registered=tenant is not None)
        assert tenant is not None
        violations = self._contract_violations(incoming.event_type, env.payload)
        if violations:
            first = violations[0]
            exc = EventRejected(f"the payload breaks the {incoming.event_type} contract: {first}",
                                code="payload.schema_violation", where=first.where,
                                details={"violations": [str(v) for v in violations]})
            return self._reject(event, exc, tenant_id=env.tenant_id, event_id=env.event_id, registered=True,
                                workflow_id=workflow_id)
        ttl_hours = float(tenant.get("idempotency_ttl_hours") or self.settings.idempotency_default_ttl_hours)
        claim = self.deps.events.claim(
            tenant_id=env.tenant_id, idempotency_key=env.key, payload_hash=incoming.payload_hash,
            event_id=env.event_id, workflow_id=workflow_id, event_type=incoming.event_type,
            lease_seconds=self.settings.idempotency_lease_seconds, ttl_seconds=ttl_hours * 3600)
        common = {"tenant_id": env.tenant_id, "event_id": env.event_id, "workflow_id": workflow_id}
        if claim.kind == "conflict":
            exc = EventRejected(
                f"idempotency key '{env.key}' was first used by event '{claim.record.get('event_id')}' "
                "with a different payload", code="idempotency.payload_conflict", where="detail.idempotency_key",
                details={"first_event_id": claim.record.get("event_id")})
            return self._reject(event, exc, tenant_id=env.tenant_id, event_id=env.event_id, workflow_id=workflow_id,
                                chain=f"CONFLICT#{env.tenant_id}#{env.key}#{incoming.payload_hash[:16]}",
                                registered=True)
        orchestrator_on = self.deps.flags.enabled("agent-orchestrator", {"tenant_id": env.tenant_id})
        if claim.kind == "deferred" and orchestrator_on:
            # recorded while the orchestrator was off; this (re)delivery runs it now (exactly one wins)
            claim = self.deps.events.reopen(env.tenant_id, env.key,
                                            lease_seconds=self.settings.idempotency_lease_seconds)
        if claim.kind in ("duplicate", "deferred"):
            return self._duplicate(incoming, claim.record, common)
        if claim.kind == "in_progress":
            # another delivery holds the lease: fail this one so it is retried after the lease
            raise RetryableError(f"event {env.tenant_id}/{env.key} is being processed by another delivery",
                                 code="idempotency.in_progress")
        context = build_context(incoming, tenant, workflow_id)
        telemetry.bind(traceparent=context.trace.traceparent)
        if not orchestrator_on:
            self.deps.events.finish(env.tenant_id, env.key, status="DEFERRED", outcome="deferred",
                                    event_json=kept_event(event, incoming))
            self.deps.audit.append(AuditEntry("event.deferred", workflow_chain(workflow_id), status="DEFERRED",
                                              data={"reason": "feature flag agent-orchestrator is off",
                                                    "event_type": incoming.event_type, "idempotency_key": env.key,
                                                    "bus_event_id": incoming.bus_event_id}, **common))
            return IngestResult("deferred", workflow_id=workflow_id)
        lineage = {"replay_of": env.replay_of, "replayed_by": env.replayed_by, "bus_event_id": incoming.bus_event_id}
        if claim.kind == "new":
            self.deps.audit.append(AuditEntry(
                AuditKind.EVENT_ACCEPTED, workflow_chain(workflow_id), status="ACCEPTED",
                data={"event_type": incoming.event_type, "source": incoming.source,
                      "idempotency_key": env.key, "payload_hash": incoming.payload_hash,
                      "traceparent": context.trace.traceparent, **_xray(), **lineage}, **common))
        elif claim.kind == "takeover":
            # the previous attempt claimed the key and stopped before handing the event on
            self.deps.audit.append(AuditEntry(
                AuditKind.EVENT_TAKEOVER, workflow_chain(workflow_id), status="ACCEPTED",
                data={"reason": "the previous attempt's lease expired before it finished",
                      "attempts": claim.record.get("attempts"), "first_event_id": claim.record.get("event_id"),
                      "lease_until": claim.record.get("lease_until"), **lineage}, **common))
        elif claim.kind == "resumed":
            self.deps.audit.append(AuditEntry(
                AuditKind.EVENT_RESUMED, workflow_chain(workflow_id), status="ACCEPTED",
                data={"reason": "deferred while agent-orchestrator was off; run on redelivery",
                      "attempts": claim.record.get("attempts"), "first_event_id": claim.record.get("event_id"),
                      **lineage}, **common))
        # UTF-8, not escaped: a CJK event would otherwise take six bytes a character in the message
        self.deps.queues.send(self.settings.match_queue_url, context.to_json())
        return IngestResult("accepted", workflow_id=workflow_id)

    def _contract_violations(self, event_type: str, payload: Any) -> list[Any]:
        """The event type's payload contract (``EVENT_CONTRACTS_DIR``, else the checkout's config/event-types),
        loaded once per container."""
        from powerx_agent.payload_contracts import default_directory, load_contracts

        contracts = self.deps.process_state.get("contracts")
        if contracts is None:
            configured = self.settings.event_contracts_dir
            contracts = self.deps.process_state["contracts"] = load_contracts(configured or default_directory())
        contract = contracts.get(event_type)
        return contract.violations(payload) if contract is not None else []

    def _duplicate(self, incoming: IncomingEvent, record: dict[str, Any], common: dict[str, Any]) -> IngestResult:
        env = incoming.envelope
        self.deps.audit.append(AuditEntry(AuditKind.EVENT_DUPLICATE, workflow_chain(common["workflow_id"]),
                                          status="DUPLICATE",
                                          data={"first_event_id": record.get("event_id"),
                                                "first_status": record.get("status"),
                                                "bus_event_id": incoming.bus_event_id,
                                                "replay_of": env.replay_of, "replayed_by": env.replayed_by},
                                          **common))
        self.metrics.add(spec.METRICS["duplicates"], 1, tenant=env.tenant_id)
        return IngestResult("duplicate", workflow_id=record.get("workflow_id") or common["workflow_id"])

    def _registered(self, tenant_id: str | None) -> bool:
        from powerx_agent.ingest.envelope import TENANT_RE

        return bool(tenant_id and re.match(TENANT_RE, tenant_id) and self.deps.tenants.get(tenant_id) is not None)

    def _reject(self, event: Any, exc: EventRejected, *, tenant_id: str | None, event_id: str | None,
                registered: bool, workflow_id: str | None = None, chain: str | None = None) -> IngestResult:
        # the event may be anything (deep, huge numbers): serialised without recursion, never refused
        text = dumps_any(event, sort_keys=True)
        fingerprint = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]
        chain = chain or (workflow_chain(workflow_id) if workflow_id else f"REJ#{fingerprint}")
        self.deps.queues.send(self.settings.ingest_dlq_url, _dlq_body(exc, text), {"code": exc.code})
        found = {k: v for k, v in (("idempotency_key", _peek(event, "idempotency_key")),
                                   ("bus_event_id", _top(event, "id")), ("event_type", _top(event, "detail-type")))
                 if v}  # what `events show` finds a rejected event by
        self.deps.audit.append(AuditEntry("event.rejected", chain, tenant_id=tenant_id, event_id=event_id,
                                          workflow_id=workflow_id, status="REJECTED",
                                          data={**exc.to_dict(), **found}))
        self.metrics.add(spec.METRICS["rejected"], 1, tenant=tenant_id if registered else UNREGISTERED_TENANT,
                         code=exc.code)
        return IngestResult("rejected", workflow_id=None, code=exc.code, message=exc.message, where=exc.where)


def _dlq_body(exc: EventRejected, event_text: str) -> str:
    """``{"reason", "event"}``; past :data:`MAX_DLQ_BODY_BYTES` the event is kept as a head of its
    JSON (``event_head``) with its size, and the bus archive holds it whole."""
    reason = json.dumps(exc.to_dict(), ensure_ascii=False, default=str)
    body = f'{{"reason":{reason},"event":{event_text}}}'
    size = len(body.encode("utf-8", "surrogatepass"))
    if size <= MAX_DLQ_BODY_BYTES:
        return body.encode("utf-8", "replace").decode("utf-8")
    head = event_text[:64 * 1024].encode("utf-8", "replace").decode("utf-8")
    return json.dumps({"reason": exc.to_dict(), "event_truncated": True, "event_bytes": size,
                       "event_head": head}, ensure_ascii=False, default=str)


def _xray() -> dict[str, str]:
    """The X-Ray trace that accepted the event (on AWS), kept in its audit record."""
    trace_id = telemetry.xray_trace_id()
    return {"xray_trace_id": trace_id} if trace_id else {}


def kept_event(event: dict[str, Any], incoming: IncomingEvent) -> str:
    """The event as ``replay --file`` reads it back (EventBridge's ``id``, ``time``, ``source``,
    ``detail-type`` and ``detail``), compact JSON."""
    kept = {"id": incoming.bus_event_id, "time": event.get("time"), "source": incoming.source,
            "detail-type": incoming.event_type, "detail": event.get("detail")}
    return dumps_any({k: v for k, v in kept.items() if v is not None})


def _top(event: Any, field: str) -> str | None:
    value = event.get(field) if isinstance(event, dict) else None
    return _text(value, 256)


def _peek(event: Any, field: str) -> str | None:
    detail = event.get("detail") if isinstance(event, dict) else None
    value = detail.get(field) if isinstance(detail, dict) else None
    return _text(value, 128)


def _text(value: Any, limit: int) -> str | None:
    """``value`` when it is a short string that can be written as UTF-8 (a lone surrogate cannot: it
    would fail the audit record's hash and its DynamoDB write), else None."""
    if not isinstance(value, str) or len(value) > limit:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value
