"""Manual review and manual takeover on the embedded runtime: approve / reject through the callback
API and the CLI, duplicate and unsigned callbacks, retry (from a node), fill by hand, stop. Each
test checks ``agent_workflows``, the audit trail and what the sandbox received."""

from __future__ import annotations

import json
from typing import Any

import requests
from helpers import chain_kinds, detail, post_signed, send
from test_node_runner_faults import wait_for
from typer.testing import CliRunner

from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for

cli = CliRunner()


def big_report(rt: Any, uid: str) -> tuple[str, dict[str, Any]]:
    """A report with more than 100000 rows: the ``approve`` manual review node waits."""
    body = detail(uid, job={"id": uid, "type": "report", "rows": 250_000})
    rt.put_event("plugin.job.completed", body)
    workflow_id = workflow_id_for("acme", body["idempotency_key"])
    review = wait_for(lambda: next((r for r in get_deps().workflows.open_reviews_for(workflow_id)
                                    if r.get("node_id") == "approve"), None), timeout=60)
    assert review is not None, "the approve node did not open a review"
    return workflow_id, review


def finished(workflow_id: str, timeout: float = 30) -> dict[str, Any]:
    wf = wait_for(lambda: (lambda w: w if w and w["status"] not in ("PENDING", "RUNNING") else None)(
        get_deps().workflows.get(workflow_id)), timeout=timeout)
    assert wf is not None, get_deps().workflows.get(workflow_id)
    return wf


def run(*args: str) -> Any:
    result = cli.invoke(app, list(args))
    return result


def audit_records(workflow_id: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in get_deps().audit.chain(f"WF#{workflow_id}") if r["kind"] == kind]


def test_given_waiting_review_when_approved_through_callback_api_then_resumes_and_duplicate_409_bad_sig_401(rt, uid):
    workflow_id, review = big_report(rt, uid)
    assert "task_token" not in json.dumps([c.body for c in rt.sandbox.calls("/ops/manual-review")])
    unsigned = requests.post(f"{rt.api.url}/internal/agent/callbacks", timeout=30,
                             json={"review_id": review["review_id"], "outcome": "approved"})
    # the ops service decides through the URL the work order carried, signed for this review only
    (order,) = [c for c in rt.sandbox.calls("/ops/manual-review") if c.body["workflow_id"] == workflow_id]
    signed = requests.post(order.body["callback_url"], json={"outcome": "approved"}, timeout=30)
    assert signed.status_code == 200, signed.text  # control: the signed one is accepted ...
    assert unsigned.status_code == 401 and unsigned.json()["code"]
    wf = finished(workflow_id)
    assert wf["status"] == "SUCCEEDED" and wf["nodes"]["approve"]["status"] == "SUCCEEDED"
    duplicate = post_signed(rt, "/internal/agent/callbacks", {"review_id": review["review_id"],
                                                              "outcome": "rejected", "reason": "too late"})
    assert duplicate.status_code == 409 and duplicate.json()["first_outcome"] == "approved"
    assert get_deps().workflows.get(workflow_id)["nodes"]["approve"]["status"] == "SUCCEEDED"
    assert get_deps().workflows.get_review(review["review_id"])["status"] == "CLOSED"
    kinds = chain_kinds(workflow_id)
    assert kinds.count("review.requested") == 1 and kinds.count("review.closed") == 1
    # the node's own success record is written by the callback and may land on either side of the
    # Complete state's record; the review closes before the execution resumes
    assert kinds.index("review.requested") < kinds.index("review.closed") < kinds.index("workflow.succeeded")
    orders = [c for c in rt.sandbox.calls("/ops/manual-review") if c.body["workflow_id"] == workflow_id]
    assert len(orders) == 1 and orders[0].body["queue"] == "finance"


