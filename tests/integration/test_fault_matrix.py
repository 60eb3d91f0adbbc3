"""The fault matrix of docs/reliability.md: one test per row, on the embedded runtime.

Each test injects one fault, lets the pipeline run to rest, and checks (a) what the system did,
(b) the outcome of every event (succeeded after retries or escalated, nothing lost), and (c) that
``audit verify`` finds the audit trail of every workflow involved complete and intact (100%).
Strategy library corruption (last known good serves, alarm metric moves) is tested in
``tests/integration/test_strategy_lifecycle.py``; a crash between the idempotency write and the
match in ``tests/integration/test_idempotency_governance.py``.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from helpers import chain_kinds, detail, send

from powerx_agent import spec
from powerx_agent.deps import get_deps
from powerx_agent.escalation.service import escalate
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.ops.audit import verify


def since_now() -> str:
    return (datetime.now(UTC) - timedelta(seconds=2)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def assert_audit_complete(since: str, workflow_ids: list[str]) -> None:
    """``audit verify`` over the records written since the test started, for these workflows: no gap."""
    report = verify(get_deps(), since=since)
    mine = {f"WF#{w}" for w in workflow_ids}
    gaps = [g for g in report.gaps if g.unit in mine or g.workflow_id in workflow_ids]
    in_flight = [u for u in report.in_flight if u.get("workflow_id") in workflow_ids]
    assert gaps == [], [str(g) for g in gaps]
    assert in_flight == []


def put_many(rt: Any, bodies: list[dict[str, Any]]) -> None:
    for i in range(0, len(bodies), 10):
        answer = rt.put_events([{"Source": "powerx.plugins", "DetailType": "plugin.job.completed",
                                 "Detail": json.dumps(b), "EventBusName": spec.BUS_NAME} for b in bodies[i:i + 10]])
        assert answer["FailedEntryCount"] == 0


def workflows_of(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    deps = get_deps()
    return [deps.workflows.get(workflow_id_for(b["tenant_id"], b["idempotency_key"])) for b in bodies]


# -------------------------------------------------------------------------------- plugin faults
def test_given_plugins_answer_30pct_5xx_when_12_events_run_then_every_event_ends_succeeded_or_escalated(rt, uid):
    since = since_now()
    rt.sandbox.flaky("report-renderer", 0.3, seed=7)
    rt.sandbox.flaky("s3-archiver", 0.3, seed=11)
    bodies = [detail(f"{uid}-{i}") for i in range(12)]
    put_many(rt, bodies)
    assert rt.wait_idle(timeout=90)
    workflows = workflows_of(bodies)
    statuses = [w["status"] for w in workflows]
    assert set(statuses) <= {"SUCCEEDED", "ESCALATED"} and len(statuses) == 12  # none lost, none stuck
    calls = rt.sandbox.plugin_calls("report-renderer") + rt.sandbox.plugin_calls("s3-archiver")
    assert any(c.status == 503 for c in calls) and any(c.status == 200 for c in calls)
    for w in workflows:  # every retry reused the node's Idempotency-Key
        for node in ("render", "archive"):
            keys = {c.headers["Idempotency-Key"] for c in calls if c.body["workflow_id"] == w["workflow_id"]
                    and c.body["node_id"] == node}
            assert len(keys) <= 1
    escalated = [w for w in workflows if w["status"] == "ESCALATED"]
    open_reviews = {r["workflow_id"] for r in get_deps().workflows.open_reviews()}
    assert all(w["workflow_id"] in open_reviews for w in escalated)  # each failure is a review item
    retried = sum(1 for w in workflows for n in w["nodes"].values() if int(n.get("attempts") or 0) > 1)
    assert retried >= 1
    failed_calls = sum(1 for c in calls if c.status == 503)
    print(f"\nfault-matrix 30% 5xx: {len(calls)} plugin calls, {failed_calls} answered 503, {retried} node(s) "
          f"retried, {statuses.count('SUCCEEDED')}/12 workflows succeeded after retries, {len(escalated)} escalated")
    assert_audit_complete(since, [w["workflow_id"] for w in workflows])


def test_given_plugin_times_out_once_when_workflow_runs_then_retried_with_same_key_and_succeeds(rt, uid):
    since = since_now()
    rt.sandbox.slow("s3-archiver", 2.5, times=1)  # > HTTP_READ_TIMEOUT=2 on the first call only
    wf = send(rt, "plugin.job.completed", detail(uid))
    assert wf["status"] == "SUCCEEDED"
    assert wf["nodes"]["archive"]["attempts"] == 2
    calls = rt.sandbox.plugin_calls("s3-archiver")
    assert len(calls) == 2 and len({c.headers["Idempotency-Key"] for c in calls}) == 1
    assert_audit_complete(since, [wf["workflow_id"]])


def test_given_plugin_slow_within_timeout_when_workflow_runs_then_succeeds_first_time(rt, uid):
    since = since_now()
    rt.sandbox.slow("report-renderer", 0.8)
    wf = send(rt, "plugin.job.completed", detail(uid))
    assert wf["status"] == "SUCCEEDED"
    assert wf["nodes"]["render"]["attempts"] == 1
    assert len(rt.sandbox.plugin_calls("report-renderer")) == 1
    assert_audit_complete(since, [wf["workflow_id"]])


# -------------------------------------------------------------------------------- people-facing services
def test_given_notifications_down_when_notify_node_runs_then_escalated_and_escalation_notify_retried_then_resent(
        rt, uid):
    since = since_now()
    rt.sandbox.service_down("notifications")
    wf = send(rt, "plugin.job.completed", detail(uid))
    assert wf["status"] == "ESCALATED"
    assert wf["nodes"]["tell-owner"]["status"] == "ESCALATED"
    notes = rt.sandbox.calls("/notifications/agent-task")
    node_calls = [c for c in notes if c.body.get("type") == "agent_task"]
    escalation_calls = [c for c in notes if c.body.get("type") == "escalated"]
    assert len(node_calls) >= 1 and all(c.status == 503 for c in notes)
    assert len(escalation_calls) >= 2  # the Escalate state retried the escalation's notification
    execution = rt.client("stepfunctions").describe_execution(executionArn=wf["execution_arn"])
    assert execution["status"] == "FAILED" and execution["error"] == "Agent.EscalationFailed"
    reviews = get_deps().workflows.open_reviews_for(wf["workflow_id"])
    assert len(reviews) == 1 and reviews[0].get("ops_sent") and not reviews[0].get("notified")
    assert len(rt.sandbox.calls("/ops/manual-review")) == 1  # the work order went out exactly once
    # not lost: once notifications are back, re-running the escalation sends only what is missing
    rt.sandbox.service_up("notifications")
    review = reviews[0]
    escalate(get_deps(), get_deps().metrics(), workflow_id=wf["workflow_id"], tenant_id="acme",
             event_id=wf["event_id"], reason=review["reason"], queue=review["queue"], notify_to=["ops-oncall"],
             details=review["details"], strategy_id=wf["strategy_id"], node_id=review.get("node_id"))
    assert get_deps().workflows.get_review(review["review_id"]).get("notified")
    assert len(rt.sandbox.calls("/ops/manual-review")) == 1
    assert rt.sandbox.calls("/notifications/agent-task")[-1].status == 202
    assert_audit_complete(since, [wf["workflow_id"]])


def test_given_ops_review_fails_twice_when_escalating_then_escalate_state_retries_and_work_order_lands_once(rt, uid):
    since = since_now()
    rt.sandbox.fail_always("report-renderer", status=422)
    rt.sandbox.service_fail_times("ops", 2)
    wf = send(rt, "plugin.job.completed", detail(uid))
    assert wf["status"] == "ESCALATED"
    ops = rt.sandbox.calls("/ops/manual-review")
    assert [c.status for c in ops] == [503, 503, 201]
    assert len({c.headers["Idempotency-Key"] for c in ops}) == 1
    execution = rt.client("stepfunctions").describe_execution(executionArn=wf["execution_arn"])
    assert execution["error"] == "Agent.WorkflowEscalated"
    review = get_deps().workflows.open_reviews_for(wf["workflow_id"])[0]
    assert review.get("ops_sent") and review.get("notified")
    assert chain_kinds(wf["workflow_id"]).count("escalation.opened") == 1
    assert_audit_complete(since, [wf["workflow_id"]])


def test_given_ops_review_down_for_good_when_escalating_then_escalation_failed_but_review_kept_open_and_resendable(
        rt, uid):
    since = since_now()
    rt.sandbox.fail_always("report-renderer", status=422)
    rt.sandbox.service_down("ops")
    wf = send(rt, "plugin.job.completed", detail(uid))
    execution = rt.client("stepfunctions").describe_execution(executionArn=wf["execution_arn"])
    assert execution["status"] == "FAILED" and execution["error"] == "Agent.EscalationFailed"
    assert len(rt.sandbox.calls("/ops/manual-review")) == 3  # the Escalate state's 3 attempts
    reviews = get_deps().workflows.open_reviews_for(wf["workflow_id"])
    assert len(reviews) == 1 and not reviews[0].get("ops_sent")  # kept: OPEN, work order not yet sent
    assert wf["status"] == "ESCALATED"
    rt.sandbox.service_up("ops")
    review = reviews[0]
    escalate(get_deps(), get_deps().metrics(), workflow_id=wf["workflow_id"], tenant_id="acme",
             event_id=wf["event_id"], reason=review["reason"], queue=review["queue"], notify_to=["ops-oncall"],
             details=review["details"], strategy_id=wf["strategy_id"], node_id=review.get("node_id"))
    ops = rt.sandbox.calls("/ops/manual-review")
    assert ops[-1].status == 201 and ops[-1].headers["Idempotency-Key"] == review["review_id"]
    assert get_deps().workflows.get_review(review["review_id"]).get("ops_sent")
    assert chain_kinds(wf["workflow_id"]).count("escalation.opened") == 1
    assert_audit_complete(since, [wf["workflow_id"]])


# -------------------------------------------------------------------------------- AWS-side faults
class Throttle:
    """A botocore ``before-send`` hook answering DynamoDB PutItem with a throttling error N times:
    the request never reaches the table, and botocore's standard retry mode retries it."""

    def __init__(self, times: int, table: str) -> None:
        self.left, self.table, self.fired = times, table, 0
        self._lock = threading.Lock()

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        with self._lock:
            if self.left <= 0 or f'"TableName": "{self.table}"' not in body.replace('":"', '": "'):
                return None
            self.left -= 1
            self.fired += 1
        payload = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                              "message": "injected: the level of configured provisioned throughput was exceeded"})

        class Raw:
            def stream(self, **_: Any) -> Any:
                yield payload.encode()

        return AWSResponse(request.url, 400, {"x-amzn-RequestId": "injected", "Content-Type":
                                              "application/x-amz-json-1.0"}, Raw())


