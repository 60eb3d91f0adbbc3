"""The synchronous-answer contract of callback nodes (docs/taskflow.md, "Callback nodes").

A plugin node with ``callback:`` gets a ``callback_url`` signed for that call. The plugin answers
**202** and POSTs the outcome to the URL later, or answers **any other 2xx with the result**, which
completes the node at once. With the default sandbox (200 at once) and the shipped
``provision-on-request-approved`` strategy (heartbeat 5 min), the workflow finishes in seconds: it
does not wait for the heartbeat to escalate it.
"""

from __future__ import annotations

import time

from helpers import chain_kinds, detail

from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.nodes.runner import callback_id_for


def _finished(workflow_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wf = get_deps().workflows.get(workflow_id)
        if wf and wf["status"] not in ("PENDING", "RUNNING"):
            return wf
        time.sleep(0.2)
    raise AssertionError(f"still running after {timeout} s: {get_deps().workflows.get(workflow_id)}")


def test_given_default_sandbox_and_shipped_provision_strategy_when_plugin_answers_200_then_node_completes_at_once(
        rt, uid):
    body = {**detail(uid), "payload": {"request": {"id": uid, "kind": "quota-increase"}}}
    started = time.monotonic()
    rt.put_event("tenant.request.approved", body, source="powerx.tenants")
    workflow_id = workflow_id_for("acme", body["idempotency_key"])
    wf = _finished(workflow_id)
    assert time.monotonic() - started < 60  # far from the 5-minute heartbeat (no timed assertion beyond that)
    assert wf["status"] == "SUCCEEDED", wf
    provision = wf["nodes"]["provision"]
    assert provision["status"] == "SUCCEEDED" and provision["attempts"] == 1
    assert provision["output"]["result"] == "ok"  # the 200's body is the node's output
    assert wf["nodes"]["tell-requester"]["status"] == "SUCCEEDED"
    call = rt.sandbox.plugin_calls("provisioner")[0]
    assert call.status == 200 and call.body["callback_url"].startswith(f"{rt.api.url}/internal/agent/callbacks?")
    callback = get_deps().workflows.get_callback(callback_id_for(workflow_id, "provision"))
    assert callback["status"] == "CLOSED" and callback["outcome"] == "succeeded"
    kinds = chain_kinds(workflow_id)
    # recorded before the waiting state resumed: the next node starts after provision's success
    assert kinds.count("node.succeeded") == 2 and "escalation.opened" not in kinds
    assert kinds.index("node.succeeded") < kinds.index("workflow.succeeded")


def test_given_plugin_answering_202_when_it_calls_back_through_its_url_then_node_completes(rt, uid):
    rt.sandbox.async_callback("provisioner", delay=0.3)
    body = {**detail(uid), "payload": {"request": {"id": uid, "kind": "new-environment"}}}
    rt.put_event("tenant.request.approved", body, source="powerx.tenants")
    wf = _finished(workflow_id_for("acme", body["idempotency_key"]))
    assert wf["status"] == "SUCCEEDED" and wf["nodes"]["provision"]["output"]["result"] == "ok (async)"
    assert rt.sandbox.plugin_calls("provisioner")[0].status == 202