def test_given_waiting_review_when_listed_and_approved_from_cli_then_resumes_with_actor_audited(rt, uid):
    workflow_id, review = big_report(rt, uid)
    listed = run("review", "list", "--queue", "finance", "--format", "json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert review["review_id"] in {r["review_id"] for r in rows}
    assert "task_token" not in listed.stdout
    approved = run("review", "approve", review["review_id"], "--by", "alice", "--reason", "checked")
    assert approved.exit_code == 0, approved.output
    wf = finished(workflow_id)
    assert wf["status"] == "SUCCEEDED" and wf["nodes"]["approve"]["output"] == {"approved_by": "alice"}
    closed = audit_records(workflow_id, "review.closed")
    assert len(closed) == 1 and closed[0]["data"]["actor"] == "alice" and closed[0]["status"] == "APPROVED"
    again = run("review", "approve", review["review_id"], "--by", "bob")
    assert again.exit_code == 1 and "approved" in again.output


def test_given_waiting_review_when_rejected_from_cli_then_workflow_fails_with_audit_and_no_new_escalation(rt, uid):
    workflow_id, review = big_report(rt, uid)
    no_reason = run("review", "reject", review["review_id"], "--by", "carol")
    assert no_reason.exit_code == 2  # --reason is required
    rejected = run("review", "reject", review["review_id"], "--by", "carol", "--reason", "numbers look wrong")
    assert rejected.exit_code == 0, rejected.output
    wf = finished(workflow_id)
    assert wf["status"] == "FAILED" and wf["failure_reason"] == "review_rejected"
    assert wf["nodes"]["approve"]["status"] == "FAILED"
    assert wf["nodes"]["approve"]["error"]["type"] == "ReviewRejected"
    kinds = chain_kinds(workflow_id)
    assert "workflow.failed" in kinds and "escalation.opened" not in kinds
    closed = audit_records(workflow_id, "review.closed")[0]
    assert closed["data"]["actor"] == "carol" and closed["data"]["reason"] == "numbers look wrong"
    (failed,) = audit_records(workflow_id, "node.failed")  # the rejected node's milestone, once
    assert failed["node_id"] == "approve" and failed["data"]["type"] == "ReviewRejected"
    execution = rt.client("stepfunctions").describe_execution(executionArn=wf["execution_arn"])
    assert execution["status"] == "FAILED"
    assert not get_deps().workflows.open_reviews_for(workflow_id)
    assert workflow_id not in run("repair").output  # a rejection is a complete trail: nothing to repair


def test_given_escalated_workflow_when_node_filled_by_hand_and_retried_then_finishes_reusing_it(rt, uid):
    rt.sandbox.fail_always("report-renderer", status=422)
    wf = send(rt, "plugin.job.completed", detail(uid))
    assert wf["status"] == "ESCALATED"
    workflow_id = wf["workflow_id"]
    shown = run("workflow", "show", workflow_id, "--format", "json")
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.stdout)
    assert view["execution"]["status"] == "FAILED"
    assert view["decision"]["strategy_id"] == "report-on-job-completed"
    assert {n["node_id"]: n["status"] for n in view["nodes"]}["render"] == "ESCALATED"
    assert len(view["open_reviews"]) == 1
    filled = run("workflow", "fill", workflow_id, "render", "--output", '{"url": "s3://by-hand/report.pdf"}',
                 "--by", "dave", "--format", "json")
    assert filled.exit_code == 0, filled.output
    assert json.loads(filled.stdout)["from_status"] == "ESCALATED"
    node = get_deps().workflows.get(workflow_id)["nodes"]["render"]
    assert node["status"] == "SUCCEEDED" and node["filled_by"] == "dave"
    rt.sandbox.reset()
    retried = run("workflow", "retry", workflow_id, "--by", "dave", "--format", "json")
    assert retried.exit_code == 0, retried.output
    plan = json.loads(retried.stdout)
    assert plan["generation"] == 2 and plan["execution_name"] == f"{workflow_id}-r1"
    assert plan["reuse"] == ["render"] and "archive" in plan["reset"]
    assert rt.wait_idle(60)
    wf = get_deps().workflows.get(workflow_id)
    assert wf["status"] == "SUCCEEDED" and wf["generation"] == 2
    assert wf["history"][0]["status"] == "ESCALATED"
    assert {n: i["status"] for n, i in wf["nodes"].items()} == {
        "render": "SUCCEEDED", "archive": "SUCCEEDED", "tell-owner": "SUCCEEDED", "approve": "SKIPPED"}
    assert wf["nodes"]["archive"]["generation"] == 2
    assert rt.sandbox.plugin_calls("report-renderer") == []  # reused, not called again
    archive = rt.sandbox.plugin_calls("s3-archiver")
    assert len(archive) == 1 and archive[0].headers["Idempotency-Key"] == f"{workflow_id}:archive:g2"
    kinds = chain_kinds(workflow_id)
    assert {"node.filled", "workflow.retried", "node.reset", "node.reused"} <= set(kinds)
    assert kinds[-1] == "workflow.succeeded"
    assert audit_records(workflow_id, "workflow.retried")[0]["data"]["actor"] == "dave"
    assert not get_deps().workflows.open_reviews_for(workflow_id)  # the escalation was closed by the retry


