"""Small helpers for integration tests against the embedded runtime."""

from __future__ import annotations

from typing import Any

from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for


def detail(uid: str, *, tenant: str = "acme", key: str | None = None, **payload: Any) -> dict[str, Any]:
    return {"tenant_id": tenant, "event_id": f"evt-{uid}", "idempotency_key": key or f"key-{uid}",
            "occurred_at": "2026-11-28T10:00:00Z", "context": {"actor": "tests"},
            "payload": payload or {"job": {"id": uid, "type": "report", "rows": 10}}}


def send(rt: Any, event_type: str, body: dict[str, Any], source: str = "powerx.plugins",
         timeout: float = 60) -> dict[str, Any] | None:
    rt.put_event(event_type, body, source=source)
    assert rt.wait_idle(timeout=timeout), "the runtime did not become idle"
    if "tenant_id" not in body or "idempotency_key" not in body:
        return None
    return get_deps().workflows.get(workflow_id_for(body["tenant_id"], body["idempotency_key"]))


def chain_kinds(workflow_id: str) -> list[str]:
    return [r["kind"] for r in sorted(get_deps().audit.chain(f"WF#{workflow_id}"), key=lambda r: r["seq"])]
