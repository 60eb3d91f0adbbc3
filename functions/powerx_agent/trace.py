"""W3C trace context: continue a valid ``traceparent``, start a new one otherwise."""

from __future__ import annotations

import re
import secrets

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_TRACEPARENT = re.compile(r"^(?P<v>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<span>[0-9a-f]{16})-(?P<flags>[0-9a-f]{2})$")


def continue_or_start(traceparent: object, new_trace_id: str | None = None) -> dict[str, str]:
    """Return ``{"traceparent", "trace_id", "parent_span_id", "continued"}`` for our new span.

    A new trace takes ``new_trace_id`` (32 lowercase hex, e.g. the X-Ray trace of the invocation)
    when it is a valid W3C trace id, a random one otherwise."""
    match = _TRACEPARENT.match(traceparent) if isinstance(traceparent, str) else None
    valid = bool(
        match
        and match["v"] != "ff"
        and match["trace"] != "0" * 32
        and match["span"] != "0" * 16
    )
    span = secrets.token_hex(8)
    if valid and match:
        return {"traceparent": f"00-{match['trace']}-{span}-{match['flags']}", "trace_id": match["trace"],
                "parent_span_id": match["span"], "continued": "true"}
    trace = new_trace_id if new_trace_id and _TRACE_ID.match(new_trace_id) and new_trace_id != "0" * 32 \
        else secrets.token_hex(16)
    return {"traceparent": f"00-{trace}-{span}-01", "trace_id": trace, "parent_span_id": "", "continued": "false"}


def child(traceparent: str) -> str:
    """A child span of ``traceparent`` for an outgoing call."""
    match = _TRACEPARENT.match(traceparent or "")
    if not match:
        return continue_or_start(None)["traceparent"]
    return f"00-{match['trace']}-{secrets.token_hex(8)}-{match['flags']}"