def test_given_dynamodb_throttles_put_item_when_events_run_then_sdk_retries_and_nothing_is_lost(rt, uid):
    since = since_now()
    ddb = get_deps().ddb
    throttle = Throttle(6, spec.AUDIT_TABLE.name)
    ddb.meta.events.register("before-send.dynamodb.PutItem", throttle)
    try:
        bodies = [detail(f"{uid}-{i}") for i in range(3)]
        put_many(rt, bodies)
        assert rt.wait_idle(timeout=60)
    finally:
        ddb.meta.events.unregister("before-send.dynamodb.PutItem", throttle)
    assert throttle.fired == 6
    workflows = workflows_of(bodies)
    assert [w["status"] for w in workflows] == ["SUCCEEDED"] * 3
    assert_audit_complete(since, [w["workflow_id"] for w in workflows])


class CrashAfterSuccess:
    """The node Lambda dies after the plugin answered 200 and before the SUCCEEDED write-back: the
    first UpdateItem that would mark the node SUCCEEDED raises (once), as a lost Lambda would."""

    def __init__(self, node_id: str, workflow_id: str) -> None:
        self.node_id, self.workflow_id, self.fired = node_id, workflow_id, 0

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        values = params.get("ExpressionAttributeValues", {})
        key = params.get("Key", {})
        if (not self.fired and key.get("sk", {}).get("S") == f"NODE#{self.node_id}"
                and key.get("pk", {}).get("S") == f"WF#{self.workflow_id}"
                and values.get(":status", {}).get("S") == "SUCCEEDED"):
            self.fired += 1
            raise ClientError({"Error": {"Code": "ServiceUnavailable",
                                         "Message": "injected crash between completion and write-back"}}, "UpdateItem")


