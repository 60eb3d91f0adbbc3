"""EventBridge: the ``powerx-agent`` bus, its archive (for replay) and the ingest rule.

The rule targets the ingest function with a retry policy and the ingest DLQ (spec.INGEST_RULE).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from powerx_agent import spec


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
        self.rule: events.Rule | None = None

    def route_to_ingest(self, ingest: lambda_.IFunction, dlq: sqs.IQueue) -> events.Rule:
        rule_spec = spec.INGEST_RULE
        self.rule = events.Rule(
            self,
            "IngestRule",
            rule_name=f"{self.prefix}{rule_spec.name}",
            description="Every PowerX source to the ingest function (bad envelopes are rejected there, with a reason)",
            event_bus=self.bus,
            event_pattern=events.EventPattern(source=list(rule_spec.pattern["source"])),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                ingest,
                dead_letter_queue=dlq,
                retry_attempts=rule_spec.max_retry_attempts,
                max_event_age=Duration.seconds(rule_spec.max_event_age_seconds),
            )
        )
        return self.rule
