"""Append-only audit store over ``agent_audit`` with conditional puts (DESIGN.md §5)."""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from typing import Any

from powerx_agent.adapters.aws import error_code
from powerx_agent.adapters.dynamo import from_item, key, to_item, values
from powerx_agent.audit.records import GENESIS, AuditEntry, seal
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
        """Write the next record of ``entry.chain``; concurrent writers retry on the condition."""
        seq, prev = self._tail(entry.chain)
        for attempt in range(_MAX_ATTEMPTS):
            record = seal(entry, seq + 1, prev)
            try:
                self._ddb.put_item(
                    TableName=self._table,
                    Item=to_item(record),
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except Exception as exc:  # noqa: BLE001 - only the condition failure is handled here
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                seq, prev = self._read_tail(entry.chain)
                continue
            self._remember(entry.chain, record["seq"], record["hash"])
            return record
        raise RetryableError(f"could not append to audit chain {entry.chain} after {_MAX_ATTEMPTS} attempts",
                             code="audit.contention")

    def _remember(self, chain: str, seq: int, digest: str) -> None:
        with self._lock:
            self._tails[chain] = (seq, digest)
            self._tails.move_to_end(chain)
            while len(self._tails) > 4096:
                self._tails.popitem(last=False)

    def chain(self, chain: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": values(pk=chain),
            "ConsistentRead": True,
        }
        while True:
            out = self._ddb.query(**kwargs)
            items += [from_item(i) for i in out.get("Items", [])]
            if "LastEvaluatedKey" not in out:
                return items
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def scan_all(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self._table}
        while True:
            out = self._ddb.scan(**kwargs)
            items += [from_item(i) for i in out.get("Items", [])]
            if "LastEvaluatedKey" not in out:
                return items
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def delete(self, chain: str, seq: int) -> None:
        """Only for tests and repair drills: remove one record (verify must then fail)."""
        self._ddb.delete_item(TableName=self._table, Key=key(pk=chain, seq=seq))
