"""audit verify / repair on the embedded runtime (done-when): after C-1 verify says 100%;
deleting an audit record or a node's status item makes verify fail and repair --apply fix it."""

from __future__ import annotations

import json
import time

import pytest
import typer
from typer.testing import CliRunner

from powerx_agent.adapters.dynamo import key
from powerx_agent.audit.records import iso_at as _iso
from powerx_agent.cli import metrics_cmd, repair_cmd
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.local.demo import run_c1

runner = CliRunner()
ops_app = typer.Typer()
repair_cmd.register(ops_app)
metrics_cmd.register(ops_app)


def verify(since: str, *extra: str):
    return runner.invoke(app, ["audit", "verify", "--tenant", "acme", "--since", since, *extra])


def repair(since: str, *extra: str):
    return runner.invoke(ops_app, ["repair", "--tenant", "acme", "--since", since, "--by", "tests", *extra])


@pytest.fixture()
def c1(rt, uid):
    since = _iso(time.time() - 1)
    result = run_c1(rt, suffix=f"-{uid}")
    assert result.ok, result.expectations
    return since, result


def test_given_c1_demo_when_audit_verify_then_complete_100_percent(c1):
    since, result = c1
    out = verify(since)
    assert out.exit_code == 0, out.output
    assert "Completeness: 100.00%" in out.output and "GAP" not in out.output
    report = json.loads(verify(since, "--format", "json").output)
    assert report["ok"] and report["completeness"] == 100.0 and report["workflows"] >= 1


def test_given_deleted_audit_record_when_verified_then_gap_and_repair_apply_makes_it_pass(c1):
    since, result = c1
    deps = get_deps()
    chain = f"WF#{result.workflow_id}"
    started = next(r for r in deps.audit.chain(chain) if r["kind"] == "workflow.started")
    deps.audit.delete(chain, started["seq"])

    broken = verify(since)
    assert broken.exit_code == 1
    assert f"{chain} seq {started['seq']}: [chain.missing]" in broken.output
    assert "[workflow.no_start]" in broken.output

    dry = repair(since)
    assert dry.exit_code == 1 and "would fix" in dry.output and "dry run" in dry.output
    assert verify(since).exit_code == 1  # a dry run changes nothing

    applied = repair(since, "--apply")
    assert applied.exit_code == 0, applied.output
    fixed = verify(since)
    assert fixed.exit_code == 0, fixed.output
    assert "Completeness: 100.00%" in fixed.output and f"rebased {chain}: record(s) [{started['seq']}]" in fixed.output
    kinds = [(r["kind"], (r.get("data") or {}).get("reconstructs")) for r in deps.audit.chain(chain)]
    assert ("audit.repaired", "workflow.started") in kinds and ("chain.rebased", None) in kinds
    ops = [r for r in deps.audit.chain("OPS#repair") if r["data"].get("subject") == chain]
    assert ops and all(r["kind"] == "repair.applied" for r in ops)


def test_given_deleted_node_status_item_when_verified_then_gap_and_repair_restores_it(c1, rt):
    since, result = c1
    deps = get_deps()
    rt.client("dynamodb").delete_item(TableName=deps.settings.workflows_table,
                                      Key=key(pk=f"WF#{result.workflow_id}", sk="NODE#archive"))
    broken = verify(since)
    assert broken.exit_code == 1 and "[node.status_missing] node archive" in broken.output

    applied = repair(since, "--apply")
    assert applied.exit_code == 0, applied.output
    assert "node.status_missing" in applied.output
    assert deps.workflows.get(result.workflow_id)["nodes"]["archive"]["status"] == "SUCCEEDED"
    assert verify(since).exit_code == 0


