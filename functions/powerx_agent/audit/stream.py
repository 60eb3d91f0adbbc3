"""DynamoDB Streams → CloudWatch Logs: audit records as structured JSON (docs/operations.md, "Audit trail").

Each line carries the log fields (``LOG_FIELDS``) at the top level; ``data`` goes through the redaction
policy (``powerx_agent.redaction``) first.
"""

from __future__ import annotations

import json
from typing import Any

from powerx_agent.audit.records import LOG_FIELDS
from powerx_agent.redaction import redact


def log_line(record: dict[str, Any]) -> dict[str, Any]:
    line: dict[str, Any] = {"ts": record.get("ts"), "kind": record.get("kind"), "tenant_id": record.get("tenant_id"),
                            "chain": record.get("pk"), "seq": record.get("seq")}
    for field in LOG_FIELDS:
        line[field] = record.get(field)
    line["data"] = redact(record.get("data") or {})
    line["hash"] = record.get("hash")
    return line


def to_log_events(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from datetime import datetime

    events = []
    for record in records:
        ts = record.get("ts") or ""
        try:
            millis = int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            millis = 0
        events.append({"timestamp": millis, "message": json.dumps(log_line(record), default=str)})
    return sorted(events, key=lambda e: e["timestamp"])


def forward(records: list[dict[str, Any]], *, streaming_on: bool, sink: Any, cursor: Any,
            audit: Any) -> dict[str, Any]:
    """Forward one stream batch, honouring the ``audit-streaming`` flag.

    Off: nothing is forwarded (the records are already safe in ``agent_audit``); the time of the
    earliest unforwarded record is held in the cursor (``FLAGS / AUDIT_CURSOR``, the minimum wins).
    On: if a cursor is held, this invocation takes it (exactly one taker), forwards every record
    written since then in time order (``audit.since``) and then the batch itself (records of the batch
    that the catch-up already covered are not sent twice). The catch-up reads each chain the sparse
    ``by_time`` GSI names with a strongly consistent Query: a paused record that is not indexed is found
    only by that read, and it was written before the cursor was taken, so a consistent read sees it
    where a lagging replica might not. If forwarding fails the cursor is put
    back, so nothing is lost; delivery is at least once (each log line carries ``chain`` and
    ``seq`` to de-duplicate on).
    """
    if not records:
        return {"forwarded": 0}
    if not streaming_on:
        cursor.hold(min(r["ts"] for r in records))
        return {"forwarded": 0, "paused": len(records)}
    caught_up: list[dict[str, Any]] = []
    held = cursor.take()
    batch_keys = {(r.get("pk"), r.get("seq")) for r in records}
    try:
        if held:
            caught_up = [r for r in audit.since(held, consistent=True)
                         if (r.get("pk"), r.get("seq")) not in batch_keys]
            _put(sink, caught_up)
        _put(sink, records)
    except Exception:
        if held:
            cursor.hold(held)
        raise
    return {"forwarded": len(records) + len(caught_up), "caught_up": len(caught_up),
            **({"cursor": held} if held else {})}


def _put(sink: Any, records: list[dict[str, Any]]) -> None:
    by_day: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_day.setdefault(str(record.get("ts") or "")[:10] or "unknown", []).append(record)
    for day, group in sorted(by_day.items()):
        sink.put(to_log_events(group), day)
