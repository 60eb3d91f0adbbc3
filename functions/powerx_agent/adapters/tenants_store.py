"""Tenant registry (``agent_tenants``), cached per process for a short time."""

from __future__ import annotations

import threading
import time
from typing import Any

from powerx_agent.adapters.dynamo import from_item, key, to_item

_CACHE_SECONDS = 30.0


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
