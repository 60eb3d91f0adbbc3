"""Idempotency governance on the embedded runtime: concurrency, crash and lease take-over,
per-tenant record expiry, payload conflicts, first result for duplicates, DEFERRED events re-run."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from helpers import chain_kinds, detail
from typer.testing import CliRunner

from powerx_agent import spec
from powerx_agent.adapters.metrics import read_emf_totals
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for


def _tenant(uid: str, ttl_hours: float = 24) -> str:
    """A tenant of this test only, so its metrics are not shared with other tests."""
    tenant_id = f"t-{uid}"
    get_deps().tenants.put({"tenant_id": tenant_id, "status": "active", "name": f"Test {uid}",
                            "owner": f"owner@{uid}.example", "notify": [f"owner@{uid}.example"],
                            "allowed_event_types": ["plugin.job.completed"], "allowed_plugins": ["*"],
                            "idempotency_ttl_hours": ttl_hours})
    return tenant_id


def _event(body: dict[str, Any]) -> dict[str, Any]:
    return {"source": "powerx.plugins", "detail-type": "plugin.job.completed", "detail": body}


def _duplicates_total(rt, tenant_id: str) -> float:
    totals = read_emf_totals(rt.client("logs"), rt.environment["METRICS_LOG_GROUP"])
    return sum(v for (name, dims), v in totals.items()
               if name == spec.METRICS["duplicates"] and ("tenant", tenant_id) in dims)


def _let_lease_expire(rt, tenant_id: str, key: str) -> None:
    record = get_deps().events.get(tenant_id, key)
    assert record is not None and record["status"] == "IN_PROGRESS"
    rt.clock.advance(max(0.0, float(record["lease_until"]) - rt.clock.time()) + 0.2)


def _let_flag_cache_expire(rt) -> None:
    rt.clock.advance(get_deps().settings.flags_cache_seconds + 0.2)


def test_given_50_concurrent_deliveries_of_one_event_when_ingested_then_exactly_one_workflow(rt, uid):
    tenant_id = _tenant(uid)
    body = detail(uid, tenant=tenant_id)
    event = _event(body)
    workflow_id = workflow_id_for(tenant_id, body["idempotency_key"])
    gate = threading.Barrier(50)

    def deliver(_: int) -> tuple[Any, str | None]:
        gate.wait(timeout=30)
        return rt.invoke("ingest", event)

    with ThreadPoolExecutor(max_workers=50) as pool:
        first_round = list(pool.map(deliver, range(50)))
    accepted = [p for p, e in first_round if e is None and p["outcome"] == "accepted"]
    duplicates = [p for p, e in first_round if e is None and p["outcome"] == "duplicate"]
    in_progress = [p for p, e in first_round if e is not None]
    assert len(accepted) == 1
    assert len(accepted) + len(duplicates) + len(in_progress) == 50
    assert all("being processed by another delivery" in p["errorMessage"] for p in in_progress)
    assert rt.wait_idle(60)
    # the deliveries that met the lease are retried (as EventBridge does): they end as duplicates
    retried = [rt.invoke("ingest", event) for _ in in_progress]
    assert all(e is None and p["outcome"] == "duplicate" for p, e in retried)
    assert {p["workflow_id"] for p in duplicates + [p for p, _ in retried]} == {workflow_id}
    kinds = chain_kinds(workflow_id)
    assert kinds.count("workflow.started") == 1 and kinds.count("event.accepted") == 1
    assert kinds.count("event.duplicate") == 49
    assert _duplicates_total(rt, tenant_id) == 49
    record = get_deps().events.get(tenant_id, body["idempotency_key"])
    assert record["status"] == "COMPLETED" and record["attempts"] == 1
    assert get_deps().workflows.get(workflow_id)["status"] == "SUCCEEDED"


class _FailMatchQueueSendOnce:
    """A crash between the conditional write and the match: the SQS send to the match queue fails once."""

    def __init__(self, queue_url: str, marker: str) -> None:
        self.queue_url, self.marker, self.fired = queue_url, marker, 0

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        if not self.fired and params.get("QueueUrl") == self.queue_url and self.marker in params.get("MessageBody", ""):
            self.fired += 1
            raise ConnectionError("injected crash after the idempotency claim")


def test_given_crash_after_claim_when_redelivered_after_lease_then_taken_over_once_and_completed(rt, uid):
    body = detail(uid)
    event = _event(body)
    key = body["idempotency_key"]
    workflow_id = workflow_id_for("acme", key)
    sqs = get_deps().client("sqs")
    fault = _FailMatchQueueSendOnce(rt.deployment.queue_urls[spec.MATCH_QUEUE.name], f"evt-{uid}")
    sqs.meta.events.register("provide-client-params.sqs.SendMessage", fault)
    try:
        crashed, crash_error = rt.invoke("ingest", event)
    finally:
        sqs.meta.events.unregister("provide-client-params.sqs.SendMessage", fault)
    assert fault.fired == 1 and crash_error is not None and "injected crash" in crashed["errorMessage"]
    assert get_deps().workflows.get(workflow_id) is None
    # a redelivery inside the lease does not run it twice: it fails and is retried later
    early, early_error = rt.invoke("ingest", event)
    assert early_error is not None and "being processed" in early["errorMessage"]
    _let_lease_expire(rt, "acme", key)
    retried, retry_error = rt.invoke("ingest", event)
    assert retry_error is None and retried == {"outcome": "accepted", "workflow_id": workflow_id}
    assert rt.wait_idle(60)
    assert get_deps().workflows.get(workflow_id)["status"] == "SUCCEEDED"
    kinds = chain_kinds(workflow_id)
    assert kinds.count("event.takeover") == 1 and kinds.count("workflow.started") == 1
    takeover = next(r for r in get_deps().audit.chain(f"WF#{workflow_id}") if r["kind"] == "event.takeover")
    assert takeover["data"]["attempts"] == 2
    assert get_deps().events.get("acme", key)["status"] == "COMPLETED"


def test_given_crash_after_claim_when_event_came_through_the_bus_then_lambda_async_retry_completes_it_once(rt, uid):
    """No manual re-invoke: the event goes onto the bus, the first ingest attempt crashes after the
    claim, and the runtime's Lambda asynchronous retry (first retry after ``async_retry_delays[0]``,
    longer than the lease, as Lambda's one minute is longer than the AWS lease) takes it over."""
    body = detail(uid)
    key = body["idempotency_key"]
    workflow_id = workflow_id_for("acme", key)
    assert rt.async_retry_delays[0] > rt.idempotency_lease_seconds  # what makes the first retry a takeover
    sqs = get_deps().client("sqs")
    fault = _FailMatchQueueSendOnce(rt.deployment.queue_urls[spec.MATCH_QUEUE.name], f"evt-{uid}")
    sqs.meta.events.register("provide-client-params.sqs.SendMessage", fault)
    try:
        rt.put_event("plugin.job.completed", body)
        assert rt.wait_idle(90)  # waits for the delivery, its retry and the workflow
    finally:
        sqs.meta.events.unregister("provide-client-params.sqs.SendMessage", fault)
    assert fault.fired == 1
    assert get_deps().workflows.get(workflow_id)["status"] == "SUCCEEDED"
    kinds = chain_kinds(workflow_id)
    assert kinds.count("event.accepted") == 1 and kinds.count("event.takeover") == 1
    assert kinds.count("workflow.started") == 1 and kinds.count("workflow.succeeded") == 1
    record = get_deps().events.get("acme", key)
    assert record["status"] == "COMPLETED" and record["attempts"] == 2
    dlq = [json.loads(m["Body"]) for m in rt.dlq_messages(spec.INGEST_DLQ.name)]
    assert not [m for m in dlq if (m.get("requestPayload") or {}).get("detail", {}).get("event_id") == f"evt-{uid}"]


