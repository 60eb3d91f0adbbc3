"""Values the engine cannot hold are refused before anything runs, on every path, and end defined.

- Through the bus: a deep payload and unstorable numbers are rejected by ingest with their code and
  path, audited (``event.rejected``), counted (one fixed ``tenant`` dimension for unregistered
  tenants), kept in the ingest DLQ, and no idempotency key is claimed.
- UTF-8 is what counts towards 256 KiB: a 180 KB CJK event goes through the replay API and the bus.
- Callbacks: output that cannot be stored is refused with 400 and the callback stays open; a failure
  after validation releases the claim (503) and the plugin's retry closes it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import requests
from helpers import detail, replay_headers, signed_callback_url

from powerx_agent import spec
from powerx_agent.adapters.metrics import read_emf_totals
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import UNREGISTERED_TENANT, workflow_id_for


def _post_raw(rt, path: str, raw: bytes, callback_id: str | None = None) -> requests.Response:
    if callback_id:
        return requests.post(signed_callback_url(rt, callback_id), data=raw, timeout=30,
                             headers={"Content-Type": "application/json"})
    return requests.post(f"{rt.api.url}{path}", data=raw, headers=replay_headers(rt, raw), timeout=30)


def _rejections(rt, code: str) -> dict[tuple, float]:
    totals = read_emf_totals(rt.client("logs"), rt.environment["METRICS_LOG_GROUP"])
    return {dims: v for (name, dims), v in totals.items() if name == spec.METRICS["rejected"] and ("code", code) in dims}


def _wait_for(predicate, timeout: float = 30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.2)
    return predicate()


def test_given_500_deep_payload_on_the_bus_when_ingested_then_rejected_audited_counted_and_no_key_claimed(rt, uid):
    body = detail(uid)
    deep: object = 1
    for _ in range(500):
        deep = {"x": deep}
    body["payload"] = {"deep": deep}
    since = datetime.now(UTC).isoformat()
    rt.put_event("plugin.job.completed", body)
    assert rt.wait_idle(60)
    rejected = [r for r in get_deps().audit.since(since)
                if r["kind"] == "event.rejected" and r.get("event_id") == body["event_id"]]
    assert len(rejected) == 1 and rejected[0]["data"]["code"] == "envelope.too_deep", rejected
    assert rejected[0]["data"]["where"].startswith("detail.payload.deep.x")
    assert get_deps().events.get("acme", body["idempotency_key"]) is None  # nothing claimed, nothing stuck
    counted = _rejections(rt, "envelope.too_deep")
    assert any(("tenant", "acme") in dims for dims in counted), counted


def test_given_unknown_or_hostile_tenant_ids_when_rejected_then_counted_under_one_fixed_dimension(rt, uid):
    for tenant in (f"nobody-{uid}", "../../x<script>", f"Z{uid}"):
        payload, error = rt.invoke("ingest", {"source": "powerx.plugins", "detail-type": "plugin.job.completed",
                                              "detail": detail(f"{uid}{len(tenant)}", tenant=tenant)})
        assert error is None and payload["outcome"] == "rejected", payload
    totals = read_emf_totals(rt.client("logs"), rt.environment["METRICS_LOG_GROUP"])
    tenants = {dict(dims).get("tenant") for (name, dims) in totals if name == spec.METRICS["rejected"]}
    assert not any(uid in str(t) or "script" in str(t) for t in tenants), tenants
    assert UNREGISTERED_TENANT in tenants


def test_given_180kb_cjk_event_when_replayed_then_accepted_as_eventbridge_counts_utf8(rt, uid):
    text = "\u6f22\u5b57\u304b\u306a" * 15_000  # 60,000 characters, 180,000 UTF-8 bytes (360,000 escaped)
    body = detail(uid)
    body["payload"] = {"job": {"id": uid, "type": "report", "rows": 10}, "note": text}
    event = {"source": "powerx.replay", "detail-type": "plugin.job.completed", "detail": body}
    raw = json.dumps(event, ensure_ascii=False).encode()
    answer = _post_raw(rt, "/internal/agent/events", raw)
    assert answer.status_code == 202, answer.text
    assert rt.wait_idle(90)
    wf = get_deps().workflows.get(answer.json()["workflow_id"])
    assert wf is not None and wf["status"] in ("SUCCEEDED", "RUNNING"), wf


def _waiting_callback(rt, uid: str) -> tuple[str, str]:
    rt.sandbox.async_callback("provisioner", delay=600)  # answers 202 and stays silent
    body = {**detail(uid), "payload": {"request": {"id": uid, "kind": "quota-increase"}}}
    rt.put_event("tenant.request.approved", body, source="powerx.tenants")
    assert _wait_for(lambda: rt.sandbox.plugin_calls("provisioner"))
    callback_id = rt.sandbox.plugin_calls("provisioner")[0].body["callback_id"]
    assert _wait_for(lambda: (get_deps().workflows.get_callback(callback_id) or {}).get("status") == "OPEN")
    return callback_id, workflow_id_for("acme", body["idempotency_key"])


def test_given_unstorable_callback_output_when_posted_then_400_and_callback_stays_open_for_a_good_one(rt, uid):
    callback_id, workflow_id = _waiting_callback(rt, uid)
    for literal, code in (("1" * 40, "callback.invalid_number"), ("NaN", "callback.invalid_number"),
                          ("1e999", "callback.invalid_number"),
                          ('{"x":' * 300 + "1" + "}" * 300, "callback.too_deep")):
        raw = f'{{"callback_id": "{callback_id}", "outcome": "succeeded", "output": {{"v": {literal}}}}}'.encode()
        answer = _post_raw(rt, "/internal/agent/callbacks", raw, callback_id)
        assert answer.status_code == 400 and answer.json()["code"] == code, answer.text
        assert get_deps().workflows.get_callback(callback_id)["status"] == "OPEN"
    good = json.dumps({"callback_id": callback_id, "outcome": "succeeded", "output": {"environment": "env-1"}})
    assert _post_raw(rt, "/internal/agent/callbacks", good.encode(), callback_id).status_code == 200
    assert rt.wait_idle(60)
    wf = get_deps().workflows.get(workflow_id)
    assert wf["status"] == "SUCCEEDED" and wf["nodes"]["provision"]["output"] == {"environment": "env-1"}


def test_given_failure_after_validation_when_callback_posted_then_503_open_and_retry_closes_it(rt, uid):
    callback_id, workflow_id = _waiting_callback(rt, uid)
    outage = {"on": True}

    def fail_once(**kwargs):  # Step Functions unreachable, SDK retries included, until the outage ends
        if outage["on"]:
            from botocore.exceptions import EndpointConnectionError
            raise EndpointConnectionError(endpoint_url="https://states.example")

    events = get_deps().client("stepfunctions").meta.events
    events.register("before-send.sfn.SendTaskSuccess", fail_once)
    try:
        good = json.dumps({"callback_id": callback_id, "outcome": "succeeded", "output": {"environment": "e"}})
        first = _post_raw(rt, "/internal/agent/callbacks", good.encode(), callback_id)
        assert first.status_code == 503 and first.json()["code"] == "callback.unavailable", first.text
        assert get_deps().workflows.get_callback(callback_id)["status"] == "OPEN"
        assert get_deps().workflows.get(workflow_id)["nodes"]["provision"]["status"] == "RUNNING"
        outage["on"] = False
        retry = _post_raw(rt, "/internal/agent/callbacks", good.encode(), callback_id)
        assert retry.status_code == 200, retry.text
    finally:
        events.unregister("before-send.sfn.SendTaskSuccess", fail_once)
    assert rt.wait_idle(60)
    assert get_deps().workflows.get_callback(callback_id)["status"] == "CLOSED"
    assert get_deps().workflows.get(workflow_id)["status"] == "SUCCEEDED"
