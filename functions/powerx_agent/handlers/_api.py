"""Shared parts of the two internal APIs: body size, authentication per purpose, JSON answers.

- Replay requests are signed by a named caller with its own keys (:func:`replay_caller`).
- Callbacks come through a URL the engine signed for one callback or review id (:func:`callback_grant`).

No answer ever carries a stack trace: unexpected errors become a 500 with a request id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from powerx_agent.deps import Deps
from powerx_agent.signing import Caller, SignatureError, verify_callback, verify_caller

MAX_BODY_BYTES = 256 * 1024
T = TypeVar("T")


def json_response(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def read_body(app: APIGatewayRestResolver) -> Response | bytes:
    raw = app.current_event.decoded_body or ""
    body = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(body) > MAX_BODY_BYTES:
        return json_response(413, {"code": "request.too_large",
                                   "message": f"the body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}"})
    return body


def _with_refresh(deps: Deps, secret_id: str, check: Callable[[], T]) -> T:
    """Run ``check``; if the signature fails against a cached secret older than a few seconds, read
    the secret again and check once more (a key just staged by a rotation is then accepted)."""
    try:
        return check()
    except SignatureError:
        if not deps.secrets.refresh(secret_id):
            raise
        return check()


def replay_caller(app: APIGatewayRestResolver, deps: Deps, body: bytes) -> Response | Caller:
    """The authenticated replay caller (its own keys, its own tenants), or a 401 answer."""
    secret = deps.settings.replay_secret
    headers = dict(app.current_event.headers or {})
    try:
        return _with_refresh(deps, secret, lambda: verify_caller(
            headers, body, deps.secrets.replay_callers(secret), deps.settings.signature_window_seconds))
    except SignatureError as exc:
        return json_response(401, {"code": exc.code, "message": exc.message})


def callback_grant(app: APIGatewayRestResolver, deps: Deps) -> Response | str:
    """The callback or review id the request's signed callback URL grants, or a 401 answer."""
    secret = deps.settings.callback_secret
    query = dict(app.current_event.query_string_parameters or {})
    try:
        return _with_refresh(deps, secret, lambda: verify_callback(query, deps.secrets.signing_keys(secret)))
    except SignatureError as exc:
        return json_response(401, {"code": exc.code, "message": exc.message})


def install_error_handler(app: APIGatewayRestResolver, logger: Any) -> None:
    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:  # pragma: no cover - exercised through the API tests
        request_id = uuid.uuid4().hex
        logger.exception("unhandled error", extra={"request_id": request_id})
        return json_response(500, {"code": "internal", "message": "internal error", "request_id": request_id})