def test_given_expired_lease_when_many_claim_at_once_then_exactly_one_takes_over(rt, uid):
    store = get_deps().events
    args = {"tenant_id": "acme", "idempotency_key": f"lease-{uid}", "payload_hash": "h" * 64,
            "event_id": f"evt-{uid}", "workflow_id": f"wf-{uid}", "event_type": "plugin.job.completed",
            "lease_seconds": 5.0, "ttl_seconds": 3600.0}
    assert store.claim(**args, now=rt.clock.time() - 10).kind == "new"  # a crashed attempt, lease long gone
    gate = threading.Barrier(12)

    def claim(_: int) -> str:
        gate.wait(timeout=30)
        return store.claim(**args).kind

    with ThreadPoolExecutor(max_workers=12) as pool:
        kinds = list(pool.map(claim, range(12)))
    assert kinds.count("takeover") == 1
    assert set(kinds) == {"takeover", "in_progress"}
    assert store.get("acme", args["idempotency_key"])["attempts"] == 2


def test_given_tenant_expiry_setting_when_claimed_then_expires_at_follows_it_and_expired_key_is_new(rt, uid):
    short = _tenant(uid, ttl_hours=2)
    deps = get_deps()
    ttl = {}
    for tenant_id in (short, "globex"):
        body = detail(f"{uid}-{tenant_id}", tenant=tenant_id)
        before = rt.clock.time()
        payload, error = rt.invoke("ingest", _event(body))
        assert error is None and payload["outcome"] == "accepted"
        record = deps.events.get(tenant_id, body["idempotency_key"])
        ttl[tenant_id] = record["expires_at"] - before
    assert ttl[short] == pytest.approx(2 * 3600, abs=5)
    assert ttl["globex"] == pytest.approx(48 * 3600, abs=5)  # config/tenants.yaml: idempotency_ttl_hours 48
    assert rt.wait_idle(60)
    # once the record has expired (DynamoDB TTL deletes it lazily), the key may be used again
    store = deps.events
    args = {"tenant_id": short, "idempotency_key": f"exp-{uid}", "payload_hash": "a" * 64, "event_id": "e1",
            "workflow_id": "wf-x", "event_type": "plugin.job.completed", "lease_seconds": 5.0,
            "ttl_seconds": 60.0}
    assert store.claim(**args).kind == "new"
    assert store.claim(**{**args, "payload_hash": "b" * 64}).kind == "conflict"
    assert store.claim(**{**args, "payload_hash": "b" * 64}, now=rt.clock.time() + 120).kind == "new"


