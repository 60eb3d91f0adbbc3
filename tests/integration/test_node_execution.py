"""Node runners against the sandbox with injected faults: retries, rejection, escalation."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import chain_kinds, detail, send


@pytest.fixture(autouse=True)
def nothing_in_flight(rt: Any) -> None:
    """Each test counts the calls its own workflow makes: a workflow an earlier test left running (a retry
    started by an operator command) would use up the faults injected here."""
    assert rt.wait_idle(timeout=120)
    rt.sandbox.reset()


def test_given_plugin_fails_twice_with_5xx_when_workflow_runs_then_retried_and_succeeds(rt, uid):
    rt.sandbox.fail_times("report-renderer", 2, status=503)
    wf = send(rt, "plugin.job.completed", detail(uid))
    assert wf["status"] == "SUCCEEDED"
    assert wf["nodes"]["render"]["status"] == "SUCCEEDED"
    assert wf["nodes"]["render"]["attempts"] == 3
    calls = rt.sandbox.plugin_calls("report-renderer")
    assert [c.status for c in calls] == [503, 503, 200]
    assert len({c.headers["Idempotency-Key"] for c in calls}) == 1  # stable across retries
    assert chain_kinds(wf["workflow_id"]).count("node.attempt_failed") == 2


def test_given_plugin_rejects_with_4xx_when_workflow_runs_then_not_retried_and_escalated(rt, uid):
    rt.sandbox.fail_always("report-renderer", status=422)
    wf = send(rt, "plugin.job.completed", detail(uid))
    assert wf["status"] == "ESCALATED"
    assert wf["escalation_reason"] == "node_failed"
    assert wf["nodes"]["render"]["status"] == "ESCALATED"
    assert wf["nodes"]["archive"]["status"] == "SKIPPED"
    assert len(rt.sandbox.plugin_calls("report-renderer")) == 1
    reviews = [c for c in rt.sandbox.calls("/ops/manual-review")]
    assert len(reviews) == 1 and reviews[0].body["node_id"] == "render"
    assert reviews[0].body["details"]["error"] == "PluginRejected"
    kinds = chain_kinds(wf["workflow_id"])
    assert {"node.failed", "workflow.escalated", "escalation.opened"} <= set(kinds)
    execution = rt.client("stepfunctions").describe_execution(executionArn=wf["execution_arn"])
    assert execution["status"] == "FAILED"


def test_given_plugin_always_unavailable_when_retries_exhausted_then_escalated_with_attempts(rt, uid):
    rt.sandbox.fail_always("report-renderer", status=500)
    wf = send(rt, "plugin.job.completed", detail(uid))
    assert wf["status"] == "ESCALATED"
    assert wf["failure"]["attempts"] == 3
    assert len(rt.sandbox.plugin_calls("report-renderer")) == 3
