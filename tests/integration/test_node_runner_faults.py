"""Node runners on the embedded runtime with injected faults: read timeouts, callback timeouts,
heartbeats, exact escalation counting and downstream credentials. Each test checks
``agent_workflows``, the audit trail and what the sandbox received."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from helpers import chain_kinds, detail, post_signed, send

from powerx_agent import spec
from powerx_agent.adapters.metrics import LogShipper, read_emf_totals
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for


def wait_for(check: Any, timeout: float = 30.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    return check()


def callback_strategy(uid: str, tenant: str, event_type: str, callback: str) -> str:
    return f"""
id: cb-{uid}
version: 1
status: approved
owner: tests@example.com
tenants: [{tenant}]
on: {{event: {event_type}}}
weight: 10
flow:
  mode: standard
  timeout: 5m
  nodes:
    - id: provision
      plugin: provisioner
      input: {{request: "r-{uid}"}}
      callback: {callback}
    - id: tell
      notify: {{to: "${{owner}}", template: provisioned}}
      after: [provision]
  on_failure:
    escalate: {{queue: platform, notify: [platform-oncall]}}
"""


def publish_local_strategy(rt, uid: str, callback: str) -> tuple[str, str]:
    """A tenant and a strategy of this test only (unique ids, unique event type); returns
    (tenant, event type) once the matcher's library (refreshed every second) can see it."""
    deps = get_deps()
    tenant, event_type = f"t-{uid}", f"test.callback.{uid}"
    deps.tenants.put({"tenant_id": tenant, "status": "active", "name": f"tests {uid}", "owner": f"owner@{uid}.example",
                      "notify": [f"owner@{uid}.example"], "allowed_event_types": ["*"], "allowed_plugins": ["*"],
                      "idempotency_ttl_hours": 1})
    deps.strategies.publish(f"cb-{uid}", 1, callback_strategy(uid, tenant, event_type, callback), "tests")
    deps.strategies.approve(f"cb-{uid}", 1, "tests", "test-local strategy")
    rt.clock.advance(1.3)  # the matcher refreshes its library every LIBRARY_REFRESH_SECONDS=1
    return tenant, event_type


def test_given_plugin_read_times_out_once_when_workflow_runs_then_retried_and_succeeds(rt, uid):
    rt.sandbox.slow("report-renderer", 2.6, times=1)  # > HTTP_READ_TIMEOUT=2
    wf = send(rt, "plugin.job.completed", detail(uid))
    assert wf["status"] == "SUCCEEDED"
    render = wf["nodes"]["render"]
    assert render["status"] == "SUCCEEDED" and render["attempts"] == 2
    assert render["last_error"]["type"] == "PluginUnavailable" and "timed out" in render["last_error"]["message"]
    calls = rt.sandbox.plugin_calls("report-renderer")
    assert len(calls) == 2 and len({c.headers["Idempotency-Key"] for c in calls}) == 1
    # the sandbox records a request when it answers: the slow first one is recorded last
    assert sorted(c.body["context"]["attempt"] for c in calls) == [1, 2]
    kinds = chain_kinds(wf["workflow_id"])
    assert kinds.count("node.attempt_failed") == 1 and "node.failed" not in kinds
    assert kinds[-1] == "workflow.succeeded"
    # C-1 (approve skipped) ran on its Express head, which had no time for a retry: it handed the workflow
    # off to the Standard machine, where the second attempt ran and the rest of the flow finished
    assert kinds.count("workflow.handed_off") == 1
    assert wf["head_execution_arn"] != wf["execution_arn"] and wf["execution_arn"].endswith(f":{wf['workflow_id']}")
    assert wf["state_machine_type"] == "STANDARD" and wf["state_machine_arn"] == wf["continuation_state_machine_arn"]
    assert wf["handed_off_because"]["error"] == "HandOff"
    assert wf["nodes"]["approve"]["status"] == "SKIPPED" and kinds.count("node.skipped") == 1


