"""Small helpers for integration tests against the embedded runtime."""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.signing import callback_url, signed_headers

CALLBACKS = "/internal/agent/callbacks"


def replay_headers(rt: Any, data: bytes, caller: str = "operator", slot: str = "current",
                   now: float | None = None) -> dict[str, str]:
    """Headers of a replay signed by one of the embedded runtime's replay callers."""
    return signed_headers(rt.deployment.replay_keys[caller][slot], data, now=now, caller=caller)


def signed_callback_url(rt: Any, callback_id: str, valid: float = 600, key: str | None = None) -> str:
    """What the engine hands a plugin or the ops service: the callbacks URL signed for one id."""
    return callback_url(f"{rt.api.url}{CALLBACKS}", key or rt.deployment.callback_keys["current"], callback_id,
                        int(time.time() + valid))


def post_signed(rt: Any, path: str, body: dict[str, Any]) -> requests.Response:
    """A replay signed by the operator caller, or a callback through a URL signed for the body's id."""
    data = json.dumps(body).encode()
    if path == CALLBACKS:
        url = signed_callback_url(rt, body.get("callback_id") or body.get("review_id"))
        return requests.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=30)
    return requests.post(f"{rt.api.url}{path}", data=data, headers=replay_headers(rt, data), timeout=30)


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


def wait_until(check: Any, timeout: float = 60.0, every: float = 0.3) -> Any:
    """The first truthy value of ``check()``; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s")


def waiting_review(rt: Any, suffix: str, rows: int = 250_000) -> tuple[str, str]:
    """A C-1 event of a large report: its workflow waits at the ``approve`` manual review node.
    Returns (workflow id, review id)."""
    from powerx_agent.local.demo import c1_event

    body = c1_event(suffix)
    body["payload"]["job"]["rows"] = rows
    rt.put_event("plugin.job.completed", body)
    workflow_id = workflow_id_for("acme", body["idempotency_key"])
    review_id = wait_until(lambda: next((r["review_id"] for r in get_deps().workflows.open_reviews_for(workflow_id)
                                         if r.get("node_id") == "approve"), None))
    return workflow_id, review_id


CANARY_COUNTS = {"canary_decisions": 40, "canary_matched": 38, "canary_started": 38, "canary_succeeded": 31,
                 "canary_failed": 5, "canary_escalated": 5, "canary_latency_ms_sum": 4200.0, "canary_lat_4": 38,
                 "baseline_decisions": 360, "baseline_matched": 351, "baseline_started": 351,
                 "baseline_succeeded": 340, "baseline_failed": 6, "baseline_escalated": 6,
                 "baseline_latency_ms_sum": 35100.0, "baseline_lat_4": 351}
"""A canary's tallies as the audit stream adds them (``tally_canary``): worse than its baseline, not yet
with enough settled workflows (50 each by default) for the automatic verdict."""


def running_canary(uid: str, directory: Any, counts: dict[str, float] | None = None) -> str:
    """A strategy of its own event type and tenant, v1 active and v2 a 10 % canary started by bob (published
    by alice), its arms tallied with ``counts``; its id."""
    from powerx_agent.ops import strategy as lifecycle

    deps = get_deps()
    sid, event_type = f"cn-{uid}", f"test.canary.{uid}"
    for version, plugin in ((1, "report-renderer"), (2, "archiver")):
        path = directory / f"v{version}" / f"{sid}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"id: {sid}\nversion: {version}\nstatus: approved\nowner: owner@canary.example\n"
                        f"tenants: [cn-{uid}]\non: {{event: {event_type}}}\nwhen: {{path: $.payload.kind, equals: go}}\n"
                        f"flow:\n  nodes:\n    - id: act\n      plugin: {plugin}\n      input: {{version: {version}}}\n")
        lifecycle.publish(deps, path, "alice")
    lifecycle.approve(deps, sid, 1, "bob", "first")
    started = lifecycle.approve_canary(deps, sid, 2, "10%", "bob", "archive instead of render")
    deps.strategies.tally_canary(sid, started["run"], dict(counts or CANARY_COUNTS))
    return sid
