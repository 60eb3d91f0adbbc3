"""docs/grafana/agent-automation.json: the Grafana twin of the CloudWatch dashboard."""

from __future__ import annotations

import json
from pathlib import Path

from powerx_agent import spec

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "agent-automation.json"
SPEC_FIVE = ("hit_rate", "generated", "node_success", "escalations", "latency")


def load() -> dict:
    return json.loads(DASHBOARD.read_text())


def metric_targets(board: dict) -> list[dict]:
    return [t for p in board["panels"] for t in p.get("targets", []) if t.get("metricName")]


def test_given_dashboard_when_loaded_then_runtime_ops_agent_automation_over_cloudwatch():
    board = load()
    assert board["title"] == "Agent Automation" and board["folder"] == "Runtime Ops"
    assert all(p["datasource"]["type"] == "cloudwatch" for p in board["panels"] if "datasource" in p)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_given_dashboard_when_targets_read_then_every_spec_metric_is_plotted_with_service_dimension():
    agent = [t for t in metric_targets(load()) if t["namespace"] == spec.NAMESPACE]
    plotted = {t["metricName"] for t in agent}
    for key in (*SPEC_FIVE, "node_failure", "review_backlog"):
        assert spec.METRICS[key] in plotted, key
    assert all(t["dimensions"] == {"service": ["powerx-agent"]} for t in agent)


def test_given_dashboard_when_alarm_panels_read_then_thresholds_and_math_match_the_cdk_alarms():
    panels = {p["title"]: p for p in load()["panels"]}
    miss = panels["Alarm: strategy miss rate (%) > 20 over 15 min"]
    assert any(t.get("expression") == "100 * (1 - hit)" for t in miss["targets"])
    assert miss["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 20
    failure = panels["Alarm: automated failure rate (%) > 10"]
    assert any("failures / (failures + successes)" in (t.get("expression") or "") for t in failure["targets"])
    assert panels["Alarm: manual review backlog > 20"]["fieldConfig"]["defaults"]["thresholds"]["steps"][-1][
        "value"] == 20


def test_given_dashboard_when_dlq_and_logs_panels_read_then_they_watch_the_dlqs_and_audit_log():
    panels = {p["title"]: p for p in load()["panels"]}
    queues = {t["dimensions"]["QueueName"][0] for t in panels["Dead-letter queue depth"]["targets"]}
    assert queues == {f"${{prefix}}{spec.MATCH_DLQ.name}", f"${{prefix}}{spec.INGEST_DLQ.name}"}
    logs = panels["Top failing strategies (audit log)"]["targets"][0]
    assert logs["queryMode"] == "Logs" and logs["logGroupNames"] == [spec.AUDIT_LOG_GROUP]
    assert "stats count(*) as failures by strategy_id" in logs["expression"]
