"""Ingest on the embedded runtime: bad envelopes and tenant scope are rejected with a specific code,
kept in the ingest DLQ with the reason, audited and counted; duplicates and conflicts are absorbed."""

from __future__ import annotations

import json

import pytest
from helpers import chain_kinds, detail, send

from powerx_agent import spec
from powerx_agent.adapters.metrics import read_emf_totals
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for


def _dlq_reasons(rt) -> dict[str, dict]:
    """Every message in the ingest DLQ (hidden while reading so each is seen once, then made visible)."""
    sqs = rt.client("sqs")
    url = rt.deployment.queue_urls[spec.INGEST_DLQ.name]
    found: dict[str, dict] = {}
    handles: list[str] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                    MessageAttributeNames=["All"]).get("Messages", [])
        if not batch:
            break
        for message in batch:
            handles.append(message["ReceiptHandle"])
            body = json.loads(message["Body"])
            event = body.get("event") or {}
            detail = event.get("detail") if isinstance(event, dict) else None
            found[json.dumps(detail, sort_keys=True, default=str)] = body.get("reason", {})
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return found


def _rejected_total(rt, code: str) -> float:
    totals = read_emf_totals(rt.client("logs"), rt.environment["METRICS_LOG_GROUP"])
    return sum(v for (name, dims), v in totals.items() if name == spec.METRICS["rejected"] and ("code", code) in dims)


@pytest.mark.parametrize(("mutate", "code"), [
    (lambda d: d.pop("tenant_id"), "envelope.missing_field"),
    (lambda d: d.update(occurred_at="yesterday"), "envelope.invalid_field"),
    (lambda d: d.update(surprise=1), "envelope.unknown_field"),
    (lambda d: d.update(tenant_id="nobody"), "tenant.unknown"),
    (lambda d: d.update(tenant_id="initech"), "tenant.suspended"),
    (lambda d: d.update(tenant_id="globex"), "tenant.event_type_not_allowed"),
    (lambda d: d.update(payload={"blob": "x" * (257 * 1024)}), "envelope.too_large"),
], ids=["missing-tenant", "bad-time", "unknown-field", "unknown-tenant", "suspended", "type-not-allowed", "too-large"])
def test_given_bad_event_when_ingested_then_rejected_with_code_dlq_audit_and_metric(rt, uid, mutate, code):
    body = detail(uid)
    mutate(body)
    before = _rejected_total(rt, code)
    if code == "envelope.too_large":
        # PutEvents itself refuses entries over 256 KiB, so the oversized event reaches ingest directly
        payload, error = rt.invoke("ingest", {"source": "powerx.plugins", "detail-type": "plugin.job.failed",
                                              "detail": body})
        assert error is None and payload["code"] == code
    else:
        send(rt, "plugin.job.failed", body)
    reasons = _dlq_reasons(rt)
    reason = reasons[json.dumps(body, sort_keys=True, default=str)]
    assert reason["code"] == code and reason["message"]
    assert _rejected_total(rt, code) == before + 1
    records = [r for r in get_deps().audit.scan_all() if r["kind"] == "event.rejected"
               and r.get("data", {}).get("code") == code]
    assert records, "the rejection was not audited"


def test_given_same_key_different_payload_when_ingested_then_conflict_not_silent_drop(rt, uid):
    first = detail(uid)
    send(rt, "plugin.job.completed", first)
    second = {**detail(uid), "event_id": f"evt-{uid}-b", "payload": {"job": {"id": "other", "type": "report",
                                                                             "rows": 5}}}
    send(rt, "plugin.job.completed", second)
    reasons = _dlq_reasons(rt)
    assert reasons[json.dumps(second, sort_keys=True)]["code"] == "idempotency.payload_conflict"
    assert chain_kinds(workflow_id_for("acme", first["idempotency_key"])).count("workflow.started") == 1


def test_given_orchestrator_flag_off_when_event_arrives_then_recorded_deferred_not_matched(rt, uid):
    deps = get_deps()
    deps.strategies.put_flags({"agent-orchestrator": {"default": False}})
    try:
        rt.clock.advance(deps.settings.flags_cache_seconds + 0.2)  # the flag store's cache runs out
        body = detail(uid)
        wf = send(rt, "plugin.job.completed", body)
        assert wf is None
        assert deps.events.get("acme", body["idempotency_key"])["status"] == "DEFERRED"
        assert "event.deferred" in chain_kinds(workflow_id_for("acme", body["idempotency_key"]))
    finally:
        deps.strategies.put_flags({})
        rt.clock.advance(deps.settings.flags_cache_seconds + 0.2)
