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


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


APPROVAL_FIELDS = ("approval", "approved_by", "approved_at", "approval_reason")


class StrategiesStore:
    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self._table = table

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        out = self._ddb.get_item(TableName=self._table, Key=key(pk=pk, sk=sk), ConsistentRead=True)
        return from_item(out.get("Item"))

    def publish(self, strategy_id: str, version: int, text: str, author: str) -> dict[str, Any]:
        digest = sha256_of(text)
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

    def unpublish(self, strategy_id: str, version: int) -> None:
        """Remove a draft nobody approved yet (undoing a publish); an approved version is never removed."""
        try:
            self._ddb.delete_item(TableName=self._table, Key=key(pk=f"STRATEGY#{strategy_id}", sk=f"V#{version:06d}"),
                                  ConditionExpression="approval = :p", ExpressionAttributeValues=values(p="PENDING"))
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            raise AgentError(f"{strategy_id} v{version} is no longer a draft; not removed",
                             code="strategy.not_a_draft") from None

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
        """Mark the version APPROVED and make it active, in one transaction (all or nothing)."""
        item = self.version(strategy_id, version)
        if item is None:
            raise AgentError(f"{strategy_id} v{version} is not published", code="strategy.not_found")
        if require_other_approver and item["author"] == approver:
            raise AgentError(f"{approver} published {strategy_id} v{version} and cannot also approve it",
                             code="strategy.self_approval")
        approval = {"approval": "APPROVED", "approved_by": approver, "approved_at": round(time.time(), 3),
                    "approval_reason": reason}
        return self._activate(strategy_id, version, approver, push_history=True, approval=approval)

    def rollback(self, strategy_id: str, actor: str, to_version: int | None = None) -> dict[str, Any]:
        target = self.rollback_target(strategy_id, to_version)
        return self._activate(strategy_id, target, actor, push_history=False)

    def rollback_target(self, strategy_id: str, to_version: int | None = None) -> int:
        """The version a rollback moves to (checked: an approved version), without changing anything."""
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
        return int(target)

    def snapshot(self, strategy_id: str, version: int | None = None) -> dict[str, Any]:
        """What an approve or rollback changes, as it is now (for :meth:`restore`)."""
        item = self.version(strategy_id, version) if version is not None else None
        return {"strategy_id": strategy_id, "active": self.active(strategy_id),
                "approval": {k: item.get(k) for k in APPROVAL_FIELDS} if item else None, "version": version}

    def restore(self, strategy_id: str, snapshot: dict[str, Any], expected_version: int) -> dict[str, Any]:
        """Put back what :meth:`snapshot` saw, in one transaction, unless someone moved the strategy
        on since (its active version is no longer ``expected_version``): then refuse, change nothing."""
        for _ in range(20):
            current = self.revision()
            active_now = self.active(strategy_id)
            if active_now is None or int(active_now["version"]) != expected_version:
                raise AgentError(f"{strategy_id} moved on meanwhile (active: "
                                 f"{active_now and active_now.get('version')}); not restored",
                                 code="strategy.moved_on")
            before = snapshot.get("active")
            active_map = dict(current.get("active", {}))
            if before:
                active_map[strategy_id] = int(before["version"])
            else:
                active_map.pop(strategy_id, None)
            ops: list[dict[str, Any]] = []
            pk = f"STRATEGY#{strategy_id}"
            if snapshot.get("approval") is not None and snapshot.get("version") is not None:
                restored = {k: v for k, v in snapshot["approval"].items() if v is not None}
                removed = [k for k in APPROVAL_FIELDS if k not in restored]
                names = {f"#a{i}": k for i, k in enumerate(APPROVAL_FIELDS)}
                update = "SET " + ", ".join(f"#a{APPROVAL_FIELDS.index(k)} = :a{APPROVAL_FIELDS.index(k)}"
                                            for k in restored)
                if removed:
                    update += " REMOVE " + ", ".join(f"#a{APPROVAL_FIELDS.index(k)}" for k in removed)
                ops.append({"Update": {
                    "TableName": self._table, "Key": key(pk=pk, sk=f"V#{int(snapshot['version']):06d}"),
                    "UpdateExpression": update, "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values(**{f"a{APPROVAL_FIELDS.index(k)}": v
                                                           for k, v in restored.items()}),
                    "ConditionExpression": "attribute_exists(pk)"}})
            if before:
                ops.append({"Put": {"TableName": self._table, "Item": to_item(before),
                                    "ConditionExpression": "#v = :v", "ExpressionAttributeNames": {"#v": "version"},
                                    "ExpressionAttributeValues": values(v=expected_version)}})
            else:
                ops.append({"Delete": {"TableName": self._table, "Key": key(pk=pk, sk="ACTIVE"),
                                       "ConditionExpression": "#v = :v", "ExpressionAttributeNames": {"#v": "version"},
                                       "ExpressionAttributeValues": values(v=expected_version)}})
            new = {"pk": "LIBRARY", "sk": "REVISION", "revision": int(current["revision"]) + 1, "active": active_map}
            ops.append(self._revision_put(current, new))
            if self._transact(ops):
                return {"strategy_id": strategy_id, "version": active_map.get(strategy_id),
                        "revision": new["revision"]}
        raise AgentError("could not update the library revision (too much contention)", code="strategy.contention")

    def _revision_put(self, current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        if current["revision"] == 0 and "pk" not in current:
            return {"Put": {"TableName": self._table, "Item": to_item(new),
                            "ConditionExpression": "attribute_not_exists(pk)"}}
        return {"Put": {"TableName": self._table, "Item": to_item(new), "ConditionExpression": "revision = :r",
                        "ExpressionAttributeValues": values(r=current["revision"])}}

    def _transact(self, ops: list[dict[str, Any]]) -> bool:
        """TransactWriteItems; False when a condition failed (someone changed an item meanwhile)."""
        try:
            self._ddb.transact_write_items(TransactItems=ops)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) not in ("TransactionCanceledException", "ConditionalCheckFailedException"):
                raise
            return False
        return True

    def _activate(self, strategy_id: str, version: int, actor: str, push_history: bool,
                  approval: dict[str, Any] | None = None) -> dict[str, Any]:
        """Approval (when given), the ACTIVE pointer and the library revision in one transaction,
        retried with fresh reads when a concurrent change wins (optimistic concurrency)."""
        pk = f"STRATEGY#{strategy_id}"
        for _ in range(20):
            previous = self.active(strategy_id)
            current = self.revision()
            history = list(previous.get("history", [])) if previous else []
            if push_history and version not in history:
                history.append(version)
            if not push_history:
                history = [v for v in history if v <= version] or [version]
            ops: list[dict[str, Any]] = []
            if approval:
                ops.append({"Update": {
                    "TableName": self._table, "Key": key(pk=pk, sk=f"V#{version:06d}"),
                    "UpdateExpression": "SET approval = :a, approved_by = :b, approved_at = :t, approval_reason = :r",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeValues": values(a=approval["approval"], b=approval["approved_by"],
                                                        t=approval["approved_at"], r=approval["approval_reason"])}})
            active_item = {"pk": pk, "sk": "ACTIVE", "strategy_id": strategy_id, "version": version,
                           "history": history, "updated_by": actor, "updated_at": round(time.time(), 3)}
            if previous and previous.get("updated_at") is not None:
                ops.append({"Put": {"TableName": self._table, "Item": to_item(active_item),
                                    "ConditionExpression": "updated_at = :u",
                                    "ExpressionAttributeValues": values(u=previous["updated_at"])}})
            elif previous:
                ops.append({"Put": {"TableName": self._table, "Item": to_item(active_item),
                                    "ConditionExpression": "#v = :v", "ExpressionAttributeNames": {"#v": "version"},
                                    "ExpressionAttributeValues": values(v=previous["version"])}})
            else:
                ops.append({"Put": {"TableName": self._table, "Item": to_item(active_item),
                                    "ConditionExpression": "attribute_not_exists(pk)"}})
            active = dict(current.get("active", {}))
            active[strategy_id] = version
            new = {"pk": "LIBRARY", "sk": "REVISION", "revision": int(current["revision"]) + 1, "active": active}
            ops.append(self._revision_put(current, new))
            if self._transact(ops):
                return {"strategy_id": strategy_id, "version": version,
                        "previous": previous["version"] if previous else None, "revision": new["revision"]}
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
