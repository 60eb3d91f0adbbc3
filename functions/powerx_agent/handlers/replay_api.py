"""POST /internal/agent/events: signed manual replay of one event onto the bus.

Answers 202 accepted, 200 duplicate (with the workflow id), 400 invalid (``source.not_routed`` for a
source the bus does not route, naming the accepted ones), 401 bad signature,
403 tenant not allowed, 409 idempotency conflict, 413 too large.
"""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from powerx_agent import telemetry
from powerx_agent.deps import get_deps
from powerx_agent.errors import EventRejected
from powerx_agent.handlers._api import check_request, install_error_handler, json_response
from powerx_agent.handlers._common import logger, tracer
from powerx_agent.ingest.envelope import limits_rejection
from powerx_agent.ingest.replay import submit_replay
from powerx_agent.json_limits import MAX_DEPTH, JsonLimitError, loads

app = APIGatewayRestResolver()
install_error_handler(app, logger)


@app.post("/internal/agent/events")
def replay() -> Response:
    deps = get_deps()
    checked = check_request(app, deps)
    if isinstance(checked, Response):
        return checked
    try:
        # the body is an EventBridge event: its detail (level 2) may nest MAX_DEPTH levels
        event = loads(checked or b"null", root="", max_depth=MAX_DEPTH + 1)
    except JsonLimitError as exc:
        if exc.kind == "invalid_json":
            return json_response(400, {"code": "request.invalid_json", "message": exc.message})
        return json_response(400, limits_rejection(exc).to_dict())
    caller = (app.current_event.headers or {}).get("X-PowerX-Caller") or "replay-api"
    try:
        with telemetry.work("replay", caller=caller[:128]):
            status, body = submit_replay(deps, event, replayed_by=caller)
            telemetry.logger.info(f"replay answered {status}", extra={"status": status, "outcome": body.get("status")})
    except EventRejected as exc:
        status = 403 if exc.code.startswith("tenant.") else 409 if exc.code.startswith("idempotency.") else \
            413 if exc.code == "envelope.too_large" else 400
        return json_response(status, exc.to_dict())
    return json_response(status, body)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
