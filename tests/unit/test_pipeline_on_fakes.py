"""Ingestor + Matcher end to end on the in-memory fakes (powerx_agent.testing): C-1 and C-2 without moto."""

from __future__ import annotations

import json

import pytest

from powerx_agent.audit.chain import check_chain
from powerx_agent.handoffs.match import MatchMessage
from powerx_agent.ingest.service import Ingestor, workflow_id_for
from powerx_agent.local.demo import c1_event, c2_event
from powerx_agent.match.service import Matcher
from powerx_agent.testing.fakes import FakeDeps, bus_event, fake_http


@pytest.fixture()
def deps() -> FakeDeps:
    return FakeDeps.create()


def run_pipeline(deps: FakeDeps, event_type: str, detail: dict, source: str) -> tuple[dict, list[dict]]:
    ingested = Ingestor(deps, deps.metrics()).handle(bus_event(event_type, detail, source)).to_dict()
    matched = []
    for body in deps.queues.drain(deps.settings.match_queue_url):
        metrics = deps.metrics()
        matched.append(Matcher(deps, metrics).handle(MatchMessage.parse(body).to_dict()))
        metrics.flush()
    return ingested, matched


def kinds(deps: FakeDeps, workflow_id: str) -> list[str]:
    return [r["kind"] for r in deps.audit.chain(f"WF#{workflow_id}")]


def test_given_c1_event_when_ingested_and_matched_on_fakes_then_one_execution_of_the_report_strategy_starts(
        deps: FakeDeps) -> None:
    ingested, matched = run_pipeline(deps, "plugin.job.completed", c1_event("-f1"), "powerx.plugins")
    workflow_id = workflow_id_for("acme", "job-42:completed-f1")
    assert ingested == {"outcome": "accepted", "workflow_id": workflow_id}
    assert [m["outcome"] for m in matched] == ["started"]
    execution = deps.state_machines.executions[matched[0]["execution_arn"]]
    machine = deps.state_machines.machines[execution["stateMachineArn"]]
    assert machine["strategy"].startswith("report-on-job-completed@")
    assert json.loads(execution["input"])["variables"]["report_name"] == "daily-42"
    workflow = deps.workflows.get(workflow_id)
    assert workflow is not None and workflow["status"] == "RUNNING"
    assert set(workflow["nodes"]) == {"render", "archive", "tell-owner", "approve"}
    # nobody is awaited (approve's when is false for 1,200 rows): the flow's Express head runs, approve is
    # recorded SKIPPED at match time, and the head hands off to the Standard machine named in its input
    assert machine["type"] == "EXPRESS" and workflow["state_machine_type"] == "EXPRESS"
    assert workflow["nodes"]["approve"]["status"] == "SKIPPED"
    assert json.loads(execution["input"])["continuation"] == workflow["continuation_state_machine_arn"]
    assert deps.state_machines.machines[workflow["continuation_state_machine_arn"]]["type"] == "STANDARD"
    assert kinds(deps, workflow_id) == ["event.accepted", "decision", "node.skipped", "workflow.started"]
    assert check_chain(f"WF#{workflow_id}", deps.audit.chain(f"WF#{workflow_id}")) == ([], [])
    assert deps.events.get("acme", "job-42:completed-f1")["outcome"] == "workflow_started"


def test_given_c1_sent_twice_when_run_on_fakes_then_second_is_a_duplicate_and_one_execution_exists(
        deps: FakeDeps) -> None:
    run_pipeline(deps, "plugin.job.completed", c1_event("-f2"), "powerx.plugins")
    again, matched = run_pipeline(deps, "plugin.job.completed", c1_event("-f2"), "powerx.plugins")
    assert again["outcome"] == "duplicate"
    assert matched == []
    assert len(deps.state_machines.executions) == 1


def test_given_c2_event_when_run_on_fakes_then_no_strategy_matches_and_it_is_escalated_to_ops(
        deps: FakeDeps) -> None:
    with fake_http() as http:
        ingested, matched = run_pipeline(deps, "tenant.request.pending", c2_event("-f3"), "powerx.tenants")
    workflow_id = workflow_id_for("acme", "req-7:pending-f3")
    assert ingested["outcome"] == "accepted"
    assert [m["outcome"] for m in matched] == ["escalated"]
    assert matched[0]["reason"] == "no_strategy_matched"
    assert deps.state_machines.executions == {}
    review = deps.workflows.get_review(matched[0]["review_id"])
    assert review is not None and review["status"] == "OPEN" and review.get("ops_sent") and review.get("notified")
    assert [c["path"] for c in http.calls] == ["/ops/manual-review", "/notifications/agent-task"]
    assert kinds(deps, workflow_id) == ["event.accepted", "decision", "escalation.opened"]
    assert deps.logs.totals()["agent.manual_escalation_total"] == 1


def test_given_event_for_suspended_tenant_when_ingested_on_fakes_then_rejected_with_code_and_kept_in_dlq(
        deps: FakeDeps) -> None:
    detail = {**c1_event("-f4"), "tenant_id": "initech"}
    ingested, matched = run_pipeline(deps, "plugin.job.completed", detail, "powerx.plugins")
    assert ingested["outcome"] == "rejected" and ingested["code"] == "tenant.suspended"
    assert matched == []
    assert deps.queues.depth(deps.settings.ingest_dlq_url) == 1


def test_given_audit_record_with_integral_float_when_round_tripped_through_dynamodb_then_chain_still_verifies(
        ) -> None:
    from powerx_agent.adapters.dynamo import from_item, to_item
    from powerx_agent.audit.records import GENESIS, AuditEntry, seal

    record = seal(AuditEntry("node.succeeded", "WF#x", duration=1000.0), 1, GENESIS)
    assert check_chain("WF#x", [from_item(to_item(record))]) == ([], [])
