"""Alarms, the alarm topic and the "Agent Automation" dashboard (docs/operations.md).

Metrics are emitted as EMF by the functions with the Powertools ``service`` dimension
(POWERTOOLS_SERVICE_NAME); the alarms watch that service-level aggregate.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants
from powerx_agent import spec

MISS_RATE_THRESHOLD = 20  # percent, over 15 minutes
FAILURE_RATE_THRESHOLD = 10  # percent
BACKLOG_THRESHOLD = 20  # open manual review items
WINDOW = Duration.minutes(15)
UNROUTED_PERIOD = Duration.minutes(5)  # the unrouted-events alarm and widget (EventBridge publishes per minute)

TOP_FAILING_STRATEGIES_QUERY = [
    "fields @timestamp, strategy_id, workflow_id, node_id, status, escalation_reason",
    "filter status in ['FAILED', 'ESCALATED'] and ispresent(strategy_id)",
    "stats count(*) as failures by strategy_id",
    "sort failures desc",
    "limit 10",
]


def agent_metric(key: str, statistic: str, period: Duration = WINDOW) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=constants.METRICS_NAMESPACE,
        metric_name=spec.METRICS[key],
        dimensions_map={"service": constants.SERVICE_NAME},
        statistic=statistic,
        period=period,
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
        for url in alarm_subscriptions:
            self.topic.add_subscription(subscriptions.UrlSubscription(url))
        self.alarms: list[cloudwatch.Alarm] = []

        hit = agent_metric("hit_rate", "Average")
        self.miss_rate_alarm = self._alarm(
            "StrategyMissRateAlarm",
            "strategy-miss-rate",
            f"Strategy miss rate above {MISS_RATE_THRESHOLD}% over 15 minutes (1 - average of "
            f"{spec.METRICS['hit_rate']}, which is 1 for a matched event and 0 for an unmatched one)",
            cloudwatch.MathExpression(
                expression="100 * (1 - hit)",
                using_metrics={"hit": hit},
                label="Strategy miss rate (%)",
                period=WINDOW,
            ),
            MISS_RATE_THRESHOLD,
        )
        self.failure_rate_alarm = self._alarm(
            "AutomatedFailureRateAlarm",
            "automated-failure-rate",
            f"Automated node failure rate above {FAILURE_RATE_THRESHOLD}%: failures / (successes + failures)",
            cloudwatch.MathExpression(
                expression="IF((failures + successes) > 0, 100 * failures / (failures + successes), 0)",
                using_metrics={
                    "failures": agent_metric("node_failure", "Sum"),
                    "successes": agent_metric("node_success", "Sum"),
                },
                label="Automated failure rate (%)",
                period=WINDOW,
            ),
            FAILURE_RATE_THRESHOLD,
        )
        self.backlog_alarm = self._alarm(
            "ManualReviewBacklogAlarm",
            "manual-review-backlog",
            f"More than {BACKLOG_THRESHOLD} manual review items open ({spec.METRICS['review_backlog']})",
            agent_metric("review_backlog", "Maximum", Duration.minutes(5)),
            BACKLOG_THRESHOLD,
        )

    def _alarm(
        self, id: str, name: str, description: str, metric: cloudwatch.IMetric, threshold: float
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            id,
            alarm_name=f"{self.prefix}powerx-agent-{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.notify(alarm)
        return alarm

    def unrouted_events_alarm(self, matched: cloudwatch.IMetric) -> cloudwatch.Alarm:
        """Any event the unrouted rule matched (a producer with a source no rule routes)."""
        return self._alarm(
            "UnroutedEventsAlarm",
            "unrouted-events",
            "Events with a source no rule routes arrived on the bus; they are kept in the unrouted queue "
            "(docs/intake.md: accepted sources)",
            matched,
            0,
        )

    def flag_store_alarm(self) -> cloudwatch.Alarm:
        """Functions could not read their feature flags and served the last known ones."""
        return self._alarm(
            "FlagStoreErrorsAlarm",
            "flag-store-errors",
            f"Feature flags could not be read ({spec.METRICS['flag_store_errors']}); functions serve the last "
            "known flags (docs/operations.md: feature flags)",
            agent_metric("flag_store_errors", "Sum", Duration.minutes(5)),
            0,
        )

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
        five = Duration.minutes(5)
        board.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# {constants.DASHBOARD_TITLE}\nPowerX Agent Taskflow: strategy hits, generated "
                "workflows, node success, manual escalations, latency; alarms, dead-letter queues and the "
                "strategies that fail most (audit log).",
                width=24,
                height=2,
            )
        )
        board.add_widgets(
            cloudwatch.GraphWidget(
                title="Strategy hit rate", left=[agent_metric("hit_rate", "Average", five)], width=8
            ),
            cloudwatch.GraphWidget(
                title="Workflows generated", left=[agent_metric("generated", "Sum", five)], width=8
            ),
            cloudwatch.GraphWidget(
                title="Node successes", left=[agent_metric("node_success", "Sum", five)], width=8
            ),
        )
        board.add_widgets(
            cloudwatch.GraphWidget(
                title="Manual escalations", left=[agent_metric("escalations", "Sum", five)], width=8
            ),
            cloudwatch.GraphWidget(
                title="Workflow latency p95", left=[agent_metric("latency", "Maximum", five)], width=8
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth",
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=five, statistic="Maximum", label=name)
                    for name, queue in dlqs.items()
                ],
                width=8,
            ),
        )
        board.add_widgets(
            cloudwatch.GraphWidget(title="Unrouted events (unknown source)", left=[unrouted.with_(label="unrouted")],
                                   width=24, height=4)
        )
        board.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24, height=4)
        )
        board.add_widgets(
            cloudwatch.LogQueryWidget(
                title="Top failing strategies (audit log)",
                log_group_names=[audit_log_group_name],
                query_lines=TOP_FAILING_STRATEGIES_QUERY,
                view=cloudwatch.LogQueryVisualizationType.TABLE,
                width=24,
                height=6,
            )
        )
        return board
