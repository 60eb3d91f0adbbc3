"""Event source mappings from ``spec.EVENT_SOURCES_MAPPINGS`` (SQS / DynamoDB Streams → Lambda).

Every mapping reports partial batch failures (ReportBatchItemFailures), so one bad record does not
replay its whole batch. The SQS mapping is created directly (not with ``SqsEventSource``, whose
``grantConsumeMessages`` would add ``sqs:ChangeMessageVisibility`` and ``sqs:GetQueueUrl``): Lambda's
poller needs exactly ``sqs:ReceiveMessage``, ``sqs:DeleteMessage`` and ``sqs:GetQueueAttributes``
(the AWSLambdaSQSQueueExecutionRole set), and the matcher's code makes no SQS call itself. Its
batching window comes from the spec, which also derives the queue's visibility timeout from it.

A stream mapping whose batch still fails after its retries sends the batch's metadata (shard,
sequence numbers; the records stay in the table) to its on-failure destination, a queue of the spec:
Lambda sends with the function's role, which gets exactly ``sqs:SendMessage`` on that queue.
"""

from __future__ import annotations

import jsii
from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.functions import Functions
from infra.components.nag import acknowledge
from infra.components.queues import Queues
from infra.components.tables import Tables
from powerx_agent import spec

SQS_POLL_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


@jsii.implements(lambda_.IEventSourceDlq)
class QueueOnFailure:
    """An on-failure destination that only names the queue (``SqsDlq`` would also grant
    ``sqs:GetQueueAttributes`` and ``sqs:GetQueueUrl``, which Lambda does not need to send)."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self.queue = queue

    def bind(self, _target: lambda_.IEventSourceMapping, _handler: lambda_.IFunction) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self.queue.queue_arn)


class EventSources(Construct):
    def __init__(self, scope: Construct, id: str, *, functions: Functions, queues: Queues, tables: Tables) -> None:
        super().__init__(scope, id)
        for mapping in spec.EVENT_SOURCES_MAPPINGS:
            fn = functions.aliases[mapping.function]  # mappings invoke the live alias, like every trigger
            role = functions.roles[mapping.function]
            if mapping.kind == "sqs":
                queue = queues.by_name[mapping.source]
                fn.add_event_source_mapping(
                    "SqsEventSource",
                    event_source_arn=queue.queue_arn,
                    batch_size=mapping.batch_size,
                    report_batch_item_failures=mapping.report_batch_item_failures,
                    max_batching_window=Duration.seconds(mapping.batching_window),
                )
                role.add_to_policy(iam.PolicyStatement(actions=list(SQS_POLL_ACTIONS), resources=[queue.queue_arn]))
            elif mapping.kind == "dynamodb":
                on_failure = queues.by_name[mapping.on_failure] if mapping.on_failure else None
                fn.add_event_source(
                    sources.DynamoEventSource(
                        tables.by_name[mapping.source],
                        starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                        batch_size=mapping.batch_size,
                        max_batching_window=Duration.seconds(mapping.batching_window),
                        report_batch_item_failures=mapping.report_batch_item_failures,
                        bisect_batch_on_error=mapping.bisect_on_error,
                        retry_attempts=mapping.retry_attempts,
                        on_failure=QueueOnFailure(on_failure) if on_failure else None,
                    )
                )
                if on_failure is not None:
                    role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"],
                                                           resources=[on_failure.queue_arn]))
                acknowledge(
                    role,
                    "AwsSolutions-IAM5[Resource::*]",
                    "dynamodb:ListStreams has no resource-level permissions (added by the DynamoDB event "
                    "source); reading records is limited to the audit table's stream. X-Ray "
                    "PutTraceSegments/PutTelemetryRecords likewise require Resource '*'.",
                )
            else:  # pragma: no cover - spec guards the kinds
                raise ValueError(f"unknown event source kind {mapping.kind!r} for {mapping.function}")
