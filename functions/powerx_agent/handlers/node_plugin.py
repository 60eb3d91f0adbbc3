"""Step Functions task: run a plugin node (see powerx_agent.nodes.runner)."""

from typing import Any

from powerx_agent.errors import NodeInputError
from powerx_agent.handlers._common import logger, run, tracer
from powerx_agent.handoffs.tasks import NodeTask
from powerx_agent.nodes.runner import NodeRunner


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run(lambda deps, metrics: NodeRunner(deps, metrics).run(dict(NodeTask.check(event, NodeInputError)),
                                                                  expected_kind="plugin"))
