"""DynamoDB Streams (agent_audit) → CloudWatch Logs group /powerx/agent/audit.

Flag ``audit-streaming`` off pauses forwarding (records stay in agent_audit, a cursor remembers
where forwarding stopped); on again, the next invocation catches up first (audit/stream.py).
Then each batch is tallied for the running strategy canaries (match/canary.py), which may abort one.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING, Any

from powerx_agent.adapters.audit_store import StreamCursor, record_from_stream
from powerx_agent.adapters.log_sink import LogStreamSink
from powerx_agent.audit.stream import forward
from powerx_agent.handlers._common import logger, run, tracer
from powerx_agent.match import canary

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

_SUFFIX = f"audit/{uuid.uuid4().hex}-{os.getpid()}"
_sinks: dict[tuple[str, str | None], LogStreamSink] = {}


def _sink(deps: Deps) -> LogStreamSink:
    group = deps.settings.audit_log_group
    cache_key = (group, deps.settings.endpoint_url)
    if cache_key not in _sinks:
        _sinks[cache_key] = LogStreamSink(deps.client("logs"), group, _SUFFIX)
    return _sinks[cache_key]


def _forward(deps: Deps, metrics: Any, event: dict[str, Any]) -> dict[str, Any]:
    records = [r for r in (record_from_stream(s) for s in event.get("Records", [])) if r]
    if not records:
        return {"forwarded": 0}
    result = forward(records, streaming_on=deps.flags.enabled("audit-streaming"), sink=_sink(deps),
                     cursor=StreamCursor(deps.ddb, deps.settings.strategies_table), audit=deps.audit)
    try:  # last, and never a reason to retry the batch (the tally would count it twice)
        canaries = canary.tally(deps, metrics, records)
    except Exception:  # noqa: BLE001
        logger.exception("canary tally failed for this batch; its records are not counted")
        canaries = {"error": True}
    return {**result, **({"canaries": canaries} if canaries else {})}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run(lambda deps, metrics: _forward(deps, metrics, event))
