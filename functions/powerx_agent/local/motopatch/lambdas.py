"""Patch 1 (see the package's docstring): every Lambda invocation moto makes (direct Invoke, Step
Functions tasks, stream mappings) runs our handler in this process, with a Lambda-shaped context.

``invoke_in_process`` is looked up on this module at each call, so a wrapper set here
(``local.meter.Meter`` times invocations that way) sees every invocation."""

from __future__ import annotations

import base64
import importlib
import json
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from powerx_agent import spec

_HANDLERS_BY_NAME = {f.name: f.handler for f in spec.FUNCTIONS}


class LambdaContext:
    """The attributes of the Lambda context object our handlers and Powertools use."""

    def __init__(self, function: Any) -> None:
        self.function_name = function.function_name
        self.function_version = str(getattr(function, "version", None) or "$LATEST")
        self.invoked_function_arn = function.function_arn
        self.memory_limit_in_mb = int(function.memory_size or 128)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + float(function.timeout or 3)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def register_handler(function_name: str, handler_path: str) -> None:
    """Route one more (non-product) function name to an in-process handler: used by the bare-moto
    reference pipeline of ``powerx_agent.loadtest.bare``, whose functions are not part of the spec."""
    _HANDLERS_BY_NAME[function_name] = handler_path


def resolve_handler(function_name: str) -> Callable[[Any, Any], Any]:
    path = _HANDLERS_BY_NAME.get(function_name)
    if path is None:
        raise LookupError(f"no in-process handler for Lambda function {function_name!r}")
    module_name, attr = path.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), attr)


InvocationListener = Callable[[str, LambdaContext, dict[str, Any]], None]
_listeners: list[InvocationListener] = []


def add_invocation_listener(listener: InvocationListener) -> Callable[[], None]:
    """``listener(phase, context, info)`` is called with phase "start" before each in-process invocation
    and "end" after it (info: duration_ms, errored, error, logs); returns the function that removes it
    (``local serve --logs`` prints Lambda's START / END / REPORT lines from it)."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


def _tell(phase: str, context: LambdaContext, info: dict[str, Any]) -> None:
    for listener in list(_listeners):
        try:
            listener(phase, context, info)
        except Exception:  # noqa: BLE001 - a listener never changes an invocation's outcome
            pass


def invoke_in_process(function: Any, event: Any) -> tuple[str, bool, str]:
    """Run our handler for a moto ``LambdaFunction``: (result JSON, errored, logs). ``event`` is JSON
    text (an Invoke payload, moto's own deliveries) or an already decoded event."""
    if isinstance(event, str | bytes):
        event = json.loads(event or "{}")
    context = LambdaContext(function)
    started = time.monotonic()
    _tell("start", context, {})
    try:
        handler = resolve_handler(function.function_name)
        result = handler(event, context)
        outcome = json.dumps(result, default=str), False, ""
        _tell("end", context, {"duration_ms": (time.monotonic() - started) * 1000, "errored": False})
        return outcome
    except Exception as exc:  # noqa: BLE001 - reported to the caller exactly as Lambda would
        error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        logs = traceback.format_exc(limit=5)
        _tell("end", context, {"duration_ms": (time.monotonic() - started) * 1000, "errored": True,
                               "error": error, "logs": logs})
        return json.dumps(error), True, logs


def patch_invoke() -> None:
    from moto.awslambda.models import LambdaFunction

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        return invoke_in_process(self, event)

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        # moto decodes the Invoke payload before _invoke_lambda, which then took a payload that is a
        # JSON string ("x") for JSON text and failed with a 500; Lambda hands the handler the value
        res, errored, logs = self._invoke_lambda(event=body or "{}")  # the JSON text, decoded once
        if errored:
            response_headers["x-amz-function-error"] = "Handled"
        if request_headers.get("x-amz-invocation-type", "RequestResponse") == "RequestResponse":
            response_headers["x-amz-log-result"] = base64.b64encode(logs.encode("utf-8")).decode("utf-8")
            return res.encode("utf-8")
        return res

    LambdaFunction._invoke_lambda = _invoke_lambda
    LambdaFunction.invoke = invoke
