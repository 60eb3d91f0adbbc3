"""Append-only audit store over ``agent_audit`` with conditional puts (docs/architecture.md)."""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from typing import Any

from powerx_agent.adapters.aws import error_code
from powerx_agent.adapters.dynamo import all_items, fan_out, from_item, key, to_item, values
from powerx_agent.audit.records import GENESIS, AuditEntry, seal
from powerx_agent.audit.shards import time_keys
from powerx_agent.errors import RetryableError

_MAX_ATTEMPTS = 12


class AuditStore:
    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self._table = table
        self._tails: OrderedDict[str, tuple[int, str]] = OrderedDict()  # chain -> (seq, hash) last written here
        self._lock = threading.Lock()

    def _tail(self, chain: str) -> tuple[int, str]:
        with self._lock:
            cached = self._tails.get(chain)
        if cached is not None:
            return cached
        return self._read_tail(chain)

    def _read_tail(self, chain: str) -> tuple[int, str]:
        out = self._ddb.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=values(pk=chain),
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = out.get("Items", [])
        if not items:
            return 0, GENESIS
        last = from_item(items[0]) or {}
        return int(last["seq"]), str(last["hash"])

    def append(self, entry: AuditEntry) -> dict[str, Any]:
        """Write the next record of ``entry.chain``; concurrent writers retry on the condition.

        A writer that loses the race for ``seq`` gets the winning record back with the failure
        (``ReturnValuesOnConditionCheckFailure``) and chains onto it directly; only a second loss
        in a row re-reads the tail (one query), so a contended append costs one more put, not a
        query and a put."""
        seq, prev = self._tail(entry.chain)
        for attempt in range(_MAX_ATTEMPTS):
            record = seal(entry, seq + 1, prev)
            try:
                self._ddb.put_item(
                    TableName=self._table,
                    Item=to_item(record),
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except Exception as exc:  # noqa: BLE001 - only the condition failure is handled here
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                winner = from_item(getattr(exc, "response", {}).get("Item"))
                if winner and attempt % 2 == 0:
                    seq, prev = int(winner["seq"]), str(winner["hash"])
                else:
                    time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                    seq, prev = self._read_tail(entry.chain)
                continue
            self._remember(entry.chain, record["seq"], record["hash"])
            return record
        raise RetryableError(f"could not append to audit chain {entry.chain} after {_MAX_ATTEMPTS} attempts",
                             code="audit.contention")

    def transact_puts(self, entries: list[AuditEntry]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The sealed records of ``entries`` (each chained onto the one before it) and the
        ``TransactWriteItems`` actions that write them only while their ``seq`` is still free, for the
        caller to commit in the same transaction as the change they record: both happen or neither.
        A writer that appended to the chain in between cancels the transaction; read again and retry.
        Call :meth:`committed` with the records once the transaction succeeded."""
        tails: dict[str, tuple[int, str]] = {}
        records, actions = [], []
        for entry in entries:
            seq, prev = tails.get(entry.chain) or self._read_tail(entry.chain)
            record = seal(entry, seq + 1, prev)
            tails[entry.chain] = (int(record["seq"]), str(record["hash"]))
            records.append(record)
            actions.append({"Put": {"TableName": self._table, "Item": to_item(record),
                                    "ConditionExpression": "attribute_not_exists(pk)"}})
        return records, actions

    def committed(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self._remember(record["pk"], int(record["seq"]), str(record["hash"]))
    def first_record(self, entry: AuditEntry) -> tuple[dict[str, Any], dict[str, Any]]:
        """The first record of a chain that has none yet, as a ``TransactWriteItems`` Put that fails
        when the chain has a record (then append with :meth:`append`), and the record itself
        (:meth:`written` once the transaction succeeded)."""
        record = seal(entry, 1, GENESIS)
        return {"Put": {"TableName": self._table, "Item": to_item(record),
                        "ConditionExpression": "attribute_not_exists(pk)"}}, record

    def written(self, record: dict[str, Any]) -> None:
        self._remember(record["pk"], record["seq"], record["hash"])

    def _remember(self, chain: str, seq: int, digest: str) -> None:
        with self._lock:
            self._tails[chain] = (seq, digest)
            self._tails.move_to_end(chain)
            while len(self._tails) > 4096:
                self._tails.popitem(last=False)

    def chain(self, chain: str) -> list[dict[str, Any]]:
        return list(all_items(self._ddb, "query", TableName=self._table, KeyConditionExpression="pk = :pk",
                              ExpressionAttributeValues=values(pk=chain), ConsistentRead=True))

    def scan_all(self) -> list[dict[str, Any]]:
        return list(all_items(self._ddb, "scan", TableName=self._table))

    def delete(self, chain: str, seq: int) -> None:
        """Only for tests and repair drills: remove one record (verify must then fail)."""
        self._ddb.delete_item(TableName=self._table, Key=key(pk=chain, seq=seq))

    # -- read paths for verify, metrics, catch-up (additive) -----------------------------------
    def since(self, ts: str, until: str | None = None) -> list[dict[str, Any]]:
        """Every record with ``ts`` at or after ``ts`` (ISO, UTC), in time order, via the ``by_time`` GSI
        (partition ``day`` = a day's shard, :func:`powerx_agent.audit.shards.time_keys`; sort ``ts_seq`` =
        ``<ts>#<chain>#<seq>``): every shard of every day up to today, queried in parallel, merged."""
        from datetime import UTC, date, datetime, timedelta

        start = date.fromisoformat(ts[:10])
        end = date.fromisoformat(until[:10]) if until else datetime.now(UTC).date()
        queries: list[dict[str, Any]] = []
        day = start
        while day <= end:
            for shard in time_keys(day.isoformat()):
                query: dict[str, Any] = {"KeyConditionExpression": "#d = :d", "ExpressionAttributeNames": {"#d": "day"},
                                         "ExpressionAttributeValues": values(d=shard)}
                if day == start:
                    query["KeyConditionExpression"] += " AND ts_seq >= :t"
                    query["ExpressionAttributeValues"] = values(d=shard, t=ts)
                queries.append(query)
            day += timedelta(days=1)
        records = fan_out(self._ddb, self._table, "by_time", queries)
        if until:
            records = [r for r in records if r["ts"] <= until]
        return sorted(records, key=lambda r: r["ts_seq"])


class StreamCursor:
    """``FLAGS / AUDIT_CURSOR`` in ``agent_strategies``: the time of the first audit record that was not
    forwarded to CloudWatch Logs while ``audit-streaming`` was off (absent = nothing to catch up)."""

    PK, SK = "FLAGS", "AUDIT_CURSOR"

    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self._table = table

    def get(self) -> str | None:
        out = self._ddb.get_item(TableName=self._table, Key=key(pk=self.PK, sk=self.SK), ConsistentRead=True)
        item = from_item(out.get("Item"))
        return str(item["since"]) if item else None

    def hold(self, ts: str) -> None:
        """Remember ``ts`` unless an earlier unforwarded time is already held (keeps the minimum)."""
        try:
            self._ddb.update_item(
                TableName=self._table, Key=key(pk=self.PK, sk=self.SK),
                UpdateExpression="SET since = :t, held_at = :now",
                ConditionExpression="attribute_not_exists(since) OR since > :t",
                ExpressionAttributeValues=values(t=ts, now=round(time.time(), 3)))
        except Exception as exc:  # noqa: BLE001 - an earlier cursor is already held: nothing to do
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def take(self) -> str | None:
        """Remove the cursor and return it; exactly one concurrent caller gets it (None for the rest).

        Every stream batch asks, and there is almost never a cursor: an eventually consistent read (half
        a read unit) says so first, instead of a conditional delete that fails and still costs a write
        unit, every batch, on one item (the hottest key of the table at 2,000 events/s). A cursor held
        an instant ago that the read does not see yet is taken by the next batch."""
        out = self._ddb.get_item(TableName=self._table, Key=key(pk=self.PK, sk=self.SK))
        if not out.get("Item"):
            return None
        try:
            out = self._ddb.delete_item(TableName=self._table, Key=key(pk=self.PK, sk=self.SK),
                                        ConditionExpression="attribute_exists(since)", ReturnValues="ALL_OLD")
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return None
        item = from_item(out.get("Attributes"))
        return str(item["since"]) if item else None


def record_from_stream(stream_record: dict[str, Any]) -> dict[str, Any] | None:
    """The audit record a DynamoDB stream record carries (its ``NewImage``), as plain values."""
    image = (stream_record.get("dynamodb") or {}).get("NewImage")
    if not image:
        return None
    return from_item({k: v for k, v in image.items()})
