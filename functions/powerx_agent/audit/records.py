"""Audit records and their hash chain (pure logic; storage lives in ``adapters.audit_store``).

Every record belongs to a *chain* (one per event/workflow: ``WF#<workflow_id>``, the workflow id
being derived from tenant and idempotency key, so an event's acceptance, its decision and its
workflow share one chain; ``STRAT#<id>`` for strategy changes, ``OPS#<day>`` for flags, replays
and repairs; ``REJ#<fingerprint>`` for envelopes too broken to name a tenant). Records carry a
sequence number and the hash of the previous record, so a missing or edited record breaks the
chain and :func:`powerx_agent.audit.chain.check_chain` (the one verifier) finds it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from powerx_agent.audit.kinds import AuditKind
from powerx_agent.audit.shards import time_key

GENESIS = "0" * 64

# the log fields (docs/operations.md), promoted to top-level attributes of every record
LOG_FIELDS = ("event_id", "strategy_id", "workflow_id", "node_id", "status", "duration", "escalation_reason")


def iso_at(seconds: float) -> str:
    """``seconds`` since the epoch as RFC 3339 UTC with milliseconds (a record's ``ts``)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso_at(time.time())


def minute_of(ts: str) -> str:
    """The minute bucket of an ISO time: ``YYYY-MM-DDTHH:MM``."""
    return ts[:16]


def indexed(seq: int, ts: str, prev_ts: str | None) -> bool:
    """Whether a record carries the time index key (``day``): the first record of its chain (or one whose
    predecessor's time is not known) and the first of its chain in each minute. Every other record shares
    its minute with its predecessor, so walking a chain back from any record ends, within the same minute,
    at an indexed one: querying the index from the start of ``T``'s minute finds every chain with a record
    at or after ``T`` (``AuditStore.since``)."""
    return seq == 1 or prev_ts is None or minute_of(ts) != minute_of(prev_ts)


def _numbers_as_stored(value: Any) -> Any:
    """Numbers as DynamoDB gives them back: an integral float (``1000.0``) reads back as ``1000``,
    so the hash is computed over that form and a stored record verifies after a round trip."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _numbers_as_stored(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_numbers_as_stored(v) for v in value]
    return value


def canonical(data: Any) -> str:
    return json.dumps(_numbers_as_stored(data), sort_keys=True, separators=(",", ":"), default=str,
                      ensure_ascii=False)


def workflow_chain(workflow_id: str) -> str:
    return f"WF#{workflow_id}"


@dataclass
class AuditEntry:
    """What a step wants to record; the store adds sequence, time and hashes. ``kind`` must be an
    :class:`AuditKind` (a plain string naming one is accepted and checked)."""

    kind: AuditKind
    chain: str
    tenant_id: str | None = None
    event_id: str | None = None
    workflow_id: str | None = None
    strategy_id: str | None = None
    node_id: str | None = None
    status: str | None = None
    duration: float | None = None
    escalation_reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kind = AuditKind(self.kind)


def seal(entry: AuditEntry, seq: int, prev_hash: str, ts: str | None = None,
         prev_ts: str | None = None) -> dict[str, Any]:
    """The stored record: entry fields + chain position + hash over everything else (``day``, the time
    index's key, included when the record carries it: see :func:`indexed`). ``prev_ts`` is the time of
    the record at ``seq - 1``; without it the record is indexed."""
    ts = ts or now_iso()
    record: dict[str, Any] = {
        "pk": entry.chain,
        "seq": seq,
        "ts": ts,
        # the time index's key, sharded (audit.shards), on the first record of the chain in each minute
        "day": time_key(ts[:10], entry.chain) if indexed(seq, ts, prev_ts) else None,
        "ts_seq": f"{ts}#{entry.chain}#{seq:08d}",
        "kind": str(entry.kind),
        "tenant_id": entry.tenant_id,
        "event_id": entry.event_id,
        "workflow_id": entry.workflow_id,
        "strategy_id": entry.strategy_id,
        "node_id": entry.node_id,
        "status": None if entry.status is None else str(entry.status),
        "duration": entry.duration,
        "escalation_reason": entry.escalation_reason,
        "data": entry.data,
        "prev_hash": prev_hash,
    }
    record = {k: v for k, v in record.items() if v is not None}
    record["hash"] = record_hash(record)
    return record


def record_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body).encode()).hexdigest()
