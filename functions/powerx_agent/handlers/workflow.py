"""Step Functions task: workflow transitions (skip a node, complete, escalate, hand off)."""

from typing import Any

from powerx_agent.handlers._common import logger, run, tracer
from powerx_agent.handoffs.tasks import parse_workflow_task
from powerx_agent.nodes.workflow import WorkflowActions


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run(lambda deps, metrics: WorkflowActions(deps, metrics).handle(_checked(event)))


def _checked(event: dict[str, Any]) -> dict[str, Any]:
    """The payload, once it is one of the actions (else refused: handoff.invalid)."""
    parse_workflow_task(event)
    return event