def test_given_succeeded_workflow_when_retried_from_a_node_then_only_it_and_later_nodes_run_again(rt, uid):
    wf = send(rt, "plugin.job.completed", detail(uid))
    assert wf["status"] == "SUCCEEDED"
    rt.sandbox.reset()
    unknown = run("workflow", "retry", wf["workflow_id"], "--from", "nope")
    assert unknown.exit_code == 1 and "no node" in unknown.output
    retried = run("workflow", "retry", wf["workflow_id"], "--from", "archive", "--by", "erin")
    assert retried.exit_code == 0, retried.output
    assert rt.wait_idle(60)
    after = get_deps().workflows.get(wf["workflow_id"])
    assert after["status"] == "SUCCEEDED" and after["generation"] == 2
    assert rt.sandbox.plugin_calls("report-renderer") == [] and rt.sandbox.calls("/notifications") == []
    assert len(rt.sandbox.plugin_calls("s3-archiver")) == 1
    resets = {r["node_id"]: r["data"]["from_status"] for r in audit_records(wf["workflow_id"], "node.reset")}
    assert resets == {"archive": "SUCCEEDED", "approve": "SKIPPED"}
    assert after["nodes"]["archive"]["history"][0]["status"] == "SUCCEEDED"
    running = run("workflow", "retry", wf["workflow_id"])  # a second retry of the same generation works
    assert running.exit_code == 0
    assert rt.wait_idle(60)
    assert get_deps().workflows.get(wf["workflow_id"])["generation"] == 3


def test_given_waiting_review_when_filled_by_hand_then_execution_resumes_and_backlog_closes(rt, uid):
    workflow_id, review = big_report(rt, uid)
    open_before = get_deps().workflows.count_open_reviews()
    filled = run("workflow", "fill", workflow_id, "approve", "--output", '{"approved": "by phone"}', "--by", "frank")
    assert filled.exit_code == 0, filled.output
    wf = finished(workflow_id)
    assert wf["status"] == "SUCCEEDED"
    assert wf["nodes"]["approve"]["filled_by"] == "frank"
    assert get_deps().workflows.get_review(review["review_id"])["outcome"] == "filled"
    assert get_deps().workflows.count_open_reviews() == open_before - 1
    record = audit_records(workflow_id, "node.filled")[0]
    assert record["data"]["via"] == "review" and record["data"]["resumed"] is True


def test_given_running_workflows_when_stopped_by_id_and_by_tenant_then_aborted_stopped_and_audited(rt, uid):
    first, _ = big_report(rt, uid + "a")
    second, _ = big_report(rt, uid + "b")
    stopped = run("workflow", "stop", first, "--by", "gina")
    assert stopped.exit_code == 0, stopped.output
    wf = get_deps().workflows.get(first)
    assert wf["status"] == "STOPPED" and wf["stopped_by"] == "gina"
    sfn = rt.client("stepfunctions")
    # AWS reports ABORTED; moto 5.2.5 ends a stopped execution that waited on a task token only
    # once the token is released, and then reports FAILED: either way it ends without escalating
    status = wait_for(lambda: (lambda s: s if s != "RUNNING" else None)(
        sfn.describe_execution(executionArn=wf["execution_arn"])["status"]), 10)
    assert status in ("ABORTED", "FAILED")
    history = sfn.get_execution_history(executionArn=wf["execution_arn"])["events"]
    assert not any(e.get("stateEnteredEventDetails", {}).get("name") == "Escalate" for e in history)
    assert "escalation.opened" not in chain_kinds(first)
    assert not get_deps().workflows.open_reviews_for(first)
    assert audit_records(first, "workflow.stopped")[0]["data"]["actor"] == "gina"
    listed = run("workflow", "list", "--tenant", "acme", "--status", "RUNNING", "--format", "json")
    assert second in {r["workflow_id"] for r in json.loads(listed.stdout)}
    by_tenant = run("workflow", "stop", "--tenant", "acme", "--by", "gina", "--format", "json")
    assert by_tenant.exit_code == 0, by_tenant.output
    assert second in {r["workflow_id"] for r in json.loads(by_tenant.stdout)}
    assert get_deps().workflows.get(second)["status"] == "STOPPED"
    again = run("workflow", "stop", first, "--by", "gina")
    assert again.exit_code == 1 and "takeover.not_running" in again.output
    assert rt.wait_idle(30)  # nothing left running
    # every node the stop settled has its outcome in the chain, so repair finds nothing missing
    kind = {"SKIPPED": "node.skipped", "FAILED": "node.stopped"}  # stopped: not a failure of its own
    for workflow_id in (first, second):
        nodes = get_deps().workflows.get(workflow_id)["nodes"]
        settled = {n for n, item in nodes.items() if item.get("status") in kind}
        assert settled, nodes
        for node_id in settled:
            assert [r for r in audit_records(workflow_id, kind[nodes[node_id]["status"]])
                    if r.get("node_id") == node_id], (workflow_id, node_id)
    repaired = run("repair", "--format", "json", "--tenant", "acme")
    assert not [f for f in json.loads(repaired.stdout)["findings"]
                if f["code"] == "audit.missing" and f["subject"] in (f"WF#{first}", f"WF#{second}")]
