"""EventBridge: the ``powerx-agent`` bus, its archive (for replay) and its rules (``spec.RULES``).

- ``powerx-agent-ingest``: the accepted sources to the ingest function, with a retry policy and the
  ingest DLQ (spec.INGEST_RULE).
- ``powerx-agent-unrouted``: every other source (``anything-but`` the accepted ones, the ingest rule's
  complement: EventBridge has no "else") to the unrouted queue, so an event of an unknown source is
  kept instead of vanishing after a successful PutEvents. EventBridge counts what the rule matches
  (``AWS/Events MatchedEvents``, dimensions EventBusName + RuleName); an alarm watches it
  (:meth:`Events.unrouted_metric`).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from powerx_agent import spec


def _source_filter(values: list) -> list[str]:
    """The spec's ``source`` filter in CDK terms: a list of sources, or ``[{"anything-but": [...]}]``."""
    if len(values) == 1 and isinstance(values[0], dict):
        (operator, operands), = values[0].items()
        if operator != "anything-but":
            raise ValueError(f"unsupported source filter {values[0]!r}")
        return events.Match.anything_but(*operands)
    return [str(v) for v in values]


def _delivery(rule_spec: spec.RuleSpec, dlq: sqs.IQueue) -> dict:
    """What EventBridge does with an event it cannot hand to the target: retry, then the DLQ."""
    return {"dead_letter_queue": dlq, "retry_attempts": rule_spec.max_retry_attempts,
            "max_event_age": Duration.seconds(rule_spec.max_event_age_seconds)}


class Events(Construct):
    def __init__(self, scope: Construct, id: str, *, prefix: str, archive_retention_days: int) -> None:
        super().__init__(scope, id)
        self.prefix = prefix
        self.bus = events.EventBus(self, "Bus", event_bus_name=f"{prefix}{spec.BUS_NAME}")
        self.archive = events.Archive(
            self,
            "Archive",
            archive_name=f"{prefix}{spec.ARCHIVE_NAME}",
            description="Every PowerX event, for `powerx-agent replay --archive`",
            source_event_bus=self.bus,
            event_pattern=events.EventPattern(source=list(spec.EVENT_SOURCES)),
            retention=Duration.days(archive_retention_days),
        )
        self.rules: dict[str, events.Rule] = {}

    def _rule(self, id: str, rule_spec: spec.RuleSpec, description: str) -> events.Rule:
        rule = events.Rule(
            self,
            id,
            rule_name=f"{self.prefix}{rule_spec.name}",
            description=description,
            event_bus=self.bus,
            event_pattern=events.EventPattern(source=_source_filter(rule_spec.pattern["source"])),
        )
        self.rules[rule_spec.name] = rule
        return rule

    def route_to_ingest(self, ingest: lambda_.IFunction, dlq: sqs.IQueue) -> events.Rule:
        """``ingest`` is the function's ``live`` alias: the rule invokes whatever version it points at."""
        rule_spec = spec.INGEST_RULE
        rule = self._rule("IngestRule", rule_spec, "Every PowerX source to the ingest function (bad envelopes are "
                                                   "rejected there, with a reason)")
        rule.add_target(targets.LambdaFunction(ingest, **_delivery(rule_spec, dlq)))
        return rule

    def keep_unrouted(self, queue: sqs.IQueue, dlq: sqs.IQueue) -> events.Rule:
        rule_spec = spec.UNROUTED_RULE
        rule = self._rule("UnroutedRule", rule_spec, "Events of any other source: kept in the unrouted queue, "
                                                     "counted and alarmed (no other rule routes them)")
        rule.add_target(targets.SqsQueue(queue, **_delivery(rule_spec, dlq)))
        return rule

    def schedule(self, schedule_spec: spec.ScheduleSpec, alias: lambda_.Alias) -> events.Rule:
        """A schedule rule on the account's default bus (schedules run there) invoking the function's live
        alias. A missed run is not replayed late, neither by EventBridge nor by Lambda's asynchronous retries
        (which could run it hours later): the next run, a minute later, measures afresh."""
        rule = events.Rule(
            self,
            "".join(p.capitalize() for p in schedule_spec.name.removeprefix("powerx-agent-").split("-")) + "Schedule",
            rule_name=f"{self.prefix}{schedule_spec.name}",
            description=f"{schedule_spec.expression}: {spec.FUNCTIONS_BY_KEY[schedule_spec.target_function].description}",
            schedule=events.Schedule.expression(schedule_spec.expression),
        )
        rule.add_target(targets.LambdaFunction(alias, retry_attempts=2, max_event_age=Duration.seconds(60)))
        config = lambda_.CfnEventInvokeConfig(self, f"{rule.node.id}InvokeConfig",
                                              function_name=alias.version.lambda_.function_name,
                                              qualifier=spec.LIVE_ALIAS, maximum_retry_attempts=0,
                                              maximum_event_age_in_seconds=60)
        config.node.add_dependency(alias)
        return rule

    def unrouted_metric(self, period: Duration) -> cloudwatch.Metric:
        """Events the unrouted rule matched: EventBridge's own count (custom bus: EventBusName + RuleName).

        RuleName is the rule's name as written, not ``rule.rule_name``: that is CloudFormation's Ref of the
        rule, which for a rule on a custom bus is "<bus>|<rule>" (cloudformation-coverage-roadmap#1131), a
        dimension value EventBridge never publishes, so an alarm on it would never see a datapoint."""
        return cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name="MatchedEvents",
            dimensions_map={"EventBusName": self.bus.event_bus_name,
                            "RuleName": f"{self.prefix}{spec.UNROUTED_RULE.name}"},
            statistic="Sum",
            period=period,
        )
