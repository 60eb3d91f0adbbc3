"""POST /internal/agent/callbacks: signed callbacks that resume waiting nodes."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from pydantic import ValidationError

from powerx_agent.deps import get_deps
from powerx_agent.handlers._api import check_request, install_error_handler, json_response
from powerx_agent.handlers._common import logger, tracer
from powerx_agent.json_limits import JsonLimitError, loads
from powerx_agent.nodes.callbacks import CallbackRequest, Callbacks

app = APIGatewayRestResolver()
install_error_handler(app, logger)


@app.post("/internal/agent/callbacks")
def callback() -> Response:
    deps = get_deps()
    checked = check_request(app, deps)
    if isinstance(checked, Response):
        return checked
    try:
        # depth, numbers and Unicode first (linear, no recursion), then the shape
        body = loads(checked or b"null", root="body")
    except JsonLimitError as exc:
        code = "callback.invalid" if exc.kind == "invalid_json" else f"callback.{exc.kind}"
        return json_response(400, {"code": code, "message": exc.message, "where": exc.where})
    try:
        request = CallbackRequest.model_validate(body)
    except (ValueError, ValidationError) as exc:
        problems = exc.errors() if isinstance(exc, ValidationError) else [{"msg": str(exc), "loc": ()}]
        return json_response(400, {"code": "callback.invalid", "message": problems[0]["msg"],
                                   "where": ".".join(str(p) for p in problems[0]["loc"]) or "body"})
    metrics = deps.metrics()
    try:
        result = Callbacks(deps, metrics).handle(request)
    finally:
        metrics.flush()
    return json_response(result.status, result.body)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