def test_given_node_left_running_in_finished_workflow_when_repaired_then_settled_from_history(c1, rt):
    since, result = c1
    deps = get_deps()
    rt.client("dynamodb").update_item(
        TableName=deps.settings.workflows_table, Key=key(pk=f"WF#{result.workflow_id}", sk="NODE#render"),
        UpdateExpression="SET #s = :r", ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":r": {"S": "RUNNING"}})
    broken = verify(since)
    assert broken.exit_code == 1 and "[node.orphaned] node render is RUNNING" in broken.output
    assert repair(since, "--apply").exit_code == 0
    assert deps.workflows.get(result.workflow_id)["nodes"]["render"]["status"] == "SUCCEEDED"
    assert verify(since).exit_code == 0


def test_given_workflow_left_running_after_its_execution_ended_when_repaired_then_settled_and_each_node_audited(
        c1, rt):
    """A crash before the terminal write-back: META and one node still RUNNING, the execution SUCCEEDED."""
    since, result = c1
    deps = get_deps()
    table = deps.settings.workflows_table
    for sk in ("META", "NODE#tell-owner"):
        rt.client("dynamodb").update_item(
            TableName=table, Key=key(pk=f"WF#{result.workflow_id}", sk=sk), UpdateExpression="SET #s = :r",
            ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":r": {"S": "RUNNING"}})
    broken = verify(since)
    assert broken.exit_code == 1 and "[workflow.not_terminal]" in broken.output
    assert repair(since, "--apply").exit_code == 0
    wf = deps.workflows.get(result.workflow_id)
    assert wf["status"] == "SUCCEEDED" and wf["nodes"]["tell-owner"]["status"] == "SUCCEEDED"
    repaired = [r for r in deps.audit.chain(f"WF#{result.workflow_id}") if r["kind"] == "audit.repaired"]
    settled = [r for r in repaired if (r.get("data") or {}).get("action") == "node_settled"]
    assert [(r["node_id"], r["status"], r["data"]["was"]) for r in settled] == [("tell-owner", "SUCCEEDED", "RUNNING")]
    assert any((r.get("data") or {}).get("action") == "workflow_settled" for r in repaired)
    assert verify(since).exit_code == 0


def test_given_c1_when_metrics_then_figures_from_audit_agree_with_emf(c1):
    out = runner.invoke(ops_app, ["metrics", "--format", "json"])
    assert out.exit_code == 0, out.output
    figures = json.loads(out.output)
    assert figures["generated"] >= 1 and figures["node_success"] >= 2 and figures["duplicates"] >= 1
    assert figures["emf"] is not None and figures["mismatches"] == []


def test_given_demo_and_fault_injected_run_when_verified_then_100_percent_and_metrics_agree(rt, uid):
    from powerx_agent.local.demo import run_c2
    from tests.integration.helpers import chain_kinds, detail, send

    since = _iso(time.time() - 1)
    assert run_c1(rt, suffix=f"-{uid}").ok and run_c2(rt, suffix=f"-{uid}").ok
    rt.sandbox.fail_times("s3-archiver", 1)  # retried, then succeeds
    retried = detail(f"{uid}-retried")
    send(rt, "plugin.job.completed", retried)
    rt.sandbox.fail_always("report-renderer")  # retries exhausted → escalated
    failing = detail(f"{uid}-failing")
    send(rt, "plugin.job.completed", failing)
    send(rt, "plugin.job.completed", {"tenant_id": "acme", "event_id": ""})  # rejected envelope
    from powerx_agent.ingest.service import workflow_id_for

    assert "workflow.escalated" in chain_kinds(workflow_id_for("acme", failing["idempotency_key"]))
    assert "node.attempt_failed" in chain_kinds(workflow_id_for("acme", retried["idempotency_key"]))

    out = runner.invoke(app, ["audit", "verify", "--since", since])
    assert out.exit_code == 0, out.output
    assert "Completeness: 100.00%" in out.output
    metrics = runner.invoke(ops_app, ["metrics", "--format", "json"])
    assert metrics.exit_code == 0, metrics.output
    figures = json.loads(metrics.output)
    assert figures["node_failure"] >= 1 and figures["escalations"] >= 2 and figures["rejected"] >= 1
