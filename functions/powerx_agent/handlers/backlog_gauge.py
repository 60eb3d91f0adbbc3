"""EventBridge schedule (spec.BACKLOG_SCHEDULE, every minute): the open manual review backlog gauge."""

from typing import Any

from powerx_agent.escalation.backlog import emit_backlog, scheduled_at
from powerx_agent.handlers._common import logger, run, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run(lambda deps, metrics: {"backlog": emit_backlog(deps, metrics, at=scheduled_at(event))})
