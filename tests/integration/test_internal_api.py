"""The signed internal API on loopback: replay endpoint answers and callback resumption."""

from __future__ import annotations

import json
import time

import requests
from helpers import detail

from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.ingest.signing import signed_headers


def _post(rt, path: str, body: object, key: str | None = None, headers: dict | None = None,
          now: float | None = None) -> requests.Response:
    data = json.dumps(body).encode()
    key = key or rt.deployment.signing_keys["current"]
    sent = signed_headers(key, data, now=now)
    sent.update(headers or {})
    return requests.post(f"{rt.api.url}{path}", data=data, headers=sent, timeout=30)


def _event(uid: str, **overrides) -> dict:
    return {"source": "powerx.replay", "detail-type": "plugin.job.completed", "detail": {**detail(uid), **overrides}}


def test_given_signed_replay_when_posted_then_202_then_200_duplicate_with_workflow_id(rt, uid):
    event = _event(uid)
    first = _post(rt, "/internal/agent/events", event)
    assert first.status_code == 202, first.text
    assert rt.wait_idle(60)
    second = _post(rt, "/internal/agent/events", event)
    assert second.status_code == 200
    assert second.json()["workflow_id"] == workflow_id_for("acme", f"key-{uid}")
    wf = get_deps().workflows.get(second.json()["workflow_id"])
    assert wf["status"] == "SUCCEEDED"


def test_given_previous_key_when_signing_then_accepted_for_rotation(rt, uid):
    response = _post(rt, "/internal/agent/events", _event(uid), key=rt.deployment.signing_keys["previous"])
    assert response.status_code == 202
    rt.wait_idle(60)


def test_given_bad_requests_when_posted_then_specific_answers_without_stack_traces(rt, uid):
    answers = {
        "wrong key": _post(rt, "/internal/agent/events", _event(uid), key="not-the-key"),
        "expired": _post(rt, "/internal/agent/events", _event(uid), now=time.time() - 3600),
        "unsigned": requests.post(f"{rt.api.url}/internal/agent/events", json=_event(uid), timeout=30),
        "suspended tenant": _post(rt, "/internal/agent/events", _event(uid, tenant_id="initech")),
        "invalid": _post(rt, "/internal/agent/events", _event(uid, occurred_at="soon")),
        "oversized": _post(rt, "/internal/agent/events", _event(uid, payload={"x": "y" * 300_000})),
    }
    codes = {name: r.status_code for name, r in answers.items()}
    assert codes == {"wrong key": 401, "expired": 401, "unsigned": 401, "suspended tenant": 403, "invalid": 400,
                     "oversized": 413}
    for response in answers.values():
        assert "Traceback" not in response.text and response.json()["code"]


def test_given_async_plugin_when_callback_arrives_then_node_resumes_and_duplicate_gets_409(rt, uid):
    rt.sandbox.async_callback("provisioner", delay=0.5)
    body = {**detail(uid), "payload": {"request": {"id": uid, "kind": "quota-increase"}}}
    wf = None
    rt.put_event("tenant.request.approved", body, source="powerx.tenants")
    deadline = time.time() + 60
    workflow_id = workflow_id_for("acme", body["idempotency_key"])
    while time.time() < deadline:
        wf = get_deps().workflows.get(workflow_id)
        if wf and wf["status"] == "SUCCEEDED":
            break
        time.sleep(0.2)
    assert wf is not None and wf["status"] == "SUCCEEDED", wf
    assert wf["nodes"]["provision"]["status"] == "SUCCEEDED"
    call = rt.sandbox.plugin_calls("provisioner")[0]
    assert call.status == 202 and call.body["callback_id"].startswith("cb-")
    assert "task_token" not in json.dumps(call.body)
    again = _post(rt, "/internal/agent/callbacks", {"callback_id": call.body["callback_id"], "outcome": "failed",
                                                    "reason": "late duplicate"})
    assert again.status_code == 409 and again.json()["first_outcome"] == "succeeded"
    assert get_deps().workflows.get(workflow_id)["nodes"]["provision"]["status"] == "SUCCEEDED"


def test_given_callback_for_unknown_id_or_bad_body_when_posted_then_404_or_400(rt):
    unknown = _post(rt, "/internal/agent/callbacks", {"callback_id": "cb-" + "0" * 24, "outcome": "succeeded"})
    assert unknown.status_code == 404
    bad = _post(rt, "/internal/agent/callbacks", {"callback_id": "../../etc", "outcome": "succeeded"})
    assert bad.status_code == 400 and bad.json()["code"] == "callback.invalid"


def test_given_replay_answers_when_posted_then_409_conflict_403_cross_tenant_400_without_key(rt, uid):
    event = _event(uid)
    assert _post(rt, "/internal/agent/events", event).status_code == 202
    assert rt.wait_idle(60)
    changed = _event(uid, event_id=f"evt-{uid}-b", payload={"job": {"id": "other", "type": "report", "rows": 1}})
    conflict = _post(rt, "/internal/agent/events", changed)
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency.payload_conflict"
    assert conflict.json()["details"]["first_event_id"] == f"evt-{uid}"
    cross = _post(rt, "/internal/agent/events", _event(f"{uid}g", tenant_id="globex") | {"detail-type":
                                                                                          "plugin.job.failed"})
    assert cross.status_code == 403 and cross.json()["code"] == "tenant.event_type_not_allowed"
    keyless = _event(f"{uid}k")
    del keyless["detail"]["idempotency_key"]
    no_key = _post(rt, "/internal/agent/events", keyless)
    assert no_key.status_code == 400 and no_key.json()["where"] == "detail.idempotency_key"


def test_given_replay_by_named_caller_when_accepted_then_lineage_in_audit_trail(rt, uid):
    event = _event(uid, replay_of=f"evt-{uid}-original")
    response = _post(rt, "/internal/agent/events", event, headers={"X-PowerX-Caller": "ops-console:alice"})
    assert response.status_code == 202
    assert rt.wait_idle(60)
    workflow_id = response.json()["workflow_id"]
    accepted = next(r for r in get_deps().audit.chain(f"WF#{workflow_id}") if r["kind"] == "event.accepted")
    assert accepted["data"]["replayed_by"] == "ops-console:alice"
    assert accepted["data"]["replay_of"] == f"evt-{uid}-original"
