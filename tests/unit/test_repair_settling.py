"""repair does not take a status its writer is still recording for a missing audit record.

The engine writes a node's status, then appends its audit record (two writes). A repair run during live
traffic can read between them; in a running workflow it leaves a status younger than SETTLE_SECONDS alone,
and reports it once it is older (the record was really lost), or at once when the workflow has ended.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from powerx_agent.ops.repair import SETTLE_SECONDS, Repair
from powerx_agent.testing.fakes import FakeDeps

ACCEPTED = [{"kind": "event.accepted", "seq": 1}, {"kind": "decision", "seq": 2},
            {"kind": "workflow.started", "seq": 3}]


def _meta(status: str, node_age: float, node_status: str = "FAILED") -> dict[str, Any]:
    now = time.time()
    return {"workflow_id": "wf-acme-settle", "tenant_id": "acme", "status": status, "decision": {"selected": "x"},
            "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:agent-x:wf-acme-settle",
            "created_at": now - 600, "updated_at": now - 600,
            "nodes": {"render": {"node_id": "render", "status": node_status, "updated_at": now - node_age}}}


def _missing(meta: dict[str, Any]) -> list[str]:
    job = Repair(FakeDeps.create())
    job.plan_milestones(meta["workflow_id"], meta, ACCEPTED, None, None)
    return [f.problem for f in job.findings if f.code == "audit.missing"]


@pytest.mark.parametrize("node_status", ["FAILED", "SUCCEEDED", "SKIPPED"])
def test_given_a_running_workflow_whose_node_status_was_just_written_when_planned_then_not_missing(node_status):
    assert _missing(_meta("RUNNING", node_age=0.5, node_status=node_status)) == []


def test_given_a_running_workflow_whose_node_status_is_older_than_the_window_when_planned_then_missing():
    assert _missing(_meta("RUNNING", node_age=SETTLE_SECONDS + 1)) == ["no node.failed record for node render"]


def test_given_an_ended_workflow_when_planned_then_a_missing_node_record_is_reported_at_once():
    problems = _missing(_meta("ESCALATED", node_age=0.5))
    assert "no node.failed record for node render" in problems


def test_given_a_running_workflow_just_started_when_planned_then_its_start_record_is_not_missing_yet():
    records = ACCEPTED[:2]  # the matcher recorded the execution on META; workflow.started is being appended
    meta = {**_meta("RUNNING", node_age=SETTLE_SECONDS + 1, node_status="PENDING"), "updated_at": time.time()}
    job = Repair(FakeDeps.create())
    job.plan_milestones(meta["workflow_id"], meta, records, None, None)
    assert job.findings == []
    meta["updated_at"] = time.time() - SETTLE_SECONDS - 1
    job = Repair(FakeDeps.create())
    job.plan_milestones(meta["workflow_id"], meta, records, None, None)
    assert [f.problem for f in job.findings] == ["no workflow.started record"]