def test_given_async_plugin_never_calls_back_when_callback_times_out_then_escalated_and_late_callback_409(rt, uid):
    tenant, event_type = publish_local_strategy(rt, uid, "{timeout: 1s}")
    rt.sandbox.async_callback("provisioner", delay=600)  # answers 202 and stays silent
    body = detail(uid, tenant=tenant, request={"id": uid})
    wf = send(rt, event_type, body, source="powerx.ops")
    assert wf is not None and wf["strategy_id"] == f"cb-{uid}"
    assert wf["status"] == "ESCALATED" and wf["escalation_reason"] == "node_failed"
    assert wf["failure"]["failing_node"] == "provision" and wf["failure"]["error"] == "States.Timeout"
    assert wf["nodes"]["provision"]["status"] == "ESCALATED"
    assert wf["nodes"]["tell"]["status"] == "SKIPPED"
    call = rt.sandbox.plugin_calls("provisioner")[0]
    assert call.status == 202 and "task_token" not in json.dumps(call.body)
    orders = [c for c in rt.sandbox.calls("/ops/manual-review") if c.body["workflow_id"] == wf["workflow_id"]]
    assert len(orders) == 1 and orders[0].body["queue"] == "platform"
    assert orders[0].body["details"]["error"] == "States.Timeout"
    kinds = chain_kinds(wf["workflow_id"])
    assert {"node.waiting", "node.failed", "callback.expired", "workflow.escalated", "escalation.opened"} <= set(kinds)
    late = post_signed(rt, "/internal/agent/callbacks", {"callback_id": call.body["callback_id"],
                                                         "outcome": "succeeded", "output": {"late": True}})
    assert late.status_code == 409 and late.json()["first_outcome"] == "timed_out"
    assert get_deps().workflows.get(wf["workflow_id"])["nodes"]["provision"]["status"] == "ESCALATED"


def test_given_async_plugin_waiting_when_heartbeats_arrive_then_accepted_while_open_and_409_after(rt, uid):
    tenant, event_type = publish_local_strategy(rt, uid, "{timeout: 5m, heartbeat: 1m}")
    rt.sandbox.async_callback("provisioner", delay=600)
    body = detail(uid, tenant=tenant, request={"id": uid})
    rt.put_event(event_type, body, source="powerx.ops")
    workflow_id = workflow_id_for(tenant, body["idempotency_key"])
    assert wait_for(lambda: rt.sandbox.plugin_calls("provisioner"))
    callback_id = rt.sandbox.plugin_calls("provisioner")[0].body["callback_id"]
    assert wait_for(lambda: (get_deps().workflows.get_callback(callback_id) or {}).get("status") == "OPEN")
    beats = [post_signed(rt, "/internal/agent/callbacks", {"callback_id": callback_id, "outcome": "heartbeat"})
             for _ in range(2)]
    assert [b.status_code for b in beats] == [200, 200]
    assert get_deps().workflows.get(workflow_id)["nodes"]["provision"]["status"] == "RUNNING"
    done = post_signed(rt, "/internal/agent/callbacks", {"callback_id": callback_id, "outcome": "succeeded",
                                                         "output": {"environment": "env-1"}})
    assert done.status_code == 200
    assert rt.wait_idle(30)
    wf = get_deps().workflows.get(workflow_id)
    assert wf["status"] == "SUCCEEDED" and wf["nodes"]["provision"]["output"] == {"environment": "env-1"}
    after = post_signed(rt, "/internal/agent/callbacks", {"callback_id": callback_id, "outcome": "heartbeat"})
    assert after.status_code == 409 and after.json()["first_outcome"] == "succeeded"
    assert chain_kinds(workflow_id).count("callback.received") == 1
    assert len(rt.sandbox.plugin_calls("provisioner")) == 1


def _escalations(tenant: str, strategy: str) -> float:
    deps = get_deps()
    totals = read_emf_totals(deps.client("logs"), deps.settings.metrics_log_group)
    return totals.get((spec.METRICS["escalations"], (("strategy", strategy), ("tenant", tenant))), 0.0)


