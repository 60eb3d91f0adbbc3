"""Logs and traces of one unit of work: an event, a match, a node, a workflow step, a callback.

Every line the engine logs is a Powertools Logger JSON line (service ``powerx-agent``); nothing
prints. Inside :func:`work`, every line carries ``tenant_id``, ``event_id``, ``workflow_id`` and
``traceparent`` (thread-safe keys: the embedded runtime runs invocations on threads, Lambda runs one
at a time), and on AWS Powertools adds ``xray_trace_id``. The unit gets an X-Ray subsegment of its
own, annotated with the same ids and with ``w3c_trace_id``, the trace id of the W3C
``traceparent``: ``annotation.w3c_trace_id = "<32 hex>"`` in the X-Ray console finds every X-Ray
trace a caller's W3C trace touched, and a log line names both ids. An event that arrives without a
valid ``traceparent`` starts its W3C trace with the X-Ray trace's own id (X-Ray's
``1-5759e988-bd862e3fe1be46a994272793`` is the W3C trace id ``5759e988bd862e3fe1be46a994272793``:
the same 128 bits), so one id names the trace in both systems. docs/operations.md, "Logs and traces".

The Tracer is made by the handlers (:func:`tracer`), not by this module: the console script, which
shares the logic, neither imports the X-Ray SDK nor writes traces.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from aws_lambda_powertools import Logger, Tracer

SERVICE = "powerx-agent"
KEYS = ("tenant_id", "event_id", "workflow_id", "traceparent")
"""The keys a unit of work appends to every log line it writes."""
PATCHED = ("boto3", "requests")

logger = Logger(service=SERVICE)

_XRAY_ROOT = re.compile(r"Root=1-([0-9a-f]{8})-([0-9a-f]{24})(?:;|$)")
_W3C_TRACE = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_tracer: Tracer | None = None


def tracer() -> Tracer:
    """The handlers' Tracer (one per process). Off outside Lambda and when ``POWERTOOLS_TRACE_DISABLED``.

    It patches only what the functions call out with (AWS SDK, ``requests``): every AWS call and
    every downstream HTTP call is a subsegment, and nothing else installed is imported for it."""
    global _tracer
    if _tracer is None:
        _tracer = Tracer(service=SERVICE, patch_modules=PATCHED)
    return _tracer


def xray_trace_id() -> str | None:
    """The invocation's X-Ray trace id (``1-xxxxxxxx-…``) from ``_X_AMZN_TRACE_ID``, which Lambda sets."""
    match = _XRAY_ROOT.search(os.environ.get("_X_AMZN_TRACE_ID", ""))
    return f"1-{match[1]}-{match[2]}" if match else None


def w3c_trace_id_of_xray() -> str | None:
    """The invocation's X-Ray trace id written as a W3C trace id (32 hex), or None outside a trace."""
    match = _XRAY_ROOT.search(os.environ.get("_X_AMZN_TRACE_ID", ""))
    return match[1] + match[2] if match else None


def w3c_trace_id(traceparent: object) -> str | None:
    match = _W3C_TRACE.match(traceparent) if isinstance(traceparent, str) else None
    return match[1] if match else None


def _traced() -> Tracer | None:
    return _tracer if _tracer is not None and not _tracer.disabled else None


def bind(**keys: Any) -> None:
    """Append ``keys`` (None values skipped) to every later line of this unit of work, and annotate
    its X-Ray subsegment with them (and the traceparent's ``w3c_trace_id``). Values come from
    validated input only (ids, the traceparent once it matches the W3C format)."""
    keys = {k: v for k, v in keys.items() if v is not None and v != ""}
    if "traceparent" in keys and not w3c_trace_id(keys["traceparent"]):
        del keys["traceparent"]  # a caller's malformed value is not repeated on every line
    if not keys:
        return
    logger.thread_safe_append_keys(**keys)
    traced = _traced()
    if traced is None:
        return
    for key, value in keys.items():
        if key == "traceparent":
            trace_id = w3c_trace_id(value)
            if trace_id:
                traced.put_annotation("w3c_trace_id", trace_id)
        if isinstance(value, str | int | float | bool):
            traced.put_annotation(key, value)


@contextmanager
def work(name: str, **keys: Any) -> Iterator[None]:
    """One unit of work: its keys on every log line and an X-Ray subsegment ``## <name>``.

    A failure is logged once with the unit's keys (a typed engine error as a warning with its code,
    anything else with its traceback) and raised again; the keys are gone when the unit ends.
    """
    before = dict(logger.thread_safe_get_current_keys())
    traced = _traced()
    segment = traced.provider.in_subsegment(f"## {name}") if traced is not None else nullcontext()
    try:
        with segment:
            bind(**keys)
            try:
                yield
            except Exception as exc:
                code = getattr(exc, "code", None)
                if isinstance(code, str):  # an error the engine raises on purpose: its code says it all
                    logger.warning(f"{name} stopped: {exc}", extra={"error_code": code,
                                                                    "retryable": bool(getattr(exc, "retryable", False))})
                else:
                    logger.exception(f"{name} failed: {type(exc).__name__}", extra={"error_code": type(exc).__name__})
                raise
    finally:
        logger.thread_safe_clear_keys()
        if before:
            logger.thread_safe_append_keys(**before)


def configure(level: str | None = None, stream: Any = None) -> None:
    """Set the level (and stream) of every engine log line: the console script logs warnings to
    stderr, so its own output stays readable; the embedded runtime logs what its environment says."""
    if level:
        logger.setLevel(level.upper())
    if stream is not None:
        handler = logger.registered_handler
        if hasattr(handler, "setStream"):
            handler.setStream(stream)
