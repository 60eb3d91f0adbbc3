"""Escalation that cannot be lost: when the ops service (or notifications) stays down past the Escalate
state's retries, the review stays OPEN with its work order unsent; `repair` finds it and `repair --apply`
sends it again with the same idempotency key, exactly once."""

from __future__ import annotations

import json

from helpers import detail, send
from typer.testing import CliRunner

from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps

runner = CliRunner()


def _repair(*args: str) -> tuple[int, list[dict]]:
    out = runner.invoke(app, ["repair", "--by", "oncall", "--format", "json", *args])
    data = json.loads(out.output)
    findings = data["findings"] if isinstance(data, dict) else data
    return out.exit_code, [f for f in findings if f["code"] == "escalation.unsent"]


def test_given_ops_down_for_good_then_back_when_repair_applies_then_the_work_order_is_delivered_exactly_once(rt, uid):
    rt.sandbox.fail_always("report-renderer", 503)  # the workflow must escalate
    rt.sandbox.service_down("ops")
    wf = send(rt, "plugin.job.completed", detail(uid), timeout=120)
    assert wf["status"] == "ESCALATED"
    (review,) = get_deps().workflows.open_reviews_for(wf["workflow_id"])
    review_id = review["review_id"]
    to_ops = [c for c in rt.sandbox.calls("/ops/manual-review") if c.headers.get("Idempotency-Key") == review_id]
    assert len(to_ops) >= 3 and {c.status for c in to_ops} == {503}  # the Escalate state retried, in vain
    assert not get_deps().workflows.get_review(review_id).get("ops_sent")

    # still down: repair sees it and cannot deliver it; the finding stays, nothing is marked sent
    code, found = _repair()
    assert code == 1 and [f["subject"] for f in found] == [review_id]
    assert "ops and notification never delivered" in found[0]["problem"]
    code, found = _repair("--apply")
    assert code == 1 and found[0]["applied"] is False
    assert not get_deps().workflows.get_review(review_id).get("ops_sent")

    rt.sandbox.service_up("ops")
    code, found = _repair("--apply")
    assert [(f["subject"], f["applied"]) for f in found] == [(review_id, True)]
    delivered = [c for c in rt.sandbox.calls("/ops/manual-review")
                 if c.headers.get("Idempotency-Key") == review_id and c.status < 300]
    assert len(delivered) == 1
    assert delivered[0].body["review_id"] == review_id and delivered[0].body["workflow_id"] == wf["workflow_id"]
    notes = [c for c in rt.sandbox.calls("/notifications/agent-task")
             if c.headers.get("Idempotency-Key") == review_id and c.status < 300]
    assert len(notes) == 1 and notes[0].body["type"] == "escalated" and notes[0].body["to"]
    item = get_deps().workflows.get_review(review_id)
    assert item["ops_sent"] and item["notified"] and item["status"] == "OPEN"  # delivered, still for a person

    # a second run finds nothing to resend and sends nothing
    code, found = _repair("--apply")
    assert found == []
    assert len([c for c in rt.sandbox.calls("/ops/manual-review")
                if c.headers.get("Idempotency-Key") == review_id and c.status < 300]) == 1
    kinds = [r["kind"] for r in get_deps().audit.chain(f"WF#{wf['workflow_id']}")]
    assert kinds.count("escalation.resent") == 1
