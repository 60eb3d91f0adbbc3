"""SQS queues from ``spec.QUEUES``: redrive to their dead-letter queues, TLS only, DLQ-depth alarms."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.nag import acknowledge
from powerx_agent import spec


def _logical(name: str) -> str:
    return "".join(part.capitalize() for part in name.removeprefix("powerx-agent-").split("-")) + "Queue"


class Queues(Construct):
    """The match queue (+ DLQ) and the ingest DLQ (rule target DLQ and rejected envelopes)."""

    def __init__(self, scope: Construct, id: str, *, prefix: str) -> None:
        super().__init__(scope, id)
        self.by_name: dict[str, sqs.Queue] = {}
        self.dlq_alarms: dict[str, cloudwatch.Alarm] = {}
        # dead-letter queues first: the others redrive into them
        ordered = sorted(spec.QUEUES, key=lambda q: q.max_receive_count is not None)
        for queue_spec in ordered:
            dead_letter = None
            if queue_spec.dlq is not None:
                dead_letter = sqs.DeadLetterQueue(
                    queue=self.by_name[queue_spec.dlq], max_receive_count=queue_spec.max_receive_count or 5
                )
            queue = sqs.Queue(
                self,
                _logical(queue_spec.name),
                queue_name=f"{prefix}{queue_spec.name}",
                visibility_timeout=Duration.seconds(queue_spec.visibility_timeout),
                retention_period=Duration.seconds(queue_spec.retention_seconds),
                max_message_size_bytes=queue_spec.max_message_bytes,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                dead_letter_queue=dead_letter,
            )
            self.by_name[queue_spec.name] = queue
            if queue_spec.max_receive_count is None:
                acknowledge(
                    queue,
                    "AwsSolutions-SQS3",
                    "This queue is itself a dead-letter queue (spec.QUEUES); its depth is alarmed.",
                )
                self.dlq_alarms[queue_spec.name] = cloudwatch.Alarm(
                    self,
                    f"{_logical(queue_spec.name)}DepthAlarm",
                    alarm_name=f"{prefix}{queue_spec.name}-depth",
                    alarm_description=f"Messages are waiting in the dead-letter queue {queue_spec.name}",
                    metric=queue.metric_approximate_number_of_messages_visible(
                        period=Duration.minutes(5), statistic="Maximum"
                    ),
                    threshold=0,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    evaluation_periods=1,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )

    @property
    def match(self) -> sqs.Queue:
        return self.by_name[spec.MATCH_QUEUE.name]

    @property
    def ingest_dlq(self) -> sqs.Queue:
        return self.by_name[spec.INGEST_DLQ.name]
