"""Shared parts of the two signed internal APIs: signature check and JSON error answers.

No answer ever carries a stack trace: unexpected errors become a 500 with a request id.
"""

from __future__ import annotations

import uuid
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from powerx_agent.deps import Deps
from powerx_agent.ingest.signing import SignatureError, verify

MAX_BODY_BYTES = 256 * 1024


def json_response(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def check_request(app: APIGatewayRestResolver, deps: Deps) -> Response | bytes:
    raw = app.current_event.decoded_body or ""
    body = raw.encode() if isinstance(raw, str) else raw
    if len(body) > MAX_BODY_BYTES:
        return json_response(413, {"code": "request.too_large",
                                   "message": f"the body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}"})
    try:
        keys = deps.secrets.signing_keys(deps.settings.signing_secret)
        verify(dict(app.current_event.headers or {}), body, keys, deps.settings.signature_window_seconds)
    except SignatureError as exc:
        return json_response(401, {"code": exc.code, "message": exc.message})
    return body


def install_error_handler(app: APIGatewayRestResolver, logger: Any) -> None:
    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:  # pragma: no cover - exercised through the API tests
        request_id = uuid.uuid4().hex
        logger.exception("unhandled error", extra={"request_id": request_id})
        return json_response(500, {"code": "internal", "message": "internal error", "request_id": request_id})
