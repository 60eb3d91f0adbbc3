"""Tenant scope beyond ingest: strategies apply only to their own tenants, and a taskflow
may only call plugins the tenant is allowed to use (refused when built, audited, escalated)."""

from __future__ import annotations

from helpers import chain_kinds, detail, send

from powerx_agent.deps import get_deps
from powerx_agent.escalation.service import review_id_for
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.strategy.decision import listed


def test_given_globex_report_job_when_strategy_needs_a_plugin_globex_may_not_use_then_refused_and_escalated(rt, uid):
    # globex may use report-renderer only; report-on-job-completed also calls s3-archiver
    body = detail(uid, tenant="globex")
    wf = send(rt, "plugin.job.completed", body)
    workflow_id = workflow_id_for("globex", body["idempotency_key"])
    assert wf is None, "no workflow may be created for a refused taskflow"
    kinds = chain_kinds(workflow_id)
    assert "decision" in kinds and "escalation.opened" in kinds and "workflow.started" not in kinds
    opened = next(r for r in get_deps().audit.chain(f"WF#{workflow_id}") if r["kind"] == "escalation.opened")
    assert opened["escalation_reason"] == "plugin_not_allowed"
    assert opened["data"]["details"] == {"strategy_id": "report-on-job-completed", "plugins": ["s3-archiver"]}
    review = get_deps().workflows.get_review(review_id_for(workflow_id, "plugin_not_allowed"))
    assert review is not None and review["reason"] == "plugin_not_allowed" and review["tenant_id"] == "globex"
    ops = [r for r in rt.sandbox.requests if r.path == "/ops/manual-review" and r.body.get("workflow_id") == workflow_id]
    told = [r for r in rt.sandbox.requests if r.path == "/notifications/agent-task"
            and r.body.get("workflow_id") == workflow_id]
    assert len(ops) == 1 and len(told) == 1 and told[0].body["to"] == ["ops@globex.example"]
    assert not [c for c in rt.sandbox.plugin_calls("report-renderer") if c.body.get("job") == uid]
    record = get_deps().events.get("globex", body["idempotency_key"])
    assert record["status"] == "COMPLETED" and record["outcome"] == "escalated"


def test_given_strategy_for_acme_only_when_another_tenant_sends_its_event_then_not_a_candidate(rt, uid):
    # a tenant of this test that may send tenant.request.approved and use every plugin
    other = f"o-{uid}"
    get_deps().tenants.put({"tenant_id": other, "status": "active", "name": "Other", "owner": f"ops@{uid}.example",
                            "notify": [f"ops@{uid}.example"], "allowed_event_types": ["*"],
                            "allowed_plugins": ["*"], "idempotency_ttl_hours": 24})
    payload = {"request": {"id": uid, "kind": "quota-increase"}}
    theirs = detail(uid, tenant=other, **payload)
    assert send(rt, "tenant.request.approved", theirs, source="powerx.tenants") is None
    workflow_id = workflow_id_for(other, theirs["idempotency_key"])
    decision = next(r for r in get_deps().audit.chain(f"WF#{workflow_id}") if r["kind"] == "decision")
    candidates = [c["strategy_id"] for c in listed(decision["data"]["decision"])]
    assert "provision-on-request-approved" not in candidates
    assert decision["data"]["decision"]["selected"] is None
    assert "escalation.opened" in chain_kinds(workflow_id)
    # the same event from acme, the strategy's tenant, is a candidate and runs
    rt.sandbox.async_callback("provisioner", delay=0.2)
    mine = detail(f"{uid}a", tenant="acme", **payload)
    wf = send(rt, "tenant.request.approved", mine, source="powerx.tenants")
    assert wf is not None and wf["strategy_id"] == "provision-on-request-approved"
