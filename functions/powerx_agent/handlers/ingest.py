"""EventBridge rule target: validate, scope, de-duplicate and queue an event for matching."""

from typing import Any

from powerx_agent.handlers._common import logger, run, tracer
from powerx_agent.ingest.service import Ingestor


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run(lambda deps, metrics: Ingestor(deps, metrics).handle(event).to_dict())
