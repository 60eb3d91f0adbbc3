"""Published strategy versions, approvals and the active pointers in ``agent_strategies``.

Items: ``STRATEGY#<id> / V#<version>`` (the YAML text, author, approval), ``STRATEGY#<id> / ACTIVE``
(the active version and the history of previous ones, for rollback) and ``LIBRARY / REVISION``
(a counter plus the map of active versions: the one item the matcher polls).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from powerx_agent.adapters.aws import error_code
from powerx_agent.adapters.dynamo import all_items, from_item, key, to_item, values
from powerx_agent.errors import AgentError


class StrategiesStore:
    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self._table = table

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        out = self._ddb.get_item(TableName=self._table, Key=key(pk=pk, sk=sk), ConsistentRead=True)
        return from_item(out.get("Item"))

    def publish(self, strategy_id: str, version: int, text: str, author: str) -> dict[str, Any]:
        digest = hashlib.sha256(text.encode()).hexdigest()
        existing = self._get(f"STRATEGY#{strategy_id}", f"V#{version:06d}")
        if existing is not None:
            if existing["sha256"] == digest:
                return existing
            raise AgentError(f"{strategy_id} v{version} is already published with different content; "
                             "increase the version", code="strategy.version_exists")
        item = {"pk": f"STRATEGY#{strategy_id}", "sk": f"V#{version:06d}", "strategy_id": strategy_id,
                "version": version, "yaml": text, "sha256": digest, "author": author,
                "published_at": round(time.time(), 3), "approval": "PENDING"}
        self._ddb.put_item(TableName=self._table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)")
        return item

    def version(self, strategy_id: str, version: int) -> dict[str, Any] | None:
        return self._get(f"STRATEGY#{strategy_id}", f"V#{version:06d}")

    def versions(self, strategy_id: str) -> list[dict[str, Any]]:
        """Every published version, over every page of the query."""
        return list(all_items(self._ddb, "query", TableName=self._table,
                              KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
                              ExpressionAttributeValues=values(pk=f"STRATEGY#{strategy_id}", v="V#")))

    def active(self, strategy_id: str) -> dict[str, Any] | None:
        return self._get(f"STRATEGY#{strategy_id}", "ACTIVE")

    def revision(self) -> dict[str, Any]:
        return self._get("LIBRARY", "REVISION") or {"revision": 0, "active": {}}

    def approve(self, strategy_id: str, version: int, approver: str, reason: str,
                require_other_approver: bool = False) -> dict[str, Any]:
        item = self.version(strategy_id, version)
        if item is None:
            raise AgentError(f"{strategy_id} v{version} is not published", code="strategy.not_found")
        if require_other_approver and item["author"] == approver:
            raise AgentError(f"{approver} published {strategy_id} v{version} and cannot also approve it",
                             code="strategy.self_approval")
        self._ddb.update_item(
            TableName=self._table, Key=key(pk=f"STRATEGY#{strategy_id}", sk=f"V#{version:06d}"),
            UpdateExpression="SET approval = :a, approved_by = :b, approved_at = :t, approval_reason = :r",
            ExpressionAttributeValues=values(a="APPROVED", b=approver, t=round(time.time(), 3), r=reason))
        return self._activate(strategy_id, version, approver, push_history=True)

    def rollback(self, strategy_id: str, actor: str, to_version: int | None = None) -> dict[str, Any]:
        active = self.active(strategy_id)
        if active is None:
            raise AgentError(f"{strategy_id} has no active version to roll back", code="strategy.not_active")
        history = [v for v in active.get("history", []) if v != active["version"]]
        target = to_version if to_version is not None else (history[-1] if history else None)
        if target is None:
            raise AgentError(f"{strategy_id} has no previous approved version", code="strategy.no_previous")
        item = self.version(strategy_id, target)
        if item is None or item.get("approval") != "APPROVED":
            raise AgentError(f"{strategy_id} v{target} is not an approved version", code="strategy.not_approved")
        return self._activate(strategy_id, target, actor, push_history=False)

    def _activate(self, strategy_id: str, version: int, actor: str, push_history: bool) -> dict[str, Any]:
        previous = self.active(strategy_id)
        history = list(previous.get("history", [])) if previous else []
        if push_history and version not in history:
            history.append(version)
        if not push_history:
            history = [v for v in history if v <= version] or [version]
        self._ddb.put_item(TableName=self._table, Item=to_item({
            "pk": f"STRATEGY#{strategy_id}", "sk": "ACTIVE", "strategy_id": strategy_id, "version": version,
            "history": history, "updated_by": actor, "updated_at": round(time.time(), 3)}))
        for _ in range(20):  # bump the library revision with optimistic concurrency
            current = self.revision()
            active = dict(current.get("active", {}))
            active[strategy_id] = version
            new = {"pk": "LIBRARY", "sk": "REVISION", "revision": int(current["revision"]) + 1, "active": active}
            try:
                if current["revision"] == 0 and "pk" not in current:
                    self._ddb.put_item(TableName=self._table, Item=to_item(new),
                                       ConditionExpression="attribute_not_exists(pk)")
                else:
                    self._ddb.put_item(TableName=self._table, Item=to_item(new),
                                       ConditionExpression="revision = :r",
                                       ExpressionAttributeValues=values(r=current["revision"]))
                return {"strategy_id": strategy_id, "version": version,
                        "previous": previous["version"] if previous else None, "revision": new["revision"]}
            except Exception as exc:  # noqa: BLE001
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
        raise AgentError("could not update the library revision (too much contention)", code="strategy.contention")

    def documents(self, active: dict[str, int]) -> list[tuple[str, str]]:
        docs = []
        for strategy_id, version in sorted(active.items()):
            item = self.version(strategy_id, int(version))
            if item is None:
                raise AgentError(f"active version {strategy_id} v{version} is missing", code="strategy.missing_version")
            docs.append((f"{strategy_id}@v{version}", item["yaml"]))
        return docs

    # feature flags for the embedded runtime (AppConfig holds them on AWS)
    def flags(self) -> dict[str, Any] | None:
        item = self._get("FLAGS", "CURRENT")
        return item.get("flags") if item else None

    def put_flags(self, flags: dict[str, Any]) -> None:
        self._ddb.put_item(TableName=self._table, Item=to_item({"pk": "FLAGS", "sk": "CURRENT", "flags": flags}))
