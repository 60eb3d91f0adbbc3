"""``powerx-agent repair`` against Step Functions on the embedded runtime ("Repair and
rollback"): executions without a workflow record, and workflows whose execution is gone.

moto cannot delete executions, so a "gone" execution is simulated by pointing META's
``execution_arn`` at an ARN that does not exist."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from test_review_and_takeover import big_report
from typer.testing import CliRunner

from powerx_agent.audit.records import iso_at as _iso
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.local.demo import run_c1
from powerx_agent.ops.repair import Repair
from powerx_agent.ops.repair import repair as run_repair

cli = CliRunner()


def repair_json(since: str, *extra: str) -> dict[str, Any]:
    out = cli.invoke(app, ["repair", "--tenant", "acme", "--since", since, "--by", "tests", "--format", "json",
                           *extra])
    assert out.exit_code in (0, 1), out.output
    return json.loads(out.output)


def about(findings: list[dict[str, Any]], workflow_id: str) -> list[dict[str, Any]]:
    return [f for f in findings if f["subject"] in (workflow_id, f"WF#{workflow_id}")
            or f["subject"].startswith(f"{workflow_id}/")]


def emf_totals() -> dict[str, float]:
    out = cli.invoke(app, ["metrics", "--format", "json"])
    return json.loads(out.output)["emf"] or {}


def verify_gaps(since: str, workflow_id: str) -> list[dict[str, Any]]:
    out = cli.invoke(app, ["audit", "verify", "--tenant", "acme", "--since", since, "--format", "json"])
    report = json.loads(out.output)
    return [g for g in report["gaps"] if g.get("workflow_id") == workflow_id or workflow_id in g["unit"]]


def test_given_execution_without_workflow_record_when_repaired_then_meta_nodes_and_audit_recreated(rt, uid):
    since = _iso(time.time() - 1)
    c1 = run_c1(rt, suffix=f"-{uid}")
    assert c1.ok, c1.expectations
    deps = get_deps()
    sfn = rt.client("stepfunctions")
    meta = deps.workflows.get(c1.workflow_id)
    execution_input = json.loads(sfn.describe_execution(executionArn=meta["execution_arn"])["input"])
    orphan = f"wf-acme-{uuid.uuid4().hex[:24]}"
    execution_input["workflow"]["workflow_id"] = orphan
    arn = sfn.start_execution(stateMachineArn=meta["state_machine_arn"], name=orphan,
                              input=json.dumps(execution_input))["executionArn"]
    assert rt.wait_idle(timeout=60)
    assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"

    dry = repair_json(since)
    found = about(dry["findings"], orphan)
    assert [f["code"] for f in found] == ["execution.orphan"] and not found[0]["applied"]
    assert arn in found[0]["problem"]
    assert deps.workflows.get(orphan) is None  # a dry run changes nothing
    # executions are looked for on the hash-named machines, not on the per-strategy alias machine
    machines = {m["name"]: m for m in sfn.list_state_machines()["stateMachines"]}
    job = Repair(deps)
    assert job._is_alias_machine(machines["agent-report-on-job-completed"])
    assert not job._is_alias_machine(machines[meta["state_machine_arn"].rsplit(":", 1)[-1]])

    before = emf_totals()
    applied = repair_json(since, "--apply")
    assert [(f["code"], f["applied"]) for f in about(applied["findings"], orphan)] == [("execution.orphan", True)]
    after = emf_totals()
    # the engine never counted this workflow (no META to move): repair does. Its nodes recorded and counted
    # themselves as they ran (a node's first move creates its status item), so repair counts none of them
    assert (after["generated"] - before["generated"], after["node_success"] - before["node_success"]) == (1, 0)
    wf = deps.workflows.get(orphan)
    assert wf is not None and wf["status"] == "SUCCEEDED" and wf["execution_arn"] == arn
    assert (wf["tenant_id"], wf["event_id"], wf["strategy_id"], wf["strategy_version"], wf["traceparent"]) == (
        "acme", meta["event_id"], "report-on-job-completed", meta["strategy_version"], meta["traceparent"])
    assert wf["state_machine_arn"] == meta["state_machine_arn"]
    assert {n: i["status"] for n, i in wf["nodes"].items()} == {
        "render": "SUCCEEDED", "archive": "SUCCEEDED", "tell-owner": "SUCCEEDED", "approve": "SKIPPED"}
    chain = deps.audit.chain(f"WF#{orphan}")
    recreated = [r for r in chain if (r.get("data") or {}).get("action") == "workflow_record_recreated"]
    assert len(recreated) == 1 and recreated[0]["data"]["execution_arn"] == arn
    assert recreated[0]["data"]["nodes"]["approve"] == "SKIPPED"
    reconstructed = {(r["data"].get("reconstructs"), r.get("node_id")) for r in chain if r["kind"] == "audit.repaired"}
    assert ("workflow.started", None) in reconstructed
    assert {r.get("node_id") for r in chain if r["kind"] == "node.succeeded"} == {"render", "archive", "tell-owner"}
    # agent_events holds another workflow for this key: no acceptance or decision is invented
    assert not {k for k, _ in reconstructed} & {"event.accepted", "decision"}
    ops = [r for r in deps.audit.chain("OPS#repair") if r["data"].get("subject") == orphan]
    assert [r["kind"] for r in ops] == ["repair.applied"]

    again = repair_json(since)
    assert about(again["findings"], orphan) == []
    assert verify_gaps(since, orphan) == []


def test_given_running_workflow_whose_execution_is_gone_when_repaired_then_escalated_and_verify_passes(rt, uid):
    since = _iso(time.time() - 1)
    deps = get_deps()
    sfn = rt.client("stepfunctions")
    workflow_id, review = big_report(rt, uid)  # the approve node waits for a person: RUNNING
    real_arn = deps.workflows.get(workflow_id)["execution_arn"]
    sfn.stop_execution(executionArn=real_arn)  # nothing left running for the rest of the session:
    # moto ends a stopped execution only when the task it waits on ends, so release that task too
    # (what `powerx-agent workflow stop` does; on AWS the call fails harmlessly after a stop)
    try:
        sfn.send_task_failure(taskToken=review["task_token"], error="Agent.Stopped", cause="test cleanup")
    except sfn.exceptions.ClientError:
        pass
    gone = real_arn.rsplit(":", 1)[0] + f":gone-{uid}"
    deps.workflows.update_meta(workflow_id, execution_arn=gone)
    assert deps.workflows.get(workflow_id)["status"] == "RUNNING"
    assert any(g["code"] == "workflow.execution_gone" for g in verify_gaps(since, workflow_id))
    reviews_before = len(rt.sandbox.calls("/ops/manual-review"))

    dry = repair_json(since)
    assert [f["code"] for f in about(dry["findings"], workflow_id)] == ["workflow.execution_gone"]
    assert deps.workflows.get(workflow_id)["status"] == "RUNNING"
    assert len(rt.sandbox.calls("/ops/manual-review")) == reviews_before

    applied = repair_json(since, "--apply")
    assert [(f["code"], f["applied"]) for f in about(applied["findings"], workflow_id)] == [
        ("workflow.execution_gone", True)]
    wf = deps.workflows.get(workflow_id)
    assert wf["status"] == "ESCALATED" and wf["escalation_reason"] == "execution_missing"
    assert wf["nodes"]["approve"]["status"] == "FAILED" and wf["nodes"]["render"]["status"] == "SUCCEEDED"
    orders = rt.sandbox.calls("/ops/manual-review")[reviews_before:]
    assert [o.body["reason"] for o in orders] == ["execution_missing"]
    assert deps.workflows.get_review(review["review_id"])["status"] == "CLOSED"  # its task token died
    cancelled = [r for r in deps.audit.chain(f"WF#{workflow_id}") if r["kind"] == "review.cancelled"]
    assert [r["data"]["review_id"] for r in cancelled] == [review["review_id"]]
    opened = [r for r in deps.audit.chain(f"WF#{workflow_id}") if r["kind"] == "escalation.opened"]
    assert [r["escalation_reason"] for r in opened] == ["execution_missing"]

    assert about(repair_json(since)["findings"], workflow_id) == []
    assert verify_gaps(since, workflow_id) == []
    # idempotent: repairing again opens no second escalation
    run_repair(deps, apply=True, by="tests", tenant="acme", since=since)
    assert len(rt.sandbox.calls("/ops/manual-review")) == reviews_before + 1


def test_given_finished_workflow_whose_execution_is_gone_when_repaired_then_reported_and_only_noted(rt, uid):
    since = _iso(time.time() - 1)
    c1 = run_c1(rt, suffix=f"-{uid}")
    assert c1.ok, c1.expectations
    deps = get_deps()
    arn = deps.workflows.get(c1.workflow_id)["execution_arn"]
    deps.workflows.update_meta(c1.workflow_id, execution_arn=arn.rsplit(":", 1)[0] + f":gone-{uid}")

    dry = repair_json(since)
    found = about(dry["findings"], c1.workflow_id)
    assert [f["code"] for f in found] == ["workflow.execution_gone"] and "ended SUCCEEDED" in found[0]["problem"]

    repair_json(since, "--apply")
    wf = deps.workflows.get(c1.workflow_id)
    assert wf["status"] == "SUCCEEDED" and wf.get("execution_missing_noted")
    assert {n: i["status"] for n, i in wf["nodes"].items()} == {
        "render": "SUCCEEDED", "archive": "SUCCEEDED", "tell-owner": "SUCCEEDED", "approve": "SKIPPED"}
    noted = [r for r in deps.audit.chain(f"WF#{c1.workflow_id}")
             if (r.get("data") or {}).get("action") == "execution_missing_noted"]
    assert len(noted) == 1 and not noted[0]["data"].get("reconstructs")
    assert about(repair_json(since)["findings"], c1.workflow_id) == []
    assert verify_gaps(since, c1.workflow_id) == []
