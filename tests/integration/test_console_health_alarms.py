"""The console's Health page lists the deployment's CloudWatch alarms with their states (DescribeAlarms
through adapters/alarms.py), alarming first; another stack's alarms are left out."""

from __future__ import annotations

from powerx_agent.adapters.alarms import Alarms
from powerx_agent.console import api
from powerx_agent.deps import get_deps


class FakeCloudWatch:
    """DescribeAlarms as AWS documents it: MetricAlarms / CompositeAlarms, paged by NextToken."""

    def __init__(self, pages: list[dict]) -> None:
        self.pages = pages
        self.calls: list[dict] = []

    def describe_alarms(self, **kwargs):
        self.calls.append(kwargs)
        return self.pages[len(self.calls) - 1]


def test_given_two_pages_of_alarms_when_read_then_every_alarm_alarming_first():
    cloudwatch = FakeCloudWatch([
        {"MetricAlarms": [{"AlarmName": "powerx-agent-match-dlq-depth", "StateValue": "OK", "StateReason": "fine"}],
         "CompositeAlarms": [], "NextToken": "t1"},
        {"MetricAlarms": [{"AlarmName": "powerx-agent-manual-intervention-rate", "StateValue": "ALARM",
                           "StateReason": "Threshold Crossed: 1 datapoint [0.2] was greater than 0.1"}]},
    ])
    states = Alarms(cloudwatch).states("powerx-agent")
    assert [(a.name, a.state) for a in states] == [("powerx-agent-manual-intervention-rate", "ALARM"),
                                                   ("powerx-agent-match-dlq-depth", "OK")]
    assert cloudwatch.calls[0]["AlarmNamePrefix"] == "powerx-agent" and cloudwatch.calls[1]["NextToken"] == "t1"


def test_given_an_alarm_of_the_stack_in_alarm_when_health_is_read_then_it_is_listed(runtime):
    cloudwatch = runtime.client("cloudwatch")
    for name in ("powerx-agent-console-test-alarm", "other-stack-alarm"):
        cloudwatch.put_metric_alarm(AlarmName=name, MetricName="agent.manual_escalation_total", Namespace="PowerX/Agent",
                                    Statistic="Sum", Period=300, EvaluationPeriods=1, Threshold=1,
                                    ComparisonOperator="GreaterThanOrEqualToThreshold")
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="console test")
    try:
        data = api.health(get_deps(), {}, {})
        names = {a["name"]: a["state"] for a in data["alarms"]}
        assert names.get("powerx-agent-console-test-alarm") == "ALARM" and "other-stack-alarm" not in names
        assert data["alarms_note"] is None
    finally:
        cloudwatch.delete_alarms(AlarmNames=["powerx-agent-console-test-alarm", "other-stack-alarm"])