def test_given_same_key_when_delivered_again_then_first_workflow_id_and_conflict_names_first_event(rt, uid):
    body = detail(uid)
    first, _ = rt.invoke("ingest", _event(body))
    assert first["outcome"] == "accepted"
    assert rt.wait_idle(60)
    again, _ = rt.invoke("ingest", _event({**body, "event_id": f"evt-{uid}-again"}))
    assert again == {"outcome": "duplicate", "workflow_id": first["workflow_id"]}
    changed = {**body, "event_id": f"evt-{uid}-changed", "payload": {"job": {"id": uid, "type": "report", "rows": 11}}}
    conflict, _ = rt.invoke("ingest", _event(changed))
    assert conflict["outcome"] == "rejected" and conflict["code"] == "idempotency.payload_conflict"
    rejected = [r for r in get_deps().audit.scan_all() if r["kind"] == "event.rejected"
                and r.get("event_id") == f"evt-{uid}-changed"]
    assert rejected and rejected[0]["data"]["details"]["first_event_id"] == f"evt-{uid}"
    assert chain_kinds(first["workflow_id"]).count("workflow.started") == 1


def test_given_orchestrator_off_when_event_deferred_then_replay_with_flag_on_runs_it_once(rt, uid, tmp_path):
    deps = get_deps()
    body = detail(uid)
    key = body["idempotency_key"]
    workflow_id = workflow_id_for("acme", key)
    deps.strategies.put_flags({"agent-orchestrator": {"default": False}})
    try:
        _let_flag_cache_expire(rt)
        deferred, _ = rt.invoke("ingest", _event(body))
        assert deferred["outcome"] == "deferred"
        again, _ = rt.invoke("ingest", _event(body))  # still off: absorbed, still deferred
        assert again["outcome"] == "duplicate"
        assert deps.events.get("acme", key)["status"] == "DEFERRED"
    finally:
        deps.strategies.put_flags({})
        _let_flag_cache_expire(rt)
    events_file = tmp_path / "deferred.jsonl"
    events_file.write_text(json.dumps(_event(body)) + "\n")
    result = CliRunner().invoke(app, ["replay", "--file", str(events_file), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["summary"]["sent"] == 1
    assert rt.wait_idle(60)
    assert deps.workflows.get(workflow_id)["status"] == "SUCCEEDED"
    assert deps.events.get("acme", key)["status"] == "COMPLETED"
    kinds = chain_kinds(workflow_id)
    assert kinds.count("event.deferred") == 1 and kinds.count("event.resumed") == 1
    assert kinds.count("workflow.started") == 1
    resumed = next(r for r in deps.audit.chain(f"WF#{workflow_id}") if r["kind"] == "event.resumed")
    assert resumed["data"]["replayed_by"].startswith("powerx-agent replay")
