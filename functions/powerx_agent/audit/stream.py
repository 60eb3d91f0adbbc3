"""DynamoDB Streams → CloudWatch Logs: audit records as structured JSON (DESIGN.md §7).

Each line carries the log fields of §7 at the top level; ``data`` goes through the redaction
policy (``powerx_agent.strategy.redaction``) first.
"""

from __future__ import annotations

import json
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from powerx_agent.audit.records import LOG_FIELDS
from powerx_agent.strategy.redaction import redact

_de = TypeDeserializer()


def record_from_stream(stream_record: dict[str, Any]) -> dict[str, Any] | None:
    image = (stream_record.get("dynamodb") or {}).get("NewImage")
    if not image:
        return None
    from powerx_agent.adapters.dynamo import from_item  # plain-value conversion shared with the stores

    return from_item({k: v for k, v in image.items()})


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
