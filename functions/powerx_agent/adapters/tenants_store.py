"""Tenant registry (``agent_tenants``): cached reads for the functions (a tenant change is seen within
``_CACHE_SECONDS``), consistent reads and guarded transactional writes for ``powerx-agent tenants``."""

from __future__ import annotations

import threading
import time
from typing import Any

from powerx_agent.adapters.aws import error_code
from powerx_agent.adapters.dynamo import all_items, from_item, key, to_item, values
from powerx_agent.errors import AgentError

_CACHE_SECONDS = 30.0


class TransactionRefused(AgentError):
    """DynamoDB cancelled a transaction: nothing of it was written. ``conflict``: an item was not what
    was read (a concurrent change); the caller may read again and retry."""

    code = "tenants.transaction_refused"

    def __init__(self, message: str, *, conflict: bool) -> None:
        super().__init__(message, code="tenants.conflict" if conflict else None)
        self.conflict = conflict


class TenantsStore:
    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self._table = table
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()

    def get(self, tenant_id: str) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(tenant_id)
        if hit and now - hit[0] < _CACHE_SECONDS:
            return hit[1]
        out = self._ddb.get_item(TableName=self._table, Key=key(tenant_id=tenant_id))
        tenant = from_item(out.get("Item"))
        with self._lock:
            self._cache[tenant_id] = (now, tenant)
        return tenant

    def put(self, tenant: dict[str, Any]) -> None:
        self._ddb.put_item(TableName=self._table, Item=to_item(tenant))
        with self._lock:
            self._cache.pop(tenant["tenant_id"], None)

    # -- the operator's side: consistent reads, writes guarded by the revision that was read ------

    def scan(self) -> list[dict[str, Any]]:
        return list(all_items(self._ddb, "scan", TableName=self._table, ConsistentRead=True))

    def read(self, tenant_id: str) -> dict[str, Any] | None:
        out = self._ddb.get_item(TableName=self._table, Key=key(tenant_id=tenant_id), ConsistentRead=True)
        return from_item(out.get("Item"))

    def _guard(self, stored: dict[str, Any] | None) -> dict[str, Any]:
        """The condition that the item is still what was read (absent, or at the revision read)."""
        if stored is None:
            return {"ConditionExpression": "attribute_not_exists(tenant_id)"}
        if "revision" not in stored:  # written before items carried a revision (or by hand)
            return {"ConditionExpression": "attribute_exists(tenant_id) AND attribute_not_exists(revision)"}
        return {"ConditionExpression": "revision = :read", "ExpressionAttributeValues": values(read=stored["revision"])}

    def put_action(self, item: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
        """A ``TransactWriteItems`` Put of ``item`` that only succeeds if the stored item is still ``stored``."""
        return {"Put": {"TableName": self._table, "Item": to_item(item), **self._guard(stored)}}

    def delete_action(self, stored: dict[str, Any]) -> dict[str, Any]:
        return {"Delete": {"TableName": self._table, "Key": key(tenant_id=stored["tenant_id"]), **self._guard(stored)}}

    def transact(self, actions: list[dict[str, Any]], tenant_ids: list[str]) -> None:
        """All actions or none (``TransactWriteItems``, at most 100 actions); a cancelled transaction
        is a :class:`TransactionRefused`."""
        try:
            self._ddb.transact_write_items(TransactItems=actions)
        except Exception as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in getattr(exc, "response", {}).get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                raise TransactionRefused("a tenant or the audit chain changed since it was read: run the "
                                         "command again", conflict=True) from exc
            named = ", ".join(r for r in reasons if r and r != "None") or "no reason given"
            raise TransactionRefused(f"transaction cancelled: {named}", conflict=False) from exc
        with self._lock:
            for tenant_id in tenant_ids:
                self._cache.pop(tenant_id, None)
