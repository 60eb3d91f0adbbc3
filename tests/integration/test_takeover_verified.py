"""Takeover commands report what they verified, not what they asked for, and always leave a way out:
``workflow stop`` reports the status Step Functions gives after the stop (and says so when the execution
still runs, with what to do); a stop issued again ends it; ``retry`` then works. ``repair`` and ``audit
verify`` judge a workflow by one definition: after a retry or a stop they agree, on a clean trail and on a
damaged one."""

from __future__ import annotations

import json
from typing import Any

from helpers import chain_kinds, detail, send
from test_review_and_takeover import big_report
from typer.testing import CliRunner

from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.ops.audit import verify
from powerx_agent.ops.repair import repair

cli = CliRunner()


def run(*args: str) -> Any:
    return cli.invoke(app, list(args))


def gaps_of(workflow_id: str) -> list[str]:
    return sorted(g.code for g in verify(get_deps(), tenant="acme", since="30m").gaps if workflow_id in g.unit)


def findings_of(workflow_id: str) -> list[str]:
    return sorted(f.code for f in repair(get_deps(), tenant="acme", since="30m") if workflow_id in f.subject)


def test_given_an_execution_that_keeps_running_when_stopped_then_running_is_reported_and_a_second_stop_ends_it(
        rt, uid, monkeypatch):
    workflow_id, _review = big_report(rt, uid)
    deps = get_deps()
    # the task token is not released (as when its holder was answered already): moto keeps the execution RUNNING
    monkeypatch.setattr(deps.state_machines, "fail_task", lambda *a, **k: True)
    first = run("workflow", "stop", workflow_id, "--by", "gina", "--wait", "0", "--format", "json")
    assert first.exit_code == 1, first.output
    (result,) = json.loads(first.stdout)
    assert result["execution_status"] == "RUNNING" and result["verified"] is False
    assert f"powerx-agent workflow stop {workflow_id}" in result["next"]
    text = run("workflow", "stop", workflow_id, "--by", "gina", "--wait", "0")
    assert "Step Functions says the execution is RUNNING" in text.output and "next:" in text.output
    refused = run("workflow", "retry", workflow_id, "--by", "gina")
    assert refused.exit_code == 1 and "still RUNNING" in refused.output
    assert f"powerx-agent workflow stop {workflow_id}" in refused.output
    monkeypatch.undo()
    # the way out: the stop issued again releases what holds the execution and verifies it ended
    again = run("workflow", "stop", workflow_id, "--by", "gina", "--format", "json")
    assert again.exit_code == 0, again.output
    (ended,) = json.loads(again.stdout)
    assert ended["verified"] and ended["execution_status"] in ("ABORTED", "FAILED") and ended["next"] is None
    assert gaps_of(workflow_id) == [] and findings_of(workflow_id) == []
    kinds = chain_kinds(workflow_id)
    assert kinds.count("workflow.stopped") == 1 and "workflow.stop_reissued" in kinds
    retried = run("workflow", "retry", workflow_id, "--by", "gina", "--format", "json")
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.stdout)["generation"] == 2
    stopped = run("workflow", "stop", workflow_id, "--by", "gina", "--format", "json")  # clean up the waiting retry
    assert stopped.exit_code == 0, stopped.output


def test_given_nothing_to_stop_when_stop_runs_then_it_is_refused_with_the_status(rt, uid):
    done = send(rt, "plugin.job.completed", detail(uid))
    assert done["status"] == "SUCCEEDED"
    refused = run("workflow", "stop", done["workflow_id"], "--by", "gina")
    assert refused.exit_code == 1 and "takeover.not_running" in refused.output and "nothing to stop" in refused.output


def test_given_a_retried_workflow_when_repaired_then_its_retry_execution_is_no_orphan_and_apply_changes_nothing(
        rt, uid):
    rt.sandbox.fail_always("report-renderer", status=422)
    wf = send(rt, "plugin.job.completed", detail(uid))
    rt.sandbox.reset()
    workflow_id = wf["workflow_id"]
    assert run("workflow", "retry", workflow_id, "--by", "dave").exit_code == 0
    assert rt.wait_idle(60)
    assert get_deps().workflows.get(workflow_id)["status"] == "SUCCEEDED"
    dry = run("repair", "--tenant", "acme", "--since", "30m", "--format", "json")
    subjects = [f["subject"] for f in json.loads(dry.stdout)["findings"]]
    assert not [s for s in subjects if workflow_id in s], dry.output
    applied = run("repair", "--apply", "--tenant", "acme", "--since", "30m", "--by", "dave", "--format", "json")
    assert "Traceback" not in applied.output
    assert not [f for f in json.loads(applied.stdout)["findings"] if workflow_id in f["subject"]]
    assert gaps_of(workflow_id) == []


def test_given_a_stopped_workflow_when_verified_and_repaired_then_both_agree_clean_then_damaged_then_fixed(rt, uid):
    workflow_id, _review = big_report(rt, uid)
    assert run("workflow", "stop", workflow_id, "--by", "gina").exit_code == 0
    assert gaps_of(workflow_id) == [] and findings_of(workflow_id) == []
    deps = get_deps()
    # damage: the stopped node's record and the workflow.stopped record are lost (rebased by repair)
    records = sorted(deps.audit.chain(f"WF#{workflow_id}"), key=lambda r: r["seq"])
    for record in records:
        if record["kind"] in ("node.stopped", "workflow.stopped"):
            deps.audit.delete(record["pk"], record["seq"])
    gaps, findings = gaps_of(workflow_id), findings_of(workflow_id)
    assert gaps == ["chain.missing", "node.no_outcome", "workflow.no_terminal"]
    assert findings == ["audit.missing", "audit.missing", "chain.missing"]
    applied = run("repair", "--apply", "--tenant", "acme", "--since", "30m", "--by", "dave")
    assert applied.exit_code in (0, 1), applied.output
    assert gaps_of(workflow_id) == [] and findings_of(workflow_id) == []
