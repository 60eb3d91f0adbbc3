"""Replays: validate like ingest, answer duplicates and conflicts at once, else put on the bus.

An event recorded as DEFERRED (the orchestrator was off) is put on the bus again once the flag is on:
ingest reopens the record and runs it (202 ``resumed``). The authenticated caller (and the person it
names, if any) becomes ``replayed_by`` in the envelope, which ingest writes into the audit trail. A
caller acts only for the tenants its key is scoped to (``replay.tenant_not_allowed``, 403).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from powerx_agent import telemetry
from powerx_agent.errors import EventRejected
from powerx_agent.ingest.envelope import parse_event
from powerx_agent.ingest.routing import check_routed
from powerx_agent.ingest.service import check_tenant_scope, workflow_id_for
from powerx_agent.signing import Caller

if TYPE_CHECKING:
    from powerx_agent.deps import Deps


def submit_replay(deps: Deps, event: Any, *, caller: Caller, replayed_by: str) -> tuple[int, dict[str, Any]]:
    incoming = parse_event(event)
    check_routed(incoming.source)
    env = incoming.envelope
    telemetry.bind(tenant_id=env.tenant_id, event_id=env.event_id, workflow_id=workflow_id_for(env.tenant_id, env.key),
                   traceparent=env.context.get("traceparent"))
    if not caller.may_act_for(env.tenant_id):
        raise EventRejected(f"caller '{caller.caller_id}' may not replay events of tenant '{env.tenant_id}'",
                            code="replay.tenant_not_allowed", where="detail.tenant_id",
                            details={"caller": caller.caller_id})
    if not env.idempotency_key:
        raise EventRejected("a replay must carry an explicit idempotency_key", code="envelope.missing_field",
                            where="detail.idempotency_key")
    check_tenant_scope(deps.tenants.get(env.tenant_id), env.tenant_id, incoming.event_type)
    existing = deps.events.get(env.tenant_id, env.key)
    if existing is not None and existing.get("payload_hash") != incoming.payload_hash:
        raise EventRejected(f"idempotency key '{env.key}' was used by another payload",
                            code="idempotency.payload_conflict", where="detail.idempotency_key",
                            details={"first_event_id": existing.get("event_id"),
                                     "workflow_id": existing.get("workflow_id")})
    resumable = (existing is not None and existing.get("status") == "DEFERRED"
                 and deps.flags.enabled("agent-orchestrator", {"tenant_id": env.tenant_id}))
    if existing is not None and not resumable:
        return 200, {"status": "duplicate", "workflow_id": existing.get("workflow_id"),
                     "event_status": existing.get("status")}
    detail = {**env.model_dump(mode="json", exclude_none=True), "replayed_by": replayed_by}
    detail["occurred_at"] = event["detail"]["occurred_at"] if isinstance(event.get("detail"), dict) else \
        detail["occurred_at"]
    (put,) = deps.bus.put([{
        "Source": incoming.source, "DetailType": incoming.event_type,
        # UTF-8 as EventBridge counts it: escaped (ensure_ascii) CJK text would count six bytes a character
        "Detail": json.dumps(detail, ensure_ascii=False, separators=(",", ":"))}])
    if not put.ok:
        return 503, {"code": "bus.put_failed", "message": f"{put.error_code}: {put.error_message}"}
    return 202, {"status": "resumed" if resumable else "accepted", "workflow_id": workflow_id_for(env.tenant_id, env.key),
                 "bus_event_id": put.event_id}
