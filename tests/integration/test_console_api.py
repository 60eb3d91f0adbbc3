"""The console's JSON API (the one its pages use) on the embedded runtime: reads, paging, filters, the
guards of every action (CSRF, explicit confirmation, own Host and Origin, strict CSP) and the actions
themselves, audited under the console's operator. Runs without a browser."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerx_agent.audit.records import workflow_chain
from powerx_agent.console.app import CSP, ConsoleContext, create_app
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.local.demo import c1_event, run_c1
from tests.integration.helpers import running_canary, waiting_review

ACTOR = "console-tests"
HOST = "127.0.0.1:8787"


@pytest.fixture(scope="module")
def context() -> ConsoleContext:
    ctx = ConsoleContext(get_deps, ACTOR, "embedded runtime (tests)")
    ctx.allowed_hosts = {HOST}
    return ctx


@pytest.fixture(scope="module")
def client(runtime, context):
    app = create_app(context)
    return app.test_client()


def get(client, path: str, **kw: Any):
    return client.get(path, headers={"Host": HOST}, **kw)


def post(client, context, path: str, body: dict[str, Any], token: str | None = None, **headers: str):
    return client.post(path, data=json.dumps(body), content_type="application/json",
                       headers={"Host": HOST, "X-CSRF-Token": context.csrf if token is None else token, **headers})


@pytest.fixture(scope="module")
def c1(runtime):
    runtime.sandbox.reset()
    result = run_c1(runtime, suffix=f"-console-{int(time.time() * 1000)}")
    assert result.ok, result.expectations
    return result


def test_given_c1_when_its_workflow_is_read_then_every_node_has_status_input_output_and_call(client, c1):
    answer = get(client, f"/api/workflows/{c1.workflow_id}")
    assert answer.status_code == 200
    data = answer.get_json()
    nodes = {n["node_id"]: n for n in data["nodes"]}
    assert {k: nodes[k]["status"] for k in ("render", "archive", "tell-owner", "approve")} == {
        "render": "SUCCEEDED", "archive": "SUCCEEDED", "tell-owner": "SUCCEEDED", "approve": "SKIPPED"}
    assert nodes["render"]["input"] == {"job": "42", "name": "daily-42", "rows": 1200}
    assert nodes["render"]["output"]["plugin"] == "report-renderer"
    assert nodes["render"]["call"] == {"method": "POST", "path": "/plugin/runtime/report-renderer/execute",
                                       "idempotency_key": f"{c1.workflow_id}:render"}
    # the graph colours the skipped state of a node that ran as not run, and the skipped node grey
    assert data["graph"]["status"]["render.skipped"] == "PENDING"
    assert data["graph"]["status"]["approve.skipped"] == "SKIPPED"
    assert data["decision"]["candidates"][0]["matched"] is True
    assert data["audit"]["verified"] is True and data["audit"]["chain"] == workflow_chain(c1.workflow_id)
    assert data["links"]["execution"].startswith("https://us-east-1.console.aws.amazon.com/states/home")
    assert data["live"] is False


def test_given_a_bounded_decision_record_when_its_workflow_is_shown_then_it_says_where_every_candidate_is(client, c1):
    data = get(client, f"/api/workflows/{c1.workflow_id}").get_json()["decision"]
    assert data["complete"] is False and data["candidates_total"] == 1 and data["unlisted"] == 0
    assert data["candidates"][0]["strategy_id"] == "report-on-job-completed"
    page = get(client, f"/workflows/{c1.workflow_id}").get_data(as_text=True)
    assert "1 candidate(s) in all, every one listed." in page
    # a library where most candidates are counted, not listed (as the matcher records one of 10,000)
    deps = get_deps()
    bounded = deps.workflows.get(c1.workflow_id)["decision"]
    many = {**bounded, "candidates_total": 50, "others": {"key_mismatch": 40, "ranked_below": 6},
            "near_misses": [{"strategy_id": f"bigger-{i}", "version": 1, "weight": 200 - i, "reason": "condition_failed",
                             "failed": {"path": "$.payload.rows", "op": "gt", "expected": 100000, "actual": 1200}}
                            for i in range(3)]}
    deps.workflows.update_meta(c1.workflow_id, decision=many)
    try:
        data = get(client, f"/api/workflows/{c1.workflow_id}").get_json()["decision"]
        assert [c["strategy_id"] for c in data["candidates"]] == [
            "report-on-job-completed", "bigger-0", "bigger-1", "bigger-2"]
        assert data["unlisted"] == 46
        page = get(client, f"/workflows/{c1.workflow_id}").get_data(as_text=True)
        assert "50 candidate(s) in all;" in page and "40 key mismatch, 6 ranked below." in page
        assert f'href="/strategies/test?revision={quote(bounded["library_revision"])}">Test a strategy</a>' in page
        assert "$.payload.rows gt 100000" in page
    finally:
        deps.workflows.update_meta(c1.workflow_id, decision=bounded)


def test_given_a_decision_recorded_before_the_bound_when_its_workflow_is_shown_then_every_candidate_is_listed(
        client, c1):
    deps = get_deps()
    bounded = deps.workflows.get(c1.workflow_id)["decision"]
    old = {k: bounded[k] for k in ("event_id", "tenant_id", "event_type", "library_revision", "selected")}
    old["candidates"] = [{**bounded["selected"], "matched": True, "failed": None},
                         {"strategy_id": "older-strategy", "version": 1, "weight": 1, "matched": False,
                          "failed": {"path": "$.payload.rows", "op": "gt", "expected": 10, "actual": 1}}]
    deps.workflows.update_meta(c1.workflow_id, decision=old)
    try:
        data = get(client, f"/api/workflows/{c1.workflow_id}").get_json()["decision"]
        assert data["complete"] is True and data["candidates_total"] == 2
        assert [c["strategy_id"] for c in data["candidates"]] == ["report-on-job-completed", "older-strategy"]
        page = get(client, f"/workflows/{c1.workflow_id}").get_data(as_text=True)
        assert "older-strategy" in page and 'id="decision-bound"' not in page
    finally:
        deps.workflows.update_meta(c1.workflow_id, decision=bounded)


def test_given_workflows_when_listed_with_filters_and_pages_then_counts_and_pages_follow(client, c1):
    data = get(client, "/api/workflows?tenant=acme&size=1").get_json()
    assert data["size"] == 1 and len(data["items"]) == 1 and data["total"] >= 1
    assert data["pages"] == data["total"] and (data["next"] == 2 or data["total"] == 1)
    assert sum(data["counts"].values()) == data["total"]
    found = get(client, f"/api/workflows?q={c1.event_id}").get_json()
    assert [w["workflow_id"] for w in found["items"]] == [c1.workflow_id]
    done = get(client, "/api/workflows?tenant=acme&status=SUCCEEDED&strategy=report-on-job-completed").get_json()
    assert all(w["status"] == "SUCCEEDED" for w in done["items"]) and c1.workflow_id in {
        w["workflow_id"] for w in get(client, "/api/workflows?tenant=acme&status=SUCCEEDED&size=100").get_json()["items"]}


@pytest.mark.parametrize("query", ["status=DONE", "tenant=ACME!", "size=0", "size=101", "page=-1", "since=yesterday",
                                   "q=" + "x" * 300, "strategy=../etc"])
def test_given_a_bad_filter_when_listed_then_400_with_a_code(client, query):
    answer = get(client, f"/api/workflows?{query}")
    assert answer.status_code == 400 and answer.get_json()["code"] == "console.bad_parameter"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["tenant", "strategy", "status", "since", "q", "page", "size", "x"]),
                              st.text(max_size=300), max_size=5))
def test_given_any_list_parameters_when_sent_then_200_or_a_coded_400_never_a_crash(client, params):
    answer = client.get("/api/workflows", query_string=params, headers={"Host": HOST})
    assert answer.status_code in (200, 400), answer.data[:300]
    if answer.status_code == 400:
        assert answer.get_json()["code"].startswith("console.")


def test_given_any_page_when_served_then_strict_csp_and_no_script(client, c1):
    for path in ("/workflows", f"/workflows/{c1.workflow_id}", "/reviews", "/strategies", "/strategies/test",
                 "/health", "/api/workflows"):
        answer = get(client, path)
        assert answer.status_code == 200, path
        assert answer.headers["Content-Security-Policy"] == CSP and "script-src" not in CSP
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert b"<script" not in answer.data


def test_given_another_host_or_origin_when_requested_then_refused(client, context):
    assert client.get("/api/workflows", headers={"Host": "attacker.example:8787"}).status_code == 421
    answer = post(client, context, "/api/strategies/test", {"event": "{}"}, Origin="http://attacker.example")
    assert answer.status_code == 403 and answer.get_json()["code"] == "console.bad_origin"


def test_given_an_action_without_csrf_or_confirmation_when_posted_then_refused_and_nothing_changes(client, context,
                                                                                                 runtime, uid):
    workflow_id, review_id = waiting_review(runtime, f"-console-{uid}")
    no_token = post(client, context, f"/api/reviews/{review_id}/approve", {"reason": "x", "confirm": True}, token="")
    assert no_token.status_code == 403 and no_token.get_json()["code"] == "console.csrf"
    unconfirmed = post(client, context, f"/api/reviews/{review_id}/approve", {"reason": "x"})
    assert unconfirmed.status_code == 400 and unconfirmed.get_json()["code"] == "console.not_confirmed"
    no_reason = post(client, context, f"/api/reviews/{review_id}/approve", {"confirm": True})
    assert no_reason.status_code == 400 and no_reason.get_json()["code"] == "takeover.reason_required"
    assert get_deps().workflows.get_review(review_id)["status"] == "OPEN"
    # then the real thing: approved under the console's operator, the workflow finishes
    done = post(client, context, f"/api/reviews/{review_id}/approve", {"reason": "looks right", "confirm": True})
    assert done.status_code == 200, done.get_json()
    assert runtime.wait_idle(timeout=60)
    assert get_deps().workflows.get(workflow_id)["status"] == "SUCCEEDED"
    closed = [r for r in get_deps().audit.chain(workflow_chain(workflow_id)) if r["kind"] == "review.closed"]
    assert len(closed) == 1 and closed[0]["data"]["actor"] == ACTOR and closed[0]["status"] == "APPROVED"
    # approving it again: the server's refusal, with its code
    again = post(client, context, f"/api/reviews/{review_id}/approve", {"reason": "twice", "confirm": True})
    assert again.status_code == 409 and "already closed" in again.get_json()["message"]


def test_given_an_escalated_workflow_when_retried_from_the_console_then_generation_2_succeeds(client, context,
                                                                                           runtime, uid):
    runtime.sandbox.fail_always("report-renderer", 503)
    detail = c1_event(f"-retry-{uid}")
    runtime.put_event("plugin.job.completed", detail)
    assert runtime.wait_idle(timeout=90)
    runtime.sandbox.reset()
    workflow_id = workflow_id_for("acme", detail["idempotency_key"])
    assert get(client, f"/api/workflows/{workflow_id}").get_json()["workflow"]["status"] == "ESCALATED"
    unconfirmed = post(client, context, f"/api/workflows/{workflow_id}/retry", {})
    assert unconfirmed.status_code == 400 and unconfirmed.get_json()["code"] == "console.not_confirmed"
    retried = post(client, context, f"/api/workflows/{workflow_id}/retry", {"confirm": True})
    assert retried.status_code == 200, retried.get_json()
    assert retried.get_json()["generation"] == 2
    assert runtime.wait_idle(timeout=90)
    data = get(client, f"/api/workflows/{workflow_id}").get_json()
    assert data["workflow"]["status"] == "SUCCEEDED" and data["generation"] == 2
    render = next(n for n in data["nodes"] if n["node_id"] == "render")
    assert render["status"] == "SUCCEEDED" and render["generation"] == 2
    bad = post(client, context, f"/api/workflows/{workflow_id}/retry", {"confirm": True, "from": "no-such-node"})
    assert bad.status_code in (400, 409) and bad.get_json()["code"].startswith(("takeover.", "workflow."))


def test_given_the_session_when_read_then_the_token_actor_and_target(client, context):
    data = get(client, "/api/session").get_json()
    assert data == {"actor": ACTOR, "target": "embedded runtime (tests)", "csrf_token": context.csrf}


def test_given_strategies_when_listed_diffed_and_tested_then_the_published_library_answers(client, context):
    rows = get(client, "/api/strategies").get_json()["items"]
    assert {"report-on-job-completed", "ticket-on-job-failed"} <= {r["strategy_id"] for r in rows}
    assert any(r["active"] and r["approval"] for r in rows)
    diff = get(client, "/api/strategies/report-on-job-completed/diff").get_json()
    assert "id: report-on-job-completed" in diff["right"]
    event = {"source": "powerx.plugins", "detail-type": "plugin.job.completed", "detail": c1_event("-console-test")}
    tested = post(client, context, "/api/strategies/test", {"event": json.dumps(event)}).get_json()
    assert tested["decision"]["selected"]["strategy_id"] == "report-on-job-completed"
    # the test page explains every candidate, beside the bounded record the matcher writes
    assert tested["decision"]["candidates_total"] == len(tested["decision"]["candidates"]) >= 1
    assert tested["decision"]["candidates"][0]["strategy_id"] == "report-on-job-completed"
    assert tested["variables"]["report_name"] == "daily-42"
    # against a decision record's library revision: the current one, or one no longer kept (said so)
    current = tested["library_revision"]
    same = post(client, context, "/api/strategies/test", {"event": json.dumps(event), "revision": current}).get_json()
    assert same["library_revision"] == current and same["note"] is None
    gone = post(client, context, "/api/strategies/test", {"event": json.dumps(event), "revision": "r999999"}).get_json()
    assert gone["library_revision"] == current and "r999999 is no longer kept" in gone["note"]
    refused = post(client, context, "/api/strategies/test", {"event": json.dumps(event), "revision": "<b>"})
    assert refused.status_code == 400 and refused.get_json()["code"] == "console.bad_parameter"
    bad = post(client, context, "/api/strategies/test", {"event": "[1]"})
    assert bad.status_code == 400 and bad.get_json()["code"] == "console.bad_event"
    deep = post(client, context, "/api/strategies/test", {"event": "[" * 500 + "]" * 500})
    assert deep.status_code == 400 and deep.get_json()["code"].startswith("envelope.")


def test_given_health_when_read_then_five_metrics_with_targets_and_the_alarm_note(client, c1):
    data = get(client, "/api/health").get_json()
    assert [m["name"] for m in data["metrics"]] == ["hit_rate", "generation_p95_ms", "automated_success",
                                                     "manual_rate", "audit_completeness"]
    assert data["alarms"] is None and "embedded runtime creates none" in data["alarms_note"]
    verified = get(client, "/api/health?verify=1h").get_json()
    completeness = next(m for m in verified["metrics"] if m["name"] == "audit_completeness")
    assert completeness["value"] == verified["audit"]["completeness"] and verified["audit"]["since"] == "1h"
    again = get(client, "/api/health").get_json()  # the last verify is shown until asked again
    assert again["audit"]["verified_at"] == verified["audit"]["verified_at"]
    assert get(client, "/api/health?verify=forever").status_code == 400


def test_given_a_missing_workflow_or_review_when_read_then_404_with_a_code(client):
    assert get(client, "/api/workflows/wf-acme-0000").get_json()["code"].endswith("not_found")
    assert get(client, "/api/reviews/rv-00000000000000000000").status_code == 404
    assert get(client, "/api/reviews/not-a-review").status_code == 400


def test_given_the_console_command_when_run_then_it_serves_until_interrupted(runtime):
    import os
    import re
    import signal
    import subprocess
    import sys

    import requests

    env = {**os.environ, **runtime.environment}
    proc = subprocess.Popen([sys.executable, "-m", "powerx_agent.cli.main", "console", "--port", "0", "--by", "carol"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        url = re.search(r"console\s+(http://127\.0\.0\.1:\d+/)", line).group(1)
        session = requests.get(url + "api/session", timeout=10).json()
        assert session["actor"] == "carol" and session["target"].startswith("endpoint http://127.0.0.1:")
        assert requests.get(url + "workflows", timeout=30).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read()[-2000:]


def test_given_both_targets_when_the_console_starts_then_a_usage_error():
    from typer.testing import CliRunner

    from powerx_agent.cli.main import app

    done = CliRunner().invoke(app, ["console", "--endpoint-url", "http://127.0.0.1:1", "--stack", "s"])
    assert done.exit_code == 2 and "not both" in done.output


def deferred_event(rt, uid: str) -> dict[str, Any]:
    """An event recorded DEFERRED while the orchestrator was off (then switched on again)."""
    from powerx_agent.ops.flags import set_flag

    deps = get_deps()
    set_flag(deps, "agent-orchestrator", False, "console-tests")
    try:
        detail = c1_event(f"-deferred-{uid}")
        rt.put_event("plugin.job.completed", detail)
        assert rt.wait_idle(timeout=60)
    finally:
        set_flag(deps, "agent-orchestrator", True, "console-tests")
    return detail


def test_given_a_deferred_event_when_listed_dry_run_and_replayed_then_it_runs(client, context, runtime, uid):
    detail = deferred_event(runtime, uid)
    listed = get(client, "/api/events?status=DEFERRED&tenant=acme&since=1h").get_json()
    row = next(e for e in listed["items"] if e["event_id"] == detail["event_id"])
    assert row["status"] == "DEFERRED" and row["replayable"] is True
    route = f"/api/events/{quote(row['chain'], safe='')}/replay"  # WF#...: '#' is encoded in a path
    dry = post(client, context, route, {"dry_run": True}).get_json()
    assert dry["summary"]["would_send"] == 1 and dry["summary"]["dry_run"] is True
    unconfirmed = post(client, context, route, {})
    assert unconfirmed.status_code == 400 and unconfirmed.get_json()["code"] == "console.not_confirmed"
    sent = post(client, context, route, {"confirm": True}).get_json()
    assert sent["summary"]["sent"] == 1 and sent["by"] == ACTOR
    assert runtime.wait_idle(timeout=60)
    workflow = get_deps().workflows.get(workflow_id_for("acme", detail["idempotency_key"]))
    assert workflow is not None and workflow["status"] == "SUCCEEDED"


def test_given_an_event_that_was_not_kept_when_replayed_then_409_with_the_reason(client, context, c1):
    answer = post(client, context, f"/api/events/{c1.event_id}/replay", {"dry_run": True})
    assert answer.status_code == 409 and answer.get_json()["code"] == "replay.not_kept"


def test_given_a_rejected_event_when_listed_then_its_code(client, runtime, uid):
    bad = c1_event(f"-rejected-{uid}")
    bad["tenant_id"] = "nobody-here"
    runtime.put_event("plugin.job.completed", bad)
    assert runtime.wait_idle(timeout=60)
    rows = get(client, "/api/events?status=REJECTED&since=1h&size=100").get_json()["items"]
    row = next(e for e in rows if e["event_id"] == bad["event_id"])
    assert row["rejection"]["code"].startswith("tenant.")


def test_given_the_eventbridge_event_id_when_searched_then_its_workflow(client, runtime, uid):
    detail = c1_event(f"-busid-{uid}")
    out = runtime.put_event("plugin.job.completed", detail)
    assert runtime.wait_idle(timeout=60)
    bus_id = out["Entries"][0]["EventId"]
    found = get(client, f"/api/workflows?q={bus_id}").get_json()
    assert [w["workflow_id"] for w in found["items"]] == [workflow_id_for("acme", detail["idempotency_key"])]


def test_given_a_running_canary_when_strategies_are_read_then_both_arms_with_intervals_and_the_verdict(client, uid,
                                                                                                   tmp_path):
    sid = running_canary(uid, tmp_path)
    listed = get(client, f"/api/strategies?strategy={sid}").get_json()
    assert [c["strategy_id"] for c in listed["canaries"]] == [sid]
    found = listed["canaries"][0]
    assert found == get(client, f"/api/strategies/{sid}/canary").get_json()
    assert (found["version"], found["baseline"], found["percent"], found["status"], found["running"]) == (
        2, 1, 10, "RUNNING", True)
    assert found["started_by"] == "bob" and found["started_at"] and found["reason"] == "archive instead of render"
    canary, baseline = found["comparison"]["canary"], found["comparison"]["baseline"]
    assert (canary["hit_rate"]["count"], canary["hit_rate"]["of"]) == (38, 40)
    assert (canary["failure_rate"]["count"], canary["failure_rate"]["of"]) == (5, 36)
    assert (baseline["escalation_rate"]["count"], baseline["escalation_rate"]["of"]) == (6, 360)
    low, high = canary["success_rate"]["ci95"]
    assert low < canary["success_rate"]["rate"] < high
    assert found["comparison"]["difference"]["failure_rate"]["value"] > 0
    assert found["verdict"]["abort"] is False and "50 needed in each" in found["verdict"]["why"]
    page = get(client, f"/strategies?strategy={sid}").get_data(as_text=True)
    assert "canary v2 against baseline v1" in page and "no abort" in page and "Promote…" in page
    assert get(client, f"/strategies/{sid}/canary/promote").status_code == 200
    assert get(client, "/api/strategies/report-on-job-completed/canary").get_json()["code"] == "strategy.no_canary"
    assert get(client, "/api/strategies/report-on-job-completed/canary").status_code == 404


def test_given_running_canaries_when_promoted_and_aborted_then_the_cli_code_acts_audited_as_the_operator(
        client, context, uid, tmp_path):
    deps = get_deps()
    promoted, aborted = running_canary(f"{uid}-p", tmp_path / "p"), running_canary(f"{uid}-a", tmp_path / "a")
    route = f"/api/strategies/{promoted}/canary/promote"
    no_token = post(client, context, route, {"reason": "x", "confirm": True}, token="")
    assert no_token.status_code == 403 and no_token.get_json()["code"] == "console.csrf"
    unconfirmed = post(client, context, route, {"reason": "x"})
    assert unconfirmed.status_code == 400 and unconfirmed.get_json()["code"] == "console.not_confirmed"
    no_reason = post(client, context, route, {"confirm": True, "reason": "  "})
    assert no_reason.status_code == 400 and no_reason.get_json()["code"] == "strategy.approval_incomplete"
    assert post(client, context, f"/api/strategies/{promoted}/canary/pause", {"confirm": True}).status_code == 404
    assert post(client, context, "/api/strategies/Bad!/canary/abort", {"confirm": True}).status_code == 400
    assert get(client, f"/api/strategies/{promoted}/canary").get_json()["status"] == "RUNNING"

    done = post(client, context, route, {"reason": "archive is healthy", "confirm": True})
    assert done.status_code == 200, done.get_json()
    result = done.get_json()
    assert result["by"] == ACTOR and result["canary"]["status"] == "PROMOTED" and result["canary"]["ended_by"] == ACTOR
    assert int(deps.strategies.active(promoted)["version"]) == 2
    records = sorted(deps.audit.chain(f"STRAT#{promoted}"), key=lambda r: r["seq"])
    assert [r["kind"] for r in records][-2:] == ["strategy.approved", "strategy.canary_promoted"]
    assert records[-1]["data"]["approver"] == ACTOR and records[-1]["data"]["reason"] == "archive is healthy"

    stopped = post(client, context, f"/api/strategies/{aborted}/canary/abort", {"reason": "too many failures",
                                                                                "confirm": True})
    assert stopped.status_code == 200, stopped.get_json()
    assert stopped.get_json()["canary"]["status"] == "ABORTED" and int(deps.strategies.active(aborted)["version"]) == 1
    last = sorted(deps.audit.chain(f"STRAT#{aborted}"), key=lambda r: r["seq"])[-1]
    assert last["kind"] == "strategy.canary_aborted" and last["data"]["actor"] == ACTOR
    assert last["data"]["automatic"] is False
    # acting on a canary that ended: the server's refusal, with its code
    again = post(client, context, route, {"reason": "twice", "confirm": True})
    assert again.status_code == 409 and again.get_json()["code"] == "strategy.no_canary"
    ended = get(client, f"/api/strategies?strategy={aborted}").get_json()["canaries"]
    assert [(c["status"], c["running"]) for c in ended] == [("ABORTED", False)]


def test_given_a_refused_page_when_shown_then_it_links_back_to_its_own_section(client):
    page = get(client, "/strategies/report-on-job-completed/diff?from=1&to=999999").get_data(as_text=True)
    assert "strategy.version_not_found" in page and 'href="/strategies">back to the strategies' in page
    assert 'href="/workflows">back to the workflows' in get(client, "/workflows?status=DONE").get_data(as_text=True)
    assert 'href="/reviews">back to the reviews' in get(client, "/reviews/not-a-review/approve").get_data(as_text=True)
