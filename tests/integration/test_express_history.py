"""`workflow show` and `workflow view` read an Express execution's history from the state machines' log group.

Step Functions keeps no history for Express executions (DescribeExecution and GetExecutionHistory do not
serve them) and moto, which does, writes no log records: so the records here are ones AWS delivered
(tests/aws_examples/sfn-express-log-records-succeeded.json, verbatim), put into the embedded runtime's
CloudWatch Logs (which moto does serve) under the stream name AWS used, next to records of another
execution. The workflow item names that execution's ARN, as the matcher records it on AWS.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from powerx_agent import spec
from powerx_agent.audit.records import iso_at as _iso
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps

EXAMPLE = Path(__file__).resolve().parents[1] / "aws_examples" / "sfn-express-log-records-succeeded.json"
STREAM = "states/LoggingAndMaskingWorkflow/2024-04-24-11-50/00000000"  # as in the example's published output
# workflow items made up here (their executions exist only as log records) belong to a tenant of their own, so
# that commands over a real tenant's workflows in other tests (e.g. stop --tenant acme) never meet them
TENANT = "express-history-tests"


def _put(rt: Any, records: list[dict[str, Any]], stream: str) -> None:
    logs = rt.client("logs")
    try:
        logs.create_log_stream(logGroupName=spec.STATE_MACHINE_LOG_GROUP, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=spec.STATE_MACHINE_LOG_GROUP, logStreamName=stream,
                        logEvents=[{"timestamp": now + i, "message": json.dumps(r, indent=2)}
                                   for i, r in enumerate(records)])


@pytest.fixture()
def express_workflow(rt, uid):
    records = json.loads(EXAMPLE.read_text())
    execution_arn = records[0]["execution_arn"]
    # records of another execution of the same machine, in the same stream: never mixed in
    other = [{**r, "execution_arn": execution_arn.replace("cli-test-run", f"other-{uid}")} for r in records[:2]]
    _put(rt, other + records, STREAM)
    workflow_id = f"wf-acme-express-{uid}"
    deps = get_deps()
    machine = execution_arn.split(":express:", 1)[0] + ":stateMachine:LoggingAndMaskingWorkflow"
    deps.workflows.create({"workflow_id": workflow_id, "tenant_id": TENANT, "event_id": f"evt-{uid}",
                           "idempotency_key": f"key-{uid}", "event_type": "plugin.job.failed",
                           "strategy_id": "ticket-on-job-failed", "strategy_version": 1,
                           "state_machine_arn": machine, "state_machine_type": "EXPRESS",
                           "type_reason": "EXPRESS because no node waits for a callback"}, ["LogInput"])
    deps.workflows.update_meta(workflow_id, execution_arn=execution_arn)
    return workflow_id, execution_arn


def test_given_an_express_execution_when_shown_then_status_and_times_come_from_its_log_records(express_workflow):
    workflow_id, execution_arn = express_workflow
    result = CliRunner().invoke(app, ["workflow", "show", workflow_id, "--format", "json"])
    assert result.exit_code == 0, result.output
    execution = json.loads(result.output)["execution"]
    assert execution["arn"] == execution_arn and execution["status"] == "SUCCEEDED"
    assert execution["started"].startswith("2024-04-24 11:54:30.672")  # ExecutionStarted's event_timestamp
    assert execution["stopped"].startswith("2024-04-24 11:54:30.680")  # ExecutionSucceeded's
    text = CliRunner().invoke(app, ["workflow", "show", workflow_id])
    assert text.exit_code == 0 and "SUCCEEDED" in text.output


def test_given_an_express_execution_when_viewed_then_the_timeline_is_its_log_records_in_order(
        express_workflow, tmp_path):
    workflow_id, _ = express_workflow
    out = tmp_path / "view.html"
    result = CliRunner().invoke(app, ["workflow", "view", workflow_id, "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    timeline = html.split('id="timeline"', 1)[1].split("</section>", 1)[0]
    order = [timeline.index(t) for t in ("ExecutionStarted", "PassStateEntered", "PassStateExited",
                                         "ExecutionSucceeded")]
    assert order == sorted(order)
    assert timeline.count("<tr>") == 1 + 4  # the header and this execution's 4 events, not the other's
    assert "LogInput" in timeline and "+8 ms" in timeline  # state names and offsets from event_timestamp
    assert spec.STATE_MACHINE_LOG_GROUP in timeline  # says where the history came from


def test_given_an_express_execution_without_records_when_shown_then_unknown_not_gone(rt, uid):
    deps = get_deps()
    workflow_id = f"wf-acme-express-none-{uid}"
    arn = f"arn:aws:states:us-east-1:123456789012:express:agent-none:{workflow_id}:0f0f0f0f-aaaa-bbbb-cccc-123412341234"
    deps.workflows.create({"workflow_id": workflow_id, "tenant_id": TENANT, "event_id": f"evt-{uid}",
                           "idempotency_key": f"key-{uid}", "event_type": "plugin.job.failed",
                           "strategy_id": "ticket-on-job-failed", "strategy_version": 1,
                           "state_machine_type": "EXPRESS"}, ["open-ticket"])
    deps.workflows.update_meta(workflow_id, execution_arn=arn)
    result = CliRunner().invoke(app, ["workflow", "show", workflow_id, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["execution"]["status"] == "UNKNOWN"
    repaired = CliRunner().invoke(app, ["repair", "--format", "json", "--tenant", TENANT])
    findings = [f for f in json.loads(repaired.output)["findings"] if f["subject"].startswith(workflow_id)]
    assert not [f for f in findings if f["code"] == "workflow.execution_gone"]  # unknown is not gone


def _failed_job(uid: str) -> dict[str, Any]:
    return {"tenant_id": "acme", "event_id": f"evt-{uid}", "idempotency_key": f"job-{uid}:failed",
            "occurred_at": "2026-11-28T10:00:00Z", "context": {"actor": "tests"},
            "payload": {"job": {"id": uid, "type": "report", "retriable": False}, "error": {"message": "disk full"}}}


def test_given_an_express_start_lost_when_the_runbook_is_followed_then_no_second_start_and_the_event_runs_anew(
        rt, uid, tmp_path):
    from powerx_agent.ingest.service import workflow_id_for

    deps = get_deps()
    since = _iso(time.time() - 1)
    workflow_id = workflow_id_for("acme", f"job-{uid}:failed")
    sfn = deps.client("stepfunctions")
    starts: list[str] = []

    def lose_the_start(params: dict[str, Any], **_: Any) -> None:
        if params.get("name") == workflow_id:
            starts.append(params["name"])
            raise RuntimeError("injected: the matcher dies in StartExecution")

    sfn.meta.events.register("provide-client-params.states.StartExecution", lose_the_start)
    try:
        rt.put_event("plugin.job.failed", _failed_job(uid))
        rt.wait_idle(60)
    finally:
        sfn.meta.events.unregister("provide-client-params.states.StartExecution", lose_the_start)
    assert starts == [workflow_id]  # redeliveries were refused by the guard: never a second StartExecution
    stuck = [m for m in rt.dlq_messages(spec.MATCH_DLQ.name) if workflow_id in m["Body"]]
    assert stuck, "the message ends in the match DLQ"
    shown = CliRunner().invoke(app, ["workflow", "show", workflow_id, "--format", "json"])
    assert json.loads(shown.output)["workflow"]["status"] == "PENDING" and json.loads(shown.output)["execution"] is None

    # the runbook: stop it, replay the message's event with a new key
    stopped = CliRunner().invoke(app, ["workflow", "stop", workflow_id, "--by", "tester", "--reason", "Express start lost"])
    assert stopped.exit_code == 0, stopped.output
    path = tmp_path / "stuck.jsonl"
    path.write_text(stuck[0]["Body"] + "\n")
    replayed = CliRunner().invoke(app, ["replay", "--file", str(path), "--new-key"])
    assert replayed.exit_code == 0, replayed.output
    assert rt.wait_idle(60)
    fresh = workflow_id_for("acme", f"job-{uid}:failed#replay-1")
    assert deps.workflows.get(fresh)["status"] == "SUCCEEDED"
    assert deps.workflows.get(workflow_id)["status"] == "STOPPED"
    # the trail is complete: the stopped workflow never started (no workflow.started is owed), its nodes are skipped
    verified = CliRunner().invoke(app, ["audit", "verify", "--tenant", "acme", "--since", since])
    assert verified.exit_code == 0 and "Completeness: 100.00%" in verified.output, verified.output
    assert {r["node_id"] for r in deps.audit.chain(f"WF#{workflow_id}") if r["kind"] == "node.skipped"} == \
        set(deps.workflows.get(workflow_id)["nodes"])


def test_given_an_express_workflow_when_stopped_then_marked_stopped_without_calling_stop_execution(express_workflow):
    workflow_id, _ = express_workflow
    sfn = get_deps().client("stepfunctions")
    calls: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["executionArn"])

    sfn.meta.events.register("provide-client-params.states.StopExecution", count)
    try:
        result = CliRunner().invoke(app, ["workflow", "stop", workflow_id, "--by", "tester", "--format", "json"])
    finally:
        sfn.meta.events.unregister("provide-client-params.states.StopExecution", count)
    assert result.exit_code == 0, result.output
    (stopped,) = json.loads(result.output)
    assert stopped["execution_status"] == "NOT_STOPPABLE" and calls == []  # StopExecution does not serve Express
    assert get_deps().workflows.get(workflow_id)["status"] == "STOPPED"


def test_given_an_express_execution_logged_without_its_input_when_retried_then_refused_with_the_way_out(
        express_workflow):
    workflow_id, _ = express_workflow
    get_deps().workflows.transition_workflow(workflow_id, "FAILED")
    result = CliRunner().invoke(app, ["workflow", "retry", workflow_id, "--by", "tester"])
    assert result.exit_code == 1
    assert "takeover.input_unknown" in result.output and "replay --new-key" in result.output
    assert get_deps().workflows.get(workflow_id)["status"] == "FAILED"  # nothing changed
