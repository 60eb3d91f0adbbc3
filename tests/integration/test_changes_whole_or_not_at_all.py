"""Every operator command that changes several things checks everything first and never leaves a half-done
change: a failure injected at a later step (an AWS call that breaks, an audit write that fails) undoes the
earlier steps, is recorded, and the command says which step failed and what was undone, in one line, exit 1.

The failures are injected by breaking one port method of the Deps the command uses (the embedded runtime's
stores and Step Functions port stay real), one command per test.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import chain_kinds, detail, send
from test_flags import flags_restored  # noqa: F401 - fixture
from test_node_runner_faults import wait_for
from test_release_rollback import _aliases, two_releases  # noqa: F401 - fixture
from test_review_and_takeover import big_report, finished
from test_strategy_lifecycle import Lab
from typer.testing import CliRunner

from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.ops import strategy as lifecycle
from powerx_agent.ops.audit import verify
from powerx_agent.ops.release import CHAIN as RELEASE_CHAIN
from tests.conftest import REPO

cli = CliRunner()


def injected(name: str) -> ClientError:
    """The failure a test plants in one step: AWS refusing the call, as botocore reports it."""
    return ClientError({"Error": {"Code": "ServiceUnavailable", "Message": f"{name} broken by the test"}}, name)


def break_method(monkeypatch: pytest.MonkeyPatch, port: Any, name: str, when: Any = None) -> None:
    """``port.name(...)`` fails like an AWS call (only for calls where ``when(*args, **kwargs)`` holds)."""
    real = getattr(port, name)

    def broken(*args: Any, **kwargs: Any) -> Any:
        if when is None or when(*args, **kwargs):
            raise injected(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(port, name, broken)


def run(*args: str) -> Any:
    return cli.invoke(app, list(args))


def error_line(result: Any) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture()
def lab(rt: Any, uid: str, tmp_path: Path) -> Lab:
    return Lab(rt, uid, tmp_path)


def active_state(lab: Lab) -> tuple[Any, Any, Any]:
    deps = get_deps()
    active = deps.strategies.active(lab.strategy_id)
    target = deps.state_machines.alias_target(lab.strategy_id)
    return ((active or {}).get("version"), deps.strategies.revision()["active"].get(lab.strategy_id),
            (target or {}).get("strategy_version"))


def two_versions_running(lab: Lab) -> None:
    """v1 and v2 published, both have run (so both have a state-machine version), v2 active."""
    deps = get_deps()
    lab.publish(1)
    lab.publish(2, plugin="s3-archiver")
    lifecycle.approve(deps, lab.strategy_id, 1, "bob", "first")
    lab.until_version(1)
    lifecycle.approve(deps, lab.strategy_id, 2, "bob", "second")
    lab.until_version(2)
    assert active_state(lab) == (2, 2, 2)


# -- strategy approve / rollback / publish ---------------------------------------------------------------


def test_given_a_shell_with_only_the_endpoint_when_approve_and_rollback_run_then_both_succeed_and_the_alias_follows(
        lab, rt):
    two_versions_running(lab)
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "NO_COLOR": "1"}
    endpoint = rt.environment["AWS_ENDPOINT_URL"]
    cli_path = str(REPO / ".venv" / "bin" / "powerx-agent")
    rolled = subprocess.run([cli_path, "--endpoint-url", endpoint, "strategy", "rollback", lab.strategy_id,
                             "--by", "carol"], env=env, capture_output=True, text=True, timeout=120)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "Traceback" not in rolled.stderr and "alias arn:aws:states:" in rolled.stdout
    assert active_state(lab) == (1, 1, 1)
    approved = subprocess.run([cli_path, "--endpoint-url", endpoint, "strategy", "approve", lab.strategy_id,
                               "--version", "2", "--by", "dave", "--reason", "fixed"], env=env,
                              capture_output=True, text=True, timeout=120)
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert active_state(lab) == (2, 2, 2)


def test_given_the_account_cannot_be_named_when_approve_runs_then_it_is_refused_before_anything_changes(
        lab, monkeypatch):
    from dataclasses import replace

    from powerx_agent.adapters.state_machines import StateMachines

    lab.publish(1)
    deps = get_deps()
    before = (deps.strategies.version(lab.strategy_id, 1)["approval"], deps.strategies.revision())
    blind = StateMachines(deps.client("stepfunctions"), replace(deps.settings, workflow_role_arn=""), identity=None)
    monkeypatch.setitem(deps.__dict__, "state_machines", blind)
    refused = run("strategy", "approve", lab.strategy_id, "--version", "1", "--by", "bob", "--reason", "r")
    assert refused.exit_code == 1
    assert "config.account_unknown" in error_line(refused)
    assert (deps.strategies.version(lab.strategy_id, 1)["approval"], deps.strategies.revision()) == before
    assert lab.audit_kinds() == ["strategy.published"]


def test_given_the_alias_step_fails_when_approve_runs_then_the_approval_and_pointer_are_undone_and_recorded(
        lab, monkeypatch):
    two_versions_running(lab)
    lab.publish(3)
    deps = get_deps()
    break_method(monkeypatch, deps.state_machines, "point_alias")
    failed = run("strategy", "approve", lab.strategy_id, "--version", "3", "--by", "bob", "--reason", "r")
    assert failed.exit_code == 1
    line = error_line(failed)
    assert "strategy.approve_failed" in line and "step 'alias'" in line and "undone: activate" in line
    assert active_state(lab) == (2, 2, 2)
    assert deps.strategies.version(lab.strategy_id, 3)["approval"] == "PENDING"
    assert "approved_by" not in deps.strategies.version(lab.strategy_id, 3)
    assert lab.audit_kinds()[-1] == "strategy.approve_failed"
    assert "strategy.approved" not in lab.audit_kinds()[-2:]


def test_given_the_audit_step_fails_when_rollback_runs_then_alias_and_pointer_go_back(lab, monkeypatch):
    two_versions_running(lab)
    deps = get_deps()
    break_method(monkeypatch, deps.audit, "append", when=lambda entry: entry.kind == "strategy.rolled_back")
    failed = run("strategy", "rollback", lab.strategy_id, "--by", "carol")
    assert failed.exit_code == 1
    line = error_line(failed)
    assert "strategy.rollback_failed" in line and "step 'audit'" in line and "undone: alias, activate" in line
    assert active_state(lab) == (2, 2, 2)
    assert lab.audit_kinds()[-1] == "strategy.rollback_failed"


def test_given_the_second_file_fails_when_a_library_is_published_then_the_first_draft_is_removed(lab, monkeypatch):
    lab.write(1)
    other = lab.dir / "v1" / f"{lab.strategy_id}-b.yaml"
    other.write_text(lab.write(1).read_text().replace(f"id: {lab.strategy_id}", f"id: {lab.strategy_id}-b"))
    deps = get_deps()
    monkeypatch.setattr(lifecycle, "CHUNK", 1)  # one draft per request: the first is written before the second fails
    break_method(monkeypatch, deps.strategies, "publish_new",
                 when=lambda drafts, *a: drafts[0]["strategy_id"].endswith("-b"))
    failed = run("strategy", "publish", str(lab.dir / "v1"), "--by", "alice")
    assert failed.exit_code == 1
    line = error_line(failed)
    assert "strategy.publish_failed" in line and "undone: publish 2 new versions" in line
    assert deps.strategies.version(lab.strategy_id, 1) is None
    assert deps.strategies.version(f"{lab.strategy_id}-b", 1) is None
    # the chain is append-only: the draft's publication stays recorded, followed by the failure that removed it
    assert lab.audit_kinds() == ["strategy.published", "strategy.publish_failed"]


# -- workflow retry / fill / stop ------------------------------------------------------------------------


def escalated(rt: Any, uid: str) -> dict[str, Any]:
    rt.sandbox.fail_always("report-renderer", status=422)
    wf = send(rt, "plugin.job.completed", detail(uid))
    rt.sandbox.reset()
    assert wf["status"] == "ESCALATED"
    return wf


def test_given_the_start_fails_when_a_workflow_is_retried_then_workflow_nodes_and_review_are_as_before(
        rt, uid, monkeypatch):
    wf = escalated(rt, uid)
    workflow_id = wf["workflow_id"]
    deps = get_deps()
    (review,) = deps.workflows.open_reviews_for(workflow_id)
    before = deps.workflows.get(workflow_id)
    break_method(monkeypatch, deps.state_machines, "start")
    failed = run("workflow", "retry", workflow_id, "--by", "dave")
    assert failed.exit_code == 1
    line = error_line(failed)
    assert "takeover.retry_failed" in line and "step 'start'" in line and "undone:" in line
    after = deps.workflows.get(workflow_id)
    assert (after["status"], after.get("generation"), after["execution_arn"]) == (
        before["status"], before.get("generation"), before["execution_arn"])
    assert {n: i["status"] for n, i in after["nodes"].items()} == {n: i["status"] for n, i in before["nodes"].items()}
    assert not any(i.get("history") for i in after["nodes"].values())
    assert deps.workflows.get_review(review["review_id"])["status"] == "OPEN"
    kinds = chain_kinds(workflow_id)
    # the retry was announced before the start (so no record of the new generation can precede it) and is
    # voided by workflow.retry_failed: the chain still says what the workflow and its nodes are
    assert kinds[-2:] == ["workflow.retried", "workflow.retry_failed"]
    assert not [g for g in verify(deps, tenant="acme", since="30m").gaps if g.workflow_id == workflow_id]
    monkeypatch.undo()
    retried = run("workflow", "retry", workflow_id, "--by", "dave", "--format", "json")  # the way is still open
    assert retried.exit_code == 0, retried.output
    assert rt.wait_idle(60)
    assert deps.workflows.get(workflow_id)["status"] == "SUCCEEDED"


def test_given_filling_the_node_fails_when_a_waiting_review_is_filled_then_the_review_stays_open(rt, uid, monkeypatch):
    workflow_id, review = big_report(rt, uid)
    deps = get_deps()
    break_method(monkeypatch, deps.workflows, "fill_node")
    failed = run("workflow", "fill", workflow_id, "approve", "--output", '{"ok": true}', "--by", "frank")
    assert failed.exit_code == 1
    line = error_line(failed)
    assert "takeover.fill_failed" in line and "step 'fill'" in line and "undone: claim" in line
    assert deps.workflows.get_review(review["review_id"])["status"] == "OPEN"
    assert deps.workflows.get(workflow_id)["nodes"]["approve"]["status"] == "RUNNING"
    monkeypatch.undo()
    filled = run("workflow", "fill", workflow_id, "approve", "--output", '{"ok": true}', "--by", "frank")
    assert filled.exit_code == 0, filled.output
    assert finished(workflow_id)["status"] == "SUCCEEDED"


def test_given_settling_a_node_fails_when_a_workflow_is_stopped_then_it_says_so_and_a_second_stop_finishes(
        rt, uid, monkeypatch):
    workflow_id, _review = big_report(rt, uid)
    deps = get_deps()
    break_method(monkeypatch, deps.workflows, "transition_node")
    failed = run("workflow", "stop", workflow_id, "--by", "gina")
    assert failed.exit_code == 1
    line = error_line(failed)
    assert "takeover.stop_failed" in line and f"workflow stop {workflow_id} again" in line
    monkeypatch.undo()
    again = run("workflow", "stop", workflow_id, "--by", "gina", "--format", "json")
    assert again.exit_code == 0, again.output
    (result,) = json.loads(again.stdout)
    assert result["verified"] and result["execution_status"] in ("ABORTED", "FAILED")
    wf = deps.workflows.get(workflow_id)
    assert wf["status"] == "STOPPED" and wf["nodes"]["approve"]["status"] == "FAILED"
    assert not deps.workflows.open_reviews_for(workflow_id)
    assert [g for g in verify(deps, tenant="acme", since="10m").gaps if g.workflow_id == workflow_id] == []


# -- release rollback / flags set / review decide / repair --apply / replay -------------------------------


def test_given_the_audit_step_fails_when_the_service_is_rolled_back_then_every_alias_goes_back(
        rt, two_releases, monkeypatch):  # noqa: F811 - the fixture imported above
    _first, _second, _before = two_releases
    after_deploy = _aliases(rt)
    deps = get_deps()
    break_method(monkeypatch, deps.audit, "append", when=lambda entry: entry.kind == "release.rolled_back")
    failed = run("release", "rollback", "--reason", "r", "--by", "t")
    assert failed.exit_code == 1
    line = error_line(failed)
    assert "release.rollback_failed" in line and "step 'audit'" in line and "undone: move" in line
    assert _aliases(rt) == after_deploy
    record = [r for r in deps.audit.chain(RELEASE_CHAIN) if r["kind"] == "release.rollback_failed"][-1]
    assert record["data"]["failed_step"] == "audit" and record["data"]["not_restored"] == []
    assert len(record["data"]["restored"]) == len(after_deploy)


def test_given_the_audit_step_fails_when_a_flag_is_set_then_the_flag_is_written_back(
        flags_restored, monkeypatch):  # noqa: F811 - the fixture imported above
    deps = get_deps()
    assert deps.flags.enabled("agent-orchestrator")
    break_method(monkeypatch, deps.audit, "append", when=lambda entry: entry.kind == "flag.changed")
    failed = run("flags", "set", "agent-orchestrator", "off", "--by", "t")
    assert failed.exit_code == 1
    assert "flags.set_failed" in error_line(failed) and "undone: write" in error_line(failed)
    deps.flags.invalidate()
    assert deps.flags.enabled("agent-orchestrator")
    shown = json.loads(run("flags", "show", "--format", "json").stdout)
    assert {r["name"]: r["on"] for r in shown}["agent-orchestrator"] is True
    assert [r for r in deps.audit.chain("OPS#flags")][-1]["kind"] == "flag.change_failed"


def test_given_step_functions_fails_when_a_review_is_approved_then_nothing_is_closed_and_approving_again_works(
        rt, uid, monkeypatch):
    workflow_id, review = big_report(rt, uid)
    deps = get_deps()
    break_method(monkeypatch, deps.state_machines, "succeed_task")
    failed = run("review", "approve", review["review_id"], "--by", "alice")
    assert failed.exit_code == 1 and "callback.unavailable" in error_line(failed)
    assert deps.workflows.get_review(review["review_id"])["status"] == "OPEN"
    assert deps.workflows.get(workflow_id)["nodes"]["approve"]["status"] == "RUNNING"
    monkeypatch.undo()
    assert run("review", "approve", review["review_id"], "--by", "alice").exit_code == 0
    assert finished(workflow_id)["status"] == "SUCCEEDED"


def test_given_a_fix_fails_midway_when_repair_applies_then_it_is_reported_and_the_next_run_finishes_it(
        rt, uid, monkeypatch):
    workflow_id, _review = big_report(rt, uid)
    deps = get_deps()
    wf = deps.workflows.get(workflow_id)
    deps.state_machines.stop(wf["execution_arn"], "Tests.Lost", "the workflow record never heard of it")
    for review in deps.workflows.open_reviews_for(workflow_id):  # release the token moto waits on
        deps.state_machines.fail_task(review["task_token"], "Tests.Lost", "stopped behind the engine's back")
    assert wait_for(lambda: deps.state_machines.status(wf["execution_arn"]) != "RUNNING", 30)
    break_method(monkeypatch, deps.workflows, "transition_workflow")
    first = run("repair", "--apply", "--tenant", "acme", "--since", "30m", "--by", "t", "--format", "json")
    assert first.exit_code == 1 and "Traceback" not in first.output
    mine = [f for f in json.loads(first.stdout)["findings"] if workflow_id in f["subject"]]
    assert [f["code"] for f in mine] == ["workflow.not_terminal"] and "ServiceUnavailable" in mine[0]["error"]
    monkeypatch.undo()
    second = run("repair", "--apply", "--tenant", "acme", "--since", "30m", "--by", "t", "--format", "json")
    assert [f for f in json.loads(second.stdout)["findings"] if workflow_id in f["subject"] and not f["applied"]] == []
    assert deps.workflows.get(workflow_id)["status"] in ("FAILED", "STOPPED")
    assert [g for g in verify(deps, tenant="acme", since="30m").gaps if workflow_id in g.unit] == []


def test_given_the_bus_refuses_part_of_a_replay_when_replayed_then_each_failure_is_named_and_a_rerun_finishes(
        rt, uid, monkeypatch, tmp_path):
    events = [{"source": "powerx.plugins", "detail-type": "plugin.job.completed", "detail": detail(f"{uid}-{i}")}
              for i in range(3)]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    deps = get_deps()
    real_put = deps.bus.put

    def refuse_the_second(entries: list[dict[str, Any]]) -> list[Any]:
        outcomes = real_put([e for e in entries if f"{uid}-1" not in e["Detail"]])
        refused = [e for e in entries if f"{uid}-1" in e["Detail"]]
        if not refused:
            return outcomes
        from powerx_agent.adapters.bus import PutOutcome

        merged, kept = [], iter(outcomes)
        for entry in entries:
            merged.append(PutOutcome(None, "InternalFailure", "refused by the test") if entry in refused
                          else next(kept))
        return merged

    monkeypatch.setattr(deps.bus, "put", refuse_the_second)
    first = run("replay", "--file", str(path), "--max-attempts", "1", "--format", "json")
    assert first.exit_code == 1, first.output
    report = json.loads(first.stdout)
    assert report["summary"]["sent"] == 2 and report["summary"]["failed"] == 1
    assert report["summary"]["failures"][0]["event_id"] == f"evt-{uid}-1"
    assert rt.wait_idle(60)
    monkeypatch.undo()
    second = run("replay", "--file", str(path), "--format", "json")
    assert second.exit_code == 0, second.output
    summary = json.loads(second.stdout)["summary"]
    assert (summary["sent"], summary["duplicates"], summary["failed"]) == (1, 2, 0)
