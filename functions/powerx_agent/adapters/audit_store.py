"""Append-only audit store over ``agent_audit`` with conditional puts (docs/architecture.md)."""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from powerx_agent.adapters.aws import error_code
from powerx_agent.adapters.dynamo import all_items, fan_out, from_item, key, to_item, values
from powerx_agent.audit.records import GENESIS, AuditEntry, iso_at, minute_of, seal
from powerx_agent.audit.shards import time_keys
from powerx_agent.clock import SYSTEM_CLOCK, Clock
from powerx_agent.errors import RetryableError

_MAX_ATTEMPTS = 12

Tail = tuple[int, str, str | None]
"""A chain's last record as the next one needs it: ``seq``, ``hash`` and ``ts`` (None for an empty chain)."""


def _position(record: dict[str, Any]) -> Tail:
    return int(record["seq"]), str(record["hash"]), record.get("ts")


class AuditStore:
    def __init__(self, ddb: Any, table: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self._ddb = ddb
        self._table = table
        self._clock = clock  # the records' ts
        self._tails: OrderedDict[str, Tail] = OrderedDict()  # chain -> its last record written here
        self._lock = threading.Lock()

    def _now(self) -> str:
        return iso_at(self._clock.time())

    def _tail(self, chain: str) -> Tail:
        with self._lock:
            cached = self._tails.get(chain)
        if cached is not None:
            return cached
        return self._read_tail(chain)

    def _read_tail(self, chain: str) -> Tail:
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
            return 0, GENESIS, None
        return _position(from_item(items[0]))

    def append(self, entry: AuditEntry) -> dict[str, Any]:
        """Write the next record of ``entry.chain``; concurrent writers retry on the condition.

        A writer that loses the race for ``seq`` gets the winning record back with the failure
        (``ReturnValuesOnConditionCheckFailure``) and chains onto it directly; only a second loss
        in a row re-reads the tail (one query), so a contended append costs one more put, not a
        query and a put."""
        seq, prev, prev_ts = self._tail(entry.chain)
        for attempt in range(_MAX_ATTEMPTS):
            record = seal(entry, seq + 1, prev, self._now(), prev_ts)
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
                    seq, prev, prev_ts = _position(winner)
                else:
                    time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                    seq, prev, prev_ts = self._read_tail(entry.chain)
                continue
            self._remember(record)
            return record
        raise RetryableError(f"could not append to audit chain {entry.chain} after {_MAX_ATTEMPTS} attempts",
                             code="audit.contention")

    def transact_puts(self, entries: list[AuditEntry]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The sealed records of ``entries`` (each chained onto the one before it) and the
        ``TransactWriteItems`` actions that write them only while their ``seq`` is still free, for the
        caller to commit in the same transaction as the change they record: both happen or neither.
        A writer that appended to the chain in between cancels the transaction; read again and retry.
        Call :meth:`committed` with the records once the transaction succeeded."""
        tails: dict[str, Tail] = {}
        records, actions = [], []
        for entry in entries:
            seq, prev, prev_ts = tails.get(entry.chain) or self._read_tail(entry.chain)
            record = seal(entry, seq + 1, prev, self._now(), prev_ts)
            tails[entry.chain] = _position(record)
            records.append(record)
            actions.append({"Put": {"TableName": self._table, "Item": to_item(record),
                                    "ConditionExpression": "attribute_not_exists(pk)"}})
        return records, actions

    def committed(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self._remember(record)

    def first_record(self, entry: AuditEntry) -> tuple[dict[str, Any], dict[str, Any]]:
        """The first record of a chain that has none yet, as a ``TransactWriteItems`` Put that fails
        when the chain has a record (then append with :meth:`append`), and the record itself
        (:meth:`written` once the transaction succeeded)."""
        record = seal(entry, 1, GENESIS, self._now())
        return {"Put": {"TableName": self._table, "Item": to_item(record),
                        "ConditionExpression": "attribute_not_exists(pk)"}}, record

    def written(self, record: dict[str, Any]) -> None:
        self._remember(record)

    def _remember(self, record: dict[str, Any]) -> None:
        chain = str(record["pk"])
        with self._lock:
            self._tails[chain] = _position(record)
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
    def index_hits(self, ts: str, until: str | None = None) -> list[tuple[str, int, str]]:
        """``(chain, seq, ts_seq)`` of every ``by_time`` entry from ``ts`` on, in ``ts_seq`` order: every shard
        of every day up to ``until`` (else today), in parallel (partition ``day`` = a day's shard,
        :func:`powerx_agent.audit.shards.time_keys`; sort ``ts_seq`` = ``<ts>#<chain>#<seq>``).

        ``ts`` an ISO time: from the start of its minute. The index holds the first record of each chain in
        each minute (:func:`powerx_agent.audit.records.indexed`) and every record written before it was
        sparse. A record at or after ``ts`` is either indexed or follows, in its chain and its minute, an
        indexed one: so every chain with a record in the window has a hit here, at or below that record.
        ``ts`` a ``ts_seq`` (an entry's own key, as a resumed catch-up holds it): from that entry on, exactly."""
        exact = "#" in ts
        start = date.fromisoformat(ts[:10])
        end = date.fromisoformat(until[:10]) if until else datetime.now(UTC).date()
        queries: list[dict[str, Any]] = []
        day = start
        while day <= end:
            for shard in time_keys(day.isoformat()):
                query: dict[str, Any] = {"KeyConditionExpression": "#d = :d", "ProjectionExpression": "#p, #s, ts_seq",
                                         "ExpressionAttributeNames": {"#d": "day", "#p": "pk", "#s": "seq"},
                                         "ExpressionAttributeValues": values(d=shard)}
                if day == start:
                    query["KeyConditionExpression"] += " AND ts_seq >= :t"
                    query["ExpressionAttributeValues"] = values(d=shard, t=ts if exact else minute_of(ts))
                queries.append(query)
            day += timedelta(days=1)
        hits = fan_out(self._ddb, self._table, "by_time", queries)
        return sorted(((str(h["pk"]), int(h["seq"]), str(h["ts_seq"])) for h in hits), key=lambda h: h[2])

    def touched(self, ts: str, until: str | None = None) -> dict[str, int]:
        """The chains that may have a record at or after ``ts``, each with the lowest ``seq`` from which to read
        it (:meth:`index_hits`). A chain written in ``ts``'s minute only before ``ts`` is here too (a superset)."""
        first: dict[str, int] = {}
        for chain, seq, _ in self.index_hits(ts, until):
            first[chain] = min(seq, first.get(chain, seq))
        return first

    def records_of(self, starts: dict[str, int], ts: str, until: str | None = None, *,
                   consistent: bool = False) -> list[dict[str, Any]]:
        """The records of each chain of ``starts`` from its ``seq`` on with ``ts`` at or after ``ts`` (and at or
        before ``until``), one Query per chain, in parallel, in time order (``ts_seq``)."""
        condition, names = "#t >= :t", {"#p": "pk", "#s": "seq", "#t": "ts"}
        if until:
            condition += " AND #t <= :u"
        queries = [{"KeyConditionExpression": "#p = :p AND #s >= :s", "FilterExpression": condition,
                    "ExpressionAttributeNames": names, "ConsistentRead": consistent,
                    "ExpressionAttributeValues": values(p=chain, s=seq, t=ts, **({"u": until} if until else {}))}
                   for chain, seq in starts.items()]
        return sorted(fan_out(self._ddb, self._table, None, queries), key=lambda r: r["ts_seq"])

    def since(self, ts: str, until: str | None = None, *, consistent: bool = False) -> list[dict[str, Any]]:
        """Every record with ``ts`` at or after ``ts`` (and at or before ``until``), in time order (``ts_seq``).

        Costs the index queries of :meth:`index_hits` (one per shard per day) and then one Query per chain
        found (``pk`` = the chain, ``seq`` from its first index hit on, ``ts`` filtered), in parallel.
        The chain reads are eventually consistent unless ``consistent``: the index entry that named a
        chain may be newer than what an eventually consistent read of the chain returns, and a record
        that is not indexed is found only by that read (the audit stream's catch-up asks for it)."""
        return self.records_of(self.touched(ts, until), ts, until, consistent=consistent)


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
