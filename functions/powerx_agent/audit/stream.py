"""DynamoDB Streams → CloudWatch Logs: audit records as structured JSON (docs/operations.md, "Audit trail").

Each line carries the log fields (``LOG_FIELDS``) at the top level; ``data`` goes through the redaction
policy (``powerx_agent.redaction``) first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
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


CATCH_UP_BUDGET_SECONDS = 30.0
"""A catch-up starts reading more chains only within this time of one invocation (half the stream
function's 60 s timeout): a long pause is caught up over several invocations, each one bounded."""
CATCH_UP_GROUP = 256
"""Index entries whose chains are read together (in parallel) between two looks at the budget."""


def forward(records: list[dict[str, Any]], *, streaming_on: bool, sink: Any, cursor: Any, audit: Any,
            budget: float = CATCH_UP_BUDGET_SECONDS, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Forward one stream batch, honouring the ``audit-streaming`` flag.

    Off: nothing is forwarded (the records are already safe in ``agent_audit``); the time of the
    earliest unforwarded record is held in the cursor (``FLAGS / AUDIT_CURSOR``, the minimum wins).
    On: if a cursor is held, this invocation takes it (exactly one taker) and catches up (below), then
    forwards the batch itself (records of the batch that the catch-up covered are not sent twice).

    The catch-up finds the chains written since the cursor in the sparse ``by_time`` GSI
    (``audit.index_hits``, in index order) and reads them, a group at a time, with strongly consistent
    Queries: a paused record that is not indexed is found only by that read, and it was written before
    the cursor was taken, so a consistent read sees it where a lagging replica might not. When the
    ``budget`` runs out, the cursor is held again at the index entry of the first chain not read (its
    ``ts_seq``): every record of that chain and of the ones after it is at or after that entry, so the
    next batch goes on from there, and a pause of any length is caught up in bounded invocations. If
    forwarding fails, the cursor is put back where the catch-up stood, so nothing is lost; delivery is
    at least once (each log line carries ``chain`` and ``seq`` to de-duplicate on).
    """
    if not records:
        return {"forwarded": 0}
    if not streaming_on:
        cursor.hold(min(r["ts"] for r in records))
        return {"forwarded": 0, "paused": len(records)}
    held = cursor.take()
    progress = {"resume": held, "caught_up": 0}
    try:
        if held:
            _catch_up(held, audit, sink, {(r.get("pk"), r.get("seq")) for r in records}, clock() + budget, clock,
                      progress)
            if progress["resume"]:
                cursor.hold(progress["resume"])
        _put(sink, records)
    except Exception:
        if progress["resume"]:
            cursor.hold(progress["resume"])
        raise
    caught_up = int(progress["caught_up"] or 0)
    out: dict[str, Any] = {"forwarded": len(records) + caught_up, "caught_up": caught_up}
    if held:
        out["cursor"] = held
        if progress["resume"]:
            out["resumes_at"] = progress["resume"]
    return out


def _catch_up(held: str, audit: Any, sink: Any, skip: set[tuple[Any, Any]], deadline: float,
              clock: Callable[[], float], progress: dict[str, Any]) -> None:
    """Forward the records written since ``held`` (an ISO time, or a ``ts_seq`` where an earlier catch-up
    stopped), chain group by chain group in index order, until done or past ``deadline``; ``progress``
    says where to resume (None: done) and how many records went."""
    hits = audit.index_hits(held)
    since = held.split("#", 1)[0]
    read: set[str] = set()
    done = 0
    while done < len(hits):
        group = hits[done:done + CATCH_UP_GROUP]
        starts: dict[str, int] = {}
        for chain, seq, _ in group:
            if chain not in read:  # a chain's later entries: its records were read with its first one
                starts[chain] = min(seq, starts.get(chain, seq))
        chunk = [r for r in audit.records_of(starts, since, consistent=True) if (r.get("pk"), r.get("seq")) not in skip]
        _put(sink, chunk)
        read |= set(starts)
        done += len(group)
        progress["caught_up"] += len(chunk)
        progress["resume"] = hits[done][2] if done < len(hits) else None
        if clock() >= deadline:
            break
    if not hits:
        progress["resume"] = None


def _put(sink: Any, records: list[dict[str, Any]]) -> None:
    by_day: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_day.setdefault(str(record.get("ts") or "")[:10] or "unknown", []).append(record)
    for day, group in sorted(by_day.items()):
        sink.put(to_log_events(group), day)
