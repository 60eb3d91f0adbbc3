"""Event source mappings from ``spec.EVENT_SOURCES_MAPPINGS`` (SQS / DynamoDB Streams → Lambda).

Every mapping reports partial batch failures (ReportBatchItemFailures), so one bad record does not
replay its whole batch. The SQS mapping is created directly (not with ``SqsEventSource``, whose
``grantConsumeMessages`` would add ``sqs:ChangeMessageVisibility`` and ``sqs:GetQueueUrl``): Lambda's
poller needs exactly ``sqs:ReceiveMessage``, ``sqs:DeleteMessage`` and ``sqs:GetQueueAttributes``
(the AWSLambdaSQSQueueExecutionRole set), and the matcher's code makes no SQS call itself.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct

from infra.constructs.functions import Functions
from infra.constructs.nag import acknowledge
from infra.constructs.queues import Queues
from infra.constructs.tables import Tables
from powerx_agent import spec

SQS_POLL_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


class EventSources(Construct):
    def __init__(self, scope: Construct, id: str, *, functions: Functions, queues: Queues, tables: Tables) -> None:
        super().__init__(scope, id)
        for mapping in spec.EVENT_SOURCES_MAPPINGS:
            fn: lambda_.Function = functions.by_key[mapping.function]
            if mapping.kind == "sqs":
                queue = queues.by_name[mapping.source]
                fn.add_event_source_mapping(
                    "SqsEventSource",
                    event_source_arn=queue.queue_arn,
                    batch_size=mapping.batch_size,
                    report_batch_item_failures=mapping.report_batch_item_failures,
                    max_batching_window=Duration.seconds(1),
                )
                functions.roles[mapping.function].add_to_policy(
                    iam.PolicyStatement(actions=list(SQS_POLL_ACTIONS), resources=[queue.queue_arn])
                )
            elif mapping.kind == "dynamodb":
                fn.add_event_source(
                    sources.DynamoEventSource(
                        tables.by_name[mapping.source],
                        starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                        batch_size=mapping.batch_size,
                        report_batch_item_failures=mapping.report_batch_item_failures,
                        bisect_batch_on_error=mapping.bisect_on_error,
                        retry_attempts=mapping.retry_attempts,
                    )
                )
                acknowledge(
                    functions.roles[mapping.function],
                    "AwsSolutions-IAM5[Resource::*]",
                    "dynamodb:ListStreams has no resource-level permissions (added by the DynamoDB event "
                    "source); reading records is limited to the audit table's stream. X-Ray "
                    "PutTraceSegments/PutTelemetryRecords likewise require Resource '*'.",
                )
            else:  # pragma: no cover - spec guards the kinds
                raise ValueError(f"unknown event source kind {mapping.kind!r} for {mapping.function}")
