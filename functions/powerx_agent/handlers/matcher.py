"""SQS event source: match each queued event; failed records are reported for redelivery (a
message that is not a valid :class:`~powerx_agent.handoffs.MatchMessage` too: after the queue's
receive limit it is kept in the match DLQ)."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from powerx_agent.handlers._common import invocation, logger, tracer
from powerx_agent.handoffs.match import MatchMessage
from powerx_agent.match.service import Matcher


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with invocation() as (deps, metrics):
        matcher = Matcher(deps, metrics)

        def record_handler(record: SQSRecord) -> dict[str, Any]:
            return matcher.handle(MatchMessage.parse(record.body).to_dict())

        return process_partial_response(event=event, record_handler=record_handler,
                                        processor=BatchProcessor(event_type=EventType.SQS), context=context)
