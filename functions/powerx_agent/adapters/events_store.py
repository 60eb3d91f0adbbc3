"""Idempotency records in ``agent_events``: conditional writes only (docs/architecture.md).

We use our own conditional ``PutItem``/``UpdateItem`` instead of Powertools' idempotency utility
because the engine needs what it does not offer: a payload-hash *conflict* reported as its own
rejection code (not an exception inside the decorator), a per-tenant record expiry, a lease that is
much shorter than the record expiry (so a crashed attempt is taken over after the lease, not after
24 h), and the first result (workflow id) returned to duplicates and to the replay endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from powerx_agent.adapters.aws import error_code
from powerx_agent.adapters.dynamo import all_items, from_item, key, to_item, values
from powerx_agent.clock import SYSTEM_CLOCK, Clock

ClaimKind = Literal["new", "takeover", "duplicate", "conflict", "in_progress", "deferred", "resumed"]


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    record: dict[str, Any]


def event_pk(tenant_id: str, idempotency_key: str) -> str:
    return f"{tenant_id}#{idempotency_key}"


class EventsStore:
    def __init__(self, ddb: Any, table: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self._ddb = ddb
        self._table = table
        self._clock = clock  # leases and record expiry are measured with it

    def get(self, tenant_id: str, idempotency_key: str) -> dict[str, Any] | None:
        out = self._ddb.get_item(TableName=self._table, Key=key(pk=event_pk(tenant_id, idempotency_key)),
                                 ConsistentRead=True)
        return from_item(out.get("Item"))

    def claim(self, *, tenant_id: str, idempotency_key: str, payload_hash: str, event_id: str,
              workflow_id: str, event_type: str, lease_seconds: float, ttl_seconds: float,
              now: float | None = None) -> Claim:
        now = now if now is not None else self._clock.time()
        record = {
            "pk": event_pk(tenant_id, idempotency_key), "tenant_id": tenant_id, "idempotency_key": idempotency_key,
            "event_id": event_id, "event_type": event_type, "payload_hash": payload_hash,
            "status": "IN_PROGRESS", "workflow_id": workflow_id, "lease_until": round(now + lease_seconds, 3),
            "expires_at": int(now + ttl_seconds), "first_seen": round(now, 3), "attempts": 1,
        }
        try:
            self._ddb.put_item(TableName=self._table, Item=to_item(record),
                               ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                               ExpressionAttributeValues=values(now=int(now)))
            return Claim("new", record)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
        existing = self.get(tenant_id, idempotency_key) or {}
        if existing.get("payload_hash") != payload_hash:
            return Claim("conflict", existing)
        if existing.get("status") == "DEFERRED":
            # recorded while the orchestrator was off: the caller decides (flag on → reopen and run)
            return Claim("deferred", existing)
        if existing.get("status") != "IN_PROGRESS":
            return Claim("duplicate", existing)
        if float(existing.get("lease_until", 0)) > now:
            return Claim("in_progress", existing)
        try:  # the previous attempt's lease ran out: take it over, exactly one taker wins
            out = self._ddb.update_item(
                TableName=self._table, Key=key(pk=event_pk(tenant_id, idempotency_key)),
                UpdateExpression="SET lease_until = :lease, attempts = attempts + :one",
                ConditionExpression="#s = :inprog AND lease_until = :old",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values(lease=round(now + lease_seconds, 3), one=1, inprog="IN_PROGRESS",
                                                 old=existing["lease_until"]),
                ReturnValues="ALL_NEW",
            )
            return Claim("takeover", from_item(out["Attributes"]) or existing)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return Claim("in_progress", self.get(tenant_id, idempotency_key) or existing)

    def finish(self, tenant_id: str, idempotency_key: str, *, status: str, outcome: str,
               strategy_id: str | None = None, event_json: str | None = None) -> None:
        """IN_PROGRESS → COMPLETED | DEFERRED (idempotent: finishing twice changes nothing). ``event_json``:
        the event itself, kept with a DEFERRED record so that ``events list --format jsonl`` can hand it
        to ``replay --file`` (at most EventBridge's 256 KiB, well under an item's 400 KB)."""
        extra = {"sid": strategy_id} if strategy_id else {}
        if event_json is not None:
            extra["ev"] = event_json
        try:
            self._ddb.update_item(
                TableName=self._table, Key=key(pk=event_pk(tenant_id, idempotency_key)),
                UpdateExpression="SET #s = :st, outcome = :oc, finished_at = :t" +
                                 (", strategy_id = :sid" if strategy_id else "") +
                                 (", event_json = :ev" if event_json is not None else "") + " REMOVE lease_until",
                ConditionExpression="#s = :inprog",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values(st=status, oc=outcome, t=round(self._clock.time(), 3),
                                                 inprog="IN_PROGRESS", **extra),
            )
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def reopen(self, tenant_id: str, idempotency_key: str, *, lease_seconds: float,
               now: float | None = None) -> Claim:
        """DEFERRED → IN_PROGRESS (conditional), so a replay after the orchestrator is switched on runs it.

        Exactly one of several concurrent deliveries wins (``resumed``); the others see ``in_progress``
        and are retried after the lease, when they find the record finished (``duplicate``).
        """
        now = now if now is not None else self._clock.time()
        try:
            out = self._ddb.update_item(
                TableName=self._table, Key=key(pk=event_pk(tenant_id, idempotency_key)),
                UpdateExpression="SET #s = :inprog, lease_until = :lease, attempts = if_not_exists(attempts, :zero)"
                                 " + :one, reopened_at = :now REMOVE outcome, finished_at",
                ConditionExpression="#s = :deferred",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values(inprog="IN_PROGRESS", deferred="DEFERRED",
                                                 lease=round(now + lease_seconds, 3), zero=0, one=1,
                                                 now=round(now, 3)),
                ReturnValues="ALL_NEW",
            )
            return Claim("resumed", from_item(out["Attributes"]) or {})
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
        current = self.get(tenant_id, idempotency_key) or {}
        return Claim("in_progress" if current.get("status") == "IN_PROGRESS" else "duplicate", current)

    def scan(self) -> list[dict[str, Any]]:
        return list(all_items(self._ddb, "scan", TableName=self._table))
