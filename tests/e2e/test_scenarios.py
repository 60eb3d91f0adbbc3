"""C-1 and C-2 through the embedded runtime: EventBridge → ingest → SQS → matcher → Step Functions
→ node Lambdas → sandbox services, asserted on DynamoDB, the audit trail and the sandbox."""

from __future__ import annotations

import pytest

from powerx_agent.deps import get_deps
from powerx_agent.local.demo import run_c1, run_c2


@pytest.fixture()
def c1(rt, uid):
    return run_c1(rt, f"-{uid}")


def test_given_report_job_completed_when_put_on_bus_then_workflow_succeeds_with_parallel_nodes(c1):
    failed = [what for what, holds in c1.expectations if not holds]
    assert not failed, failed
    nodes = c1.workflow["nodes"]
    assert c1.execution_status == "SUCCEEDED"
    assert {n: nodes[n]["status"] for n in nodes} == {
        "render": "SUCCEEDED", "archive": "SUCCEEDED", "tell-owner": "SUCCEEDED", "approve": "SKIPPED"}
    # nobody is awaited: the whole run is one Express execution of the flow's head
    assert c1.workflow["state_machine_type"] == "EXPRESS" and not c1.workflow.get("continuation_arn")
    assert "'approve'" in c1.workflow["type_reason"] and "handed_off_at" not in c1.workflow


def test_given_c1_when_plugin_called_then_request_carries_strategy_context_and_headers(c1):
    render = next(c for c in c1.downstream if c["path"] == "/plugin/runtime/report-renderer/execute")
    body = render["body"]
    assert body["strategy_id"] == "report-on-job-completed"
    assert body["tenant_id"] == "acme" and body["node_id"] == "render"
    assert body["input"] == {"job": "42", "name": "daily-42", "rows": 1200}  # ${rows} keeps its type
    assert render["headers"]["Idempotency-Key"] == f"{c1.workflow_id}:render"
    assert render["headers"]["X-Tenant-Id"] == "acme"
    assert render["headers"]["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")


def test_given_c1_when_sent_twice_then_one_workflow_and_duplicate_audited(c1):
    kinds = [r["kind"] for r in c1.audit]
    assert kinds.count("workflow.started") == 1
    assert kinds.count("event.duplicate") == 1
    assert len([c for c in c1.downstream if "report-renderer" in c["path"]]) == 1


def test_given_c1_when_done_then_audit_chain_is_complete_and_unaltered(c1):
    from powerx_agent.audit.chain import check_chain

    records = get_deps().audit.chain(f"WF#{c1.workflow_id}")
    assert check_chain(f"WF#{c1.workflow_id}", records) == ([], [])
    assert [r["seq"] for r in sorted(records, key=lambda r: r["seq"])] == list(range(1, len(records) + 1))


def test_given_unmatched_request_when_put_on_bus_then_escalated_to_manual_review(rt, uid):
    result = run_c2(rt, f"-{uid}")
    failed = [what for what, holds in result.expectations if not holds]
    assert not failed, failed
    review = next(c for c in result.downstream if c["path"] == "/ops/manual-review")
    assert review["body"]["tenant_id"] == "acme"
    assert "task_token" not in review["body"]
    assert get_deps().workflows.get(result.workflow_id) is None  # no workflow was started
