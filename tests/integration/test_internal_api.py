"""The internal API on loopback: replay endpoint answers (per-caller keys, tenant scope) and callback
resumption through callback URLs signed per call."""

from __future__ import annotations

import json
import time

import requests
from helpers import detail, post_signed, replay_headers, signed_callback_url

from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.signing import signed_headers


def _post(rt, path: str, body: object, key: str | None = None, headers: dict | None = None,
          now: float | None = None, caller: str = "operator") -> requests.Response:
    data = json.dumps(body).encode()
    if path.endswith("/callbacks"):
        return post_signed(rt, path, body)
    sent = signed_headers(key, data, now=now, caller=caller) if key else replay_headers(rt, data, caller, now=now)
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
    response = _post(rt, "/internal/agent/events", _event(uid), key=rt.deployment.replay_keys["operator"]["previous"])
    assert response.status_code == 202
    rt.wait_idle(60)


def test_given_caller_scoped_to_acme_when_replaying_another_tenant_then_403_audited_and_counted(rt, uid):
    own = _post(rt, "/internal/agent/events", _event(uid), caller="acme-backfill")
    assert own.status_code == 202, own.text
    other = _post(rt, "/internal/agent/events", _event(f"{uid}g", tenant_id="globex"), caller="acme-backfill")
    assert other.status_code == 403 and other.json()["code"] == "replay.tenant_not_allowed", other.text
    rejected = [r for r in get_deps().audit.chain(f"WF#{workflow_id_for('globex', f'key-{uid}g')}")
                if r["kind"] == "event.rejected"]
    assert rejected and rejected[0]["data"]["caller"] == "acme-backfill"
    assert rt.wait_idle(60)


def test_given_keys_of_another_purpose_or_caller_when_used_then_401(rt, uid):
    data = json.dumps(_event(uid)).encode()
    # a callback key signs nothing but callback URLs; one caller's key is not another's
    for key, caller in ((rt.deployment.callback_keys["current"], "operator"),
                        (rt.deployment.replay_keys["acme-backfill"]["current"], "operator"),
                        (rt.deployment.replay_keys["operator"]["current"], "nobody")):
        answer = requests.post(f"{rt.api.url}/internal/agent/events", data=data, timeout=30,
                               headers=signed_headers(key, data, caller=caller))
        assert answer.status_code == 401, answer.text
    no_caller = requests.post(f"{rt.api.url}/internal/agent/events", data=data, timeout=30,
                              headers=signed_headers(rt.deployment.replay_keys["operator"]["current"], data))
    assert no_caller.status_code == 401 and no_caller.json()["code"] == "signature.unknown_caller"


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


def test_given_a_callback_url_when_used_for_another_id_tampered_or_expired_then_refused(rt, uid):
    rt.sandbox.async_callback("provisioner", delay=600)  # answers 202 and stays silent
    body = {**detail(uid), "payload": {"request": {"id": uid, "kind": "quota-increase"}}}
    rt.put_event("tenant.request.approved", body, source="powerx.tenants")
    deadline = time.time() + 60
    while time.time() < deadline and not rt.sandbox.plugin_calls("provisioner"):
        time.sleep(0.2)
    call = rt.sandbox.plugin_calls("provisioner")[0]
    url = call.body["callback_url"]
    assert "task_token" not in url and call.body["callback_id"] in url
    other = requests.post(url, json={"callback_id": "cb-" + "1" * 24, "outcome": "succeeded"}, timeout=30)
    assert other.status_code == 403 and other.json()["code"] == "callback.id_mismatch"
    review = requests.post(url, json={"review_id": "rv-" + "1" * 20, "outcome": "approved"}, timeout=30)
    assert review.status_code == 403
    tampered = requests.post(url.replace(call.body["callback_id"], "cb-" + "2" * 24), json={"outcome": "failed"},
                             timeout=30)
    assert tampered.status_code == 401 and tampered.json()["code"] == "signature.invalid"
    expired = requests.post(signed_callback_url(rt, call.body["callback_id"], valid=-1), json={"outcome": "failed"},
                            timeout=30)
    assert expired.status_code == 401 and expired.json()["code"] == "signature.expired"
    replay_key = requests.post(signed_callback_url(rt, call.body["callback_id"],
                                                   key=rt.deployment.replay_keys["operator"]["current"]),
                               json={"outcome": "failed"}, timeout=30)
    assert replay_key.status_code == 401
    assert get_deps().workflows.get_callback(call.body["callback_id"])["status"] == "OPEN"
    done = requests.post(url, json={"outcome": "succeeded", "output": {"ok": True}}, timeout=30)
    assert done.status_code == 200, done.text
    assert rt.wait_idle(60)


def test_given_callback_for_unknown_id_or_bad_body_when_posted_then_404_400_or_401(rt):
    unknown = _post(rt, "/internal/agent/callbacks", {"callback_id": "cb-" + "0" * 24, "outcome": "succeeded"})
    assert unknown.status_code == 404
    bad = _post(rt, "/internal/agent/callbacks", {"callback_id": "cb-" + "0" * 24, "outcome": "done"})
    assert bad.status_code == 400 and bad.json()["code"] == "callback.invalid"
    traversal = _post(rt, "/internal/agent/callbacks", {"callback_id": "../../etc", "outcome": "succeeded"})
    assert traversal.status_code == 401 and traversal.json()["code"] == "signature.invalid"


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
    response = _post(rt, "/internal/agent/events", event, headers={"X-PowerX-Actor": "alice@ops-console"})
    assert response.status_code == 202
    assert rt.wait_idle(60)
    workflow_id = response.json()["workflow_id"]
    accepted = next(r for r in get_deps().audit.chain(f"WF#{workflow_id}") if r["kind"] == "event.accepted")
    assert accepted["data"]["replayed_by"] == "operator (alice@ops-console)"
    assert accepted["data"]["replay_of"] == f"evt-{uid}-original"