def _last_backlog_gauge() -> float | None:
    deps = get_deps()
    latest: tuple[int, float] | None = None
    LogShipper.flush_all(reading=deps.client("logs"))  # a shipper an earlier CLI test left on a dead endpoint waits
    paginator = deps.client("logs").get_paginator("filter_log_events")
    for page in paginator.paginate(logGroupName=deps.settings.metrics_log_group,
                                   filterPattern=f'"{spec.METRICS["review_backlog"]}"'):
        for event in page.get("events", []):
            doc = json.loads(event["message"])
            stamp = (doc["_aws"]["Timestamp"], event["timestamp"])
            if latest is None or stamp >= latest[0]:
                latest = (stamp, float(doc[spec.METRICS["review_backlog"]][0]
                                       if isinstance(doc[spec.METRICS["review_backlog"]], list)
                                       else doc[spec.METRICS["review_backlog"]]))
    return None if latest is None else latest[1]


def test_given_escalate_state_retried_when_escalation_runs_twice_then_count_and_backlog_stay_exact(rt, uid):
    deps = get_deps()
    total_before = _escalations("acme", "report-on-job-completed")
    open_before = deps.workflows.count_open_reviews()
    rt.sandbox.fail_always("report-renderer", status=422)
    wf = send(rt, "plugin.job.completed", detail(uid))
    assert wf["status"] == "ESCALATED"
    execution = rt.client("stepfunctions").describe_execution(executionArn=wf["execution_arn"])
    payload = {"action": "escalate", "workflow": json.loads(execution["input"])["workflow"],
               "failure": {"Error": "PluginRejected", "Cause": json.dumps({"errorMessage": "rejected"})},
               "escalation": {"queue": "ops", "notify": ["ops-oncall"]}}
    with ThreadPoolExecutor(2) as pool:  # the Escalate state retried, twice, at the same time
        answers = list(pool.map(lambda _: rt.invoke("workflow", payload), range(2)))
    assert [error for _, error in answers] == [None, None]
    assert len({answer["review_id"] for answer, _ in answers}) == 1
    assert _escalations("acme", "report-on-job-completed") == total_before + 1
    assert deps.workflows.count_open_reviews() == open_before + 1
    assert _last_backlog_gauge() == open_before + 1
    orders = [c for c in rt.sandbox.calls("/ops/manual-review") if c.body["workflow_id"] == wf["workflow_id"]]
    assert len(orders) == 1
    assert chain_kinds(wf["workflow_id"]).count("escalation.opened") == 1


def test_given_downstream_calls_when_made_then_bearer_token_from_secrets_manager_and_never_in_audit_or_logs(
        rt, uid, capfd):
    credentials = rt.deployment.downstream_credentials
    rt.sandbox.fail_times("report-renderer", 1, status=500)  # an error path is logged and audited too
    wf = send(rt, "plugin.job.completed", detail(uid))
    assert wf["status"] == "SUCCEEDED"
    plugin_calls = rt.sandbox.plugin_calls("report-renderer") + rt.sandbox.plugin_calls("s3-archiver")
    notifications = rt.sandbox.calls("/notifications/agent-task")
    assert plugin_calls and notifications
    assert {c.headers["Authorization"] for c in plugin_calls} == {f"Bearer {credentials['plugin_runtime_token']}"}
    assert {c.headers["Authorization"] for c in notifications} == {f"Bearer {credentials['notifications_token']}"}
    lambda_env = rt.client("lambda").get_function_configuration(
        FunctionName=spec.FUNCTIONS_BY_KEY["node_plugin"].name)["Environment"]["Variables"]
    tokens = list(credentials.values())
    assert not any(token in json.dumps(lambda_env) for token in tokens)  # not in plain environment variables
    audit_text = json.dumps(get_deps().audit.scan_all(), default=str)
    assert wf["workflow_id"] in audit_text
    logs = rt.client("logs")
    LogShipper.flush_all(reading=get_deps().client("logs"))  # not failed by a shipper of a dead endpoint
    groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    assert spec.AUDIT_LOG_GROUP in groups
    log_text = "".join(e["message"] for group in groups
                       for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group)
                       for e in page.get("events", []))
    assert log_text  # the search ran over real log events
    captured = capfd.readouterr()
    for token in tokens:
        assert token not in audit_text
        assert token not in log_text
        assert token not in captured.out + captured.err
