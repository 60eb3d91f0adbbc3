"""The event envelope of docs/intake.md, validated strictly, with a specific code per problem.

Generic limits come first, before anything recursive (pydantic, ``json.dumps``) sees the event:
depth, numbers DynamoDB can store, valid Unicode (:mod:`powerx_agent.json_limits`), then the size
as EventBridge counts a PutEvents entry (UTF-8 bytes of Source, DetailType and Detail, plus 14
for Time and each resource).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from powerx_agent.errors import EventRejected
from powerx_agent.json_limits import MAX_DEPTH, JsonLimitError, check_value, loads, utf8_size

MAX_EVENT_BYTES = 256 * 1024  # EventBridge's PutEvents entry limit
_TIME_BYTES = 14  # EventBridge counts a given Time as 14 bytes
TENANT_RE = r"^[a-z0-9][a-z0-9-]{0,62}$"
PRINTABLE_RE = r"^[\x21-\x7e]{1,128}$"
EVENT_TYPE_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str = Field(pattern=TENANT_RE)
    event_id: str = Field(pattern=PRINTABLE_RE)
    idempotency_key: str | None = Field(default=None, pattern=PRINTABLE_RE)
    occurred_at: datetime
    context: dict[str, Any] = Field(default_factory=dict)
    payload: dict[str, Any] = Field(default_factory=dict)
    replay_of: str | None = Field(default=None, pattern=PRINTABLE_RE)
    replayed_by: str | None = Field(default=None, max_length=256)

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("occurred_at must be an RFC 3339 string such as 2026-11-28T10:00:00Z")
        text = value.replace("Z", "+00:00").replace("z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"occurred_at '{value}' is not RFC 3339") from exc
        if parsed.tzinfo is None or "T" not in value.upper():
            raise ValueError(f"occurred_at '{value}' needs a date, a time and a UTC offset (RFC 3339)")
        return parsed

    @property
    def key(self) -> str:
        return self.idempotency_key or self.event_id


class IncomingEvent(BaseModel):
    """The EventBridge event around the envelope."""

    model_config = ConfigDict(frozen=True)

    event_type: str
    source: str
    bus_event_id: str | None
    envelope: Envelope

    @property
    def payload_hash(self) -> str:
        return payload_hash(self.event_type, self.envelope)


def payload_hash(event_type: str, envelope: Envelope) -> str:
    """What makes two deliveries 'the same event': type, tenant, payload and context, not ids or times."""
    body = {"event_type": event_type, "tenant_id": envelope.tenant_id, "payload": envelope.payload,
            "context": {k: v for k, v in envelope.context.items() if k != "traceparent"}}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _code_for(error_type: str) -> str:
    if error_type == "missing":
        return "envelope.missing_field"
    if error_type == "extra_forbidden":
        return "envelope.unknown_field"
    return "envelope.invalid_field"


def limits_rejection(exc: JsonLimitError, prefix: str = "envelope") -> EventRejected:
    """A JSON limit as a rejection: ``envelope.too_deep``, ``envelope.invalid_number``, ..."""
    if exc.kind == "too_deep":
        return EventRejected(f"detail nests objects and arrays deeper than {MAX_DEPTH} levels (the limit)",
                             code=f"{prefix}.too_deep", where=exc.where or "$", details={"max_depth": MAX_DEPTH})
    return EventRejected(exc.message, code=f"{prefix}.{exc.kind}", where=exc.where or "$")


def entry_size(event: dict[str, Any]) -> int:
    """The PutEvents entry size of an event, as EventBridge computes it: UTF-8 bytes of source,
    detail-type and detail (its JSON as sent, or compact when already parsed), each resource, and
    14 bytes for the time."""
    detail = event.get("detail")
    detail_text = detail if isinstance(detail, str) else \
        json.dumps(detail, ensure_ascii=False, separators=(",", ":"), default=str)
    size = utf8_size(detail_text) + (_TIME_BYTES if event.get("time") is not None else 0)
    for key in ("source", "detail-type"):
        value = event.get(key)
        size += utf8_size(value) if isinstance(value, str) else 0
    resources = event.get("resources")
    if isinstance(resources, list):
        size += sum(utf8_size(r) for r in resources if isinstance(r, str))
    return size


def parse_event(event: Any) -> IncomingEvent:
    """Validate an EventBridge event carrying our envelope; raise EventRejected with a precise code."""
    if not isinstance(event, dict):
        raise EventRejected("the event is not a JSON object", code="envelope.not_an_object", where="$")
    try:
        # the event's own level counts: detail (level 2) may nest MAX_DEPTH levels
        check_value(event, root="", max_depth=MAX_DEPTH + 1)
        if isinstance(event.get("detail"), str):
            detail_value = loads(event["detail"], root="detail")
        else:
            detail_value = event.get("detail")
    except JsonLimitError as exc:
        if exc.kind == "invalid_json":
            raise EventRejected(f"detail is {exc.message}", code="envelope.invalid_json", where="detail") from None
        raise limits_rejection(exc) from None
    size = entry_size(event)
    if size > MAX_EVENT_BYTES:
        raise EventRejected(f"the event is {size} bytes (UTF-8, counted as EventBridge counts a PutEvents entry); "
                            f"the limit is {MAX_EVENT_BYTES} bytes",
                            code="envelope.too_large", where="$", details={"bytes": size})
    event_type = event.get("detail-type")
    if not event_type:
        raise EventRejected("detail-type (the event type) is required", code="envelope.missing_field",
                            where="detail-type")
    if not isinstance(event_type, str) or not re.match(EVENT_TYPE_RE, event_type):
        raise EventRejected(f"detail-type {event_type!r} is not a valid event type", code="envelope.invalid_field",
                            where="detail-type")
    source = event.get("source")
    if not isinstance(source, str) or not source:
        raise EventRejected("source is required", code="envelope.missing_field", where="source")
    detail = detail_value
    if detail is None:
        raise EventRejected("detail (the envelope) is required", code="envelope.missing_field", where="detail")
    if not isinstance(detail, dict):
        raise EventRejected("detail must be a JSON object", code="envelope.invalid_field", where="detail")
    try:
        envelope = Envelope.model_validate(detail)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise EventRejected(
            f"{first['msg']}" + (f" (got {first['input']!r:.80})" if first["type"] != "missing" else ""),
            code=_code_for(first["type"]), where=f"detail.{loc}",
            details={"problems": [{"where": "detail." + ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
                                  for e in exc.errors()[:10]]},
        ) from None
    return IncomingEvent(event_type=event_type, source=source, bus_event_id=event.get("id"), envelope=envelope)
