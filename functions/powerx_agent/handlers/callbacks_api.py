"""POST /internal/agent/callbacks?id=…&expires=…&signature=…: callbacks that resume waiting nodes.

The URL is the one the engine handed out with the call (a plugin call's ``callback_url``, a manual
review work order's ``callback_url``): signed for that one callback or review id and an expiry, so a
plugin can answer its own call and nothing else. The body says the outcome; an id in the body, if
given, must be the URL's. Answers 200, 400 (bad body, output that cannot be stored), 401 (URL not
signed, expired, tampered), 403 (body names another id), 404, 409 (already answered), 503 (not
recorded, retry).
"""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from pydantic import ValidationError

from powerx_agent import spec
from powerx_agent.deps import Deps, get_deps
from powerx_agent.handlers._api import callback_grant, install_error_handler, json_response, read_body
from powerx_agent.handlers._common import logger, tracer
from powerx_agent.json_limits import JsonLimitError, loads
from powerx_agent.nodes.callbacks import CallbackRequest, Callbacks

app = APIGatewayRestResolver()
install_error_handler(app, logger)


@app.post("/internal/agent/callbacks")
def callback() -> Response:
    """Answer the callback; every refusal is counted by its code (``agent.callback.refused_total``,
    one dimension ``code`` from a fixed set) and logged with where it was refused."""
    deps = get_deps()
    answer = _answer(deps)
    if answer.status_code >= 400:
        body = answer.body if isinstance(answer.body, dict) else {}
        code = str(body.get("code", "callback.refused"))
        logger.warning("callback refused", extra={"code": code, "status": answer.status_code,
                                                  "where": body.get("where")})
        metrics = deps.metrics()
        try:
            metrics.add(spec.METRICS["callback_refused"], 1, code=code)
        finally:
            metrics.flush()
    return answer


def _answer(deps: Deps) -> Response:
    raw = read_body(app)
    if isinstance(raw, Response):
        return raw
    granted = callback_grant(app, deps)
    if isinstance(granted, Response):
        return granted
    try:
        # depth, numbers and Unicode first (linear, no recursion), then the shape
        body = loads(raw or b"null", root="body")
    except JsonLimitError as exc:
        code = "callback.invalid" if exc.kind == "invalid_json" else f"callback.{exc.kind}"
        return json_response(400, {"code": code, "message": exc.message, "where": exc.where})
    if not isinstance(body, dict):
        return json_response(400, {"code": "callback.invalid", "message": "the body must be a JSON object",
                                   "where": "body"})
    field = "callback_id" if granted.startswith("cb-") else "review_id"
    other = "review_id" if field == "callback_id" else "callback_id"
    if body.get(field, granted) != granted or body.get(other) is not None:
        return json_response(403, {"code": "callback.id_mismatch", "where": f"body.{field}",
                                   "message": f"this callback URL answers {granted} only"})
    try:
        request = CallbackRequest.model_validate({**body, field: granted})
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
