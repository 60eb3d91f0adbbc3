"""DynamoDB Streams (agent_audit) → CloudWatch Logs group /powerx/agent/audit."""

import os
import uuid
from typing import Any

from powerx_agent.adapters.aws import error_code
from powerx_agent.audit.stream import record_from_stream, to_log_events
from powerx_agent.handlers._common import logger, run

_STREAM = f"audit/{uuid.uuid4().hex}"
_created: set[tuple[str, str]] = set()


def _forward(deps: Any, metrics: Any, event: dict[str, Any]) -> dict[str, Any]:
    records = [r for r in (record_from_stream(s) for s in event.get("Records", [])) if r]
    if not records:
        return {"forwarded": 0}
    if not deps.flags.enabled("audit-streaming"):
        return {"forwarded": 0, "paused": len(records)}
    logs = deps.client("logs")
    group = deps.settings.audit_log_group
    stream = f"{records[0]['ts'][:10]}/{_STREAM}-{os.getpid()}"
    if (group, stream) not in _created:
        try:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
        _created.add((group, stream))
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=to_log_events(records))
    return {"forwarded": len(records)}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run(lambda deps, metrics: _forward(deps, metrics, event))