def _run_with_crash(rt: Any, uid: str) -> tuple[dict[str, Any], CrashAfterSuccess]:
    body = detail(uid)
    workflow_id = workflow_id_for(body["tenant_id"], body["idempotency_key"])
    ddb = get_deps().ddb
    crash = CrashAfterSuccess("render", workflow_id)
    ddb.meta.events.register("before-parameter-build.dynamodb.UpdateItem", crash)
    try:
        wf = send(rt, "plugin.job.completed", body)
    finally:
        ddb.meta.events.unregister("before-parameter-build.dynamodb.UpdateItem", crash)
    return wf, crash


def test_given_node_crashes_after_plugin_success_when_state_machine_retries_then_same_key_twice_and_one_success(
        rt, uid):
    since = since_now()
    wf, crash = _run_with_crash(rt, uid)
    assert crash.fired == 1
    calls = rt.sandbox.plugin_calls("report-renderer")
    assert [c.status for c in calls] == [200, 200]
    assert len({c.headers["Idempotency-Key"] for c in calls}) == 1  # the plugin can de-duplicate
    assert wf["status"] == "SUCCEEDED" and wf["nodes"]["render"]["status"] == "SUCCEEDED"
    records = [r for r in get_deps().audit.chain(f"WF#{wf['workflow_id']}") if r["kind"] == "node.succeeded"]
    assert sorted(r["node_id"] for r in records) == ["archive", "render", "tell-owner"]  # render once
    assert_audit_complete(since, [wf["workflow_id"]])


def test_given_same_event_20_times_concurrently_when_ingested_then_one_workflow_and_19_duplicates(rt, uid):
    since = since_now()
    body = detail(uid)
    workflow_id = workflow_id_for(body["tenant_id"], body["idempotency_key"])
    gate = threading.Barrier(2)

    def burst() -> None:
        gate.wait(timeout=10)
        put_many(rt, [body] * 10)

    threads = [threading.Thread(target=burst) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert rt.wait_idle(timeout=60)
    kinds = chain_kinds(workflow_id)
    assert kinds.count("event.accepted") == 1 and kinds.count("workflow.started") == 1
    dlq = [m for m in rt.dlq_messages(spec.INGEST_DLQ.name) if body["event_id"] in m["Body"]]
    # a delivery that met the first one's lease is retried by EventBridge until it is a duplicate
    assert kinds.count("event.duplicate") + len(dlq) == 19
    assert get_deps().workflows.get(workflow_id)["status"] == "SUCCEEDED"
    executions = rt.client("stepfunctions").list_executions(
        stateMachineArn=get_deps().workflows.get(workflow_id)["state_machine_arn"])["executions"]
    assert sum(1 for e in executions if e["name"] == workflow_id) == 1
    assert_audit_complete(since, [workflow_id])
