"""Alarms, the alarm topic with its subscribers (e-mail, PagerDuty, AWS Chatbot for Slack) and the "Agent
Automation" dashboard. Alarms and panels are built from ``infra/monitoring.py`` (one definition, also
drawn by the Grafana and Datadog dashboards under docs/).

Metrics are emitted as EMF by the functions with the Powertools ``service`` dimension
(POWERTOOLS_SERVICE_NAME); the alarms and panels read that service-level aggregate.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants, monitoring
from powerx_agent import spec

UNROUTED_PERIOD = Duration.minutes(5)  # the unrouted-events alarm and widget (EventBridge publishes per minute)

_COMPARISON = {
    "GreaterThanThreshold": cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    "GreaterThanOrEqualToThreshold": cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    "LessThanThreshold": cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
}
_MISSING = {
    "notBreaching": cloudwatch.TreatMissingData.NOT_BREACHING,
    "breaching": cloudwatch.TreatMissingData.BREACHING,
    "ignore": cloudwatch.TreatMissingData.IGNORE,
    "missing": cloudwatch.TreatMissingData.MISSING,
}


def agent_metric(key: str, statistic: str, period: Duration | None = None,
                 label: str | None = None) -> cloudwatch.Metric:
    period = period or Duration.seconds(monitoring.PERIOD)
    return cloudwatch.Metric(
        namespace=constants.METRICS_NAMESPACE,
        metric_name=spec.METRICS[key],
        dimensions_map={"service": constants.SERVICE_NAME},
        statistic=statistic,
        period=period,
        label=label,
    )


def line_metric(line: monitoring.Line, period: int, *, labelled: bool = True) -> cloudwatch.IMetric:
    """A line of infra/monitoring.py as a CloudWatch metric (a bare id) or a math expression. An alarm on a
    bare metric takes it unlabelled, so the template keeps the plain single-metric alarm form."""
    single = line.single
    if single is not None:
        return agent_metric(single.metric, single.stat, Duration.seconds(period), line.label if labelled else None)
    return cloudwatch.MathExpression(
        expression=line.expression,
        using_metrics={s.id: agent_metric(s.metric, s.stat, Duration.seconds(period)) for s in line.stats},
        label=line.label,
        period=Duration.seconds(period),
    )


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        alarm_email: str,
        alarm_subscriptions: Iterable[str],
        pagerduty_url: str,
        slack_workspace_id: str,
        slack_channel_id: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        self.prefix = prefix
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            alias=f"alias/{prefix}powerx-agent/alarms",
            description="PowerX Agent: alarm topic",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=f"{prefix}powerx-agent-alarms",
            display_name="PowerX Agent alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        for url in (pagerduty_url, *alarm_subscriptions):
            if url:
                self.topic.add_subscription(subscriptions.UrlSubscription(_https(url), protocol=sns.SubscriptionProtocol.HTTPS))
        self.slack = self._slack(slack_workspace_id, slack_channel_id)
        self.alarms: list[cloudwatch.Alarm] = []
        self.by_name: dict[str, cloudwatch.Alarm] = {}
        for alarm_def in monitoring.ALARMS:
            self._alarm(alarm_def)

    def _slack(self, workspace_id: str, channel_id: str) -> chatbot.SlackChannelConfiguration | None:
        """AWS Chatbot posts every alarm and OK message of the topic to one Slack channel. The workspace is
        authorised once in the Chatbot console (OAuth); its id and the channel id come from context."""
        if bool(workspace_id) != bool(channel_id):
            raise ValueError("Slack needs both slackWorkspaceId and slackChannelId (or neither)")
        if not workspace_id:
            return None
        return chatbot.SlackChannelConfiguration(
            self,
            "SlackChannel",
            slack_channel_configuration_name=f"{self.prefix}powerx-agent-alarms"[:128],
            slack_workspace_id=workspace_id,
            slack_channel_id=channel_id,
            notification_topics=[self.topic],
            # what people in the channel may do through Chatbot: read CloudWatch, nothing else
            guardrail_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("CloudWatchReadOnlyAccess")],
            logging_level=chatbot.LoggingLevel.ERROR,
        )

    def _alarm(self, alarm_def: monitoring.AlarmDef) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            "".join(part.capitalize() for part in alarm_def.name.split("-")) + "Alarm",
            alarm_name=monitoring.alarm_name(self.prefix, alarm_def),
            alarm_description=f"{alarm_def.description}. Missing data: {alarm_def.why_missing}.",
            metric=line_metric(alarm_def.line, alarm_def.period, labelled=False),
            threshold=alarm_def.threshold,
            comparison_operator=_COMPARISON[alarm_def.comparison],
            evaluation_periods=alarm_def.evaluation_periods,
            datapoints_to_alarm=alarm_def.datapoints_to_alarm,
            treat_missing_data=_MISSING[alarm_def.treat_missing],
            # percentile alarms: evaluated whatever the sample count (the documented default, said out loud)
            evaluate_low_sample_count_percentile="evaluate" if any(
                s.stat.startswith("p") for s in alarm_def.line.stats) else None,
        )
        self.notify(alarm)
        self.by_name[alarm_def.name] = alarm
        return alarm

    def unrouted_events_alarm(self, matched: cloudwatch.IMetric) -> cloudwatch.Alarm:
        """Any event the unrouted rule matched (a producer with a source no rule routes)."""
        alarm = cloudwatch.Alarm(
            self,
            "UnroutedEventsAlarm",
            alarm_name=f"{self.prefix}powerx-agent-unrouted-events",
            alarm_description="Events with a source no rule routes arrived on the bus; they are kept in the "
                              "unrouted queue (docs/intake.md: accepted sources)",
            metric=matched,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.notify(alarm)
        return alarm

    def notify(self, alarm: cloudwatch.Alarm) -> None:
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        alarm.add_ok_action(cw_actions.SnsAction(self.topic))
        self.alarms.append(alarm)

    def dashboard(self, *, dlqs: dict[str, sqs.IQueue], audit_log_group_name: str,
                  unrouted: cloudwatch.IMetric) -> cloudwatch.Dashboard:
        board = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{self.prefix}{constants.DASHBOARD_NAME}",
            default_interval=Duration.hours(3),
        )
        five = Duration.seconds(monitoring.PERIOD)
        board.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# {constants.DASHBOARD_TITLE}\nPowerX Agent Taskflow: the five success metrics with "
                "their targets, then throughput, intake, the review backlog, alarms, dead-letter queues and "
                "the strategies that fail most (audit log). docs/operations.md says what each panel serves.",
                width=24,
                height=2,
            )
        )
        widgets: list[cloudwatch.IWidget] = []
        for panel in monitoring.PANELS:
            annotations = ([cloudwatch.HorizontalAnnotation(value=panel.target.value, label=panel.target.label)]
                           if panel.target else None)
            widgets.append(cloudwatch.GraphWidget(
                title=panel.title,
                left=[line_metric(line, monitoring.PERIOD) for line in panel.lines],
                left_annotations=annotations,
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False,
                                                  label={"percent": "%", "milliseconds": "ms"}.get(panel.unit, "")),
                width=8,
            ))
        for i in range(0, len(widgets), 3):
            board.add_widgets(*widgets[i:i + 3])
        board.add_widgets(
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth",
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=five, statistic="Maximum", label=name)
                    for name, queue in dlqs.items()
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(title="Unrouted events (unknown source)", left=[unrouted.with_(label="unrouted")],
                                   width=12),
        )
        board.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24, height=4)
        )
        board.add_widgets(
            cloudwatch.LogQueryWidget(
                title="Top failing strategies (audit log)",
                log_group_names=[audit_log_group_name],
                query_lines=monitoring.TOP_FAILING_STRATEGIES_QUERY,
                view=cloudwatch.LogQueryVisualizationType.TABLE,
                width=24,
                height=6,
            )
        )
        return board


def _https(url: str) -> str:
    if not url.startswith("https://"):
        raise ValueError(f"alarm subscriptions must be HTTPS endpoints, got {url[:80]!r}")
    return url
