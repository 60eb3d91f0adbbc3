"""Patches 7, 11 and 13 (see the package's docstring): a table query reads its partition, a conditional
write is atomic (and a read sees a whole write), and a transaction rolls back the items it names
instead of copying whole tables."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any


# -- 7. a table query reads its partition, not the whole table -----------------------------------
def patch_partition_query() -> None:
    import inspect

    from moto.dynamodb.models.table import Table

    original_query = Table.query
    signature = inspect.signature(original_query)

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = signature.bind(self, hash_key, *args, **kwargs).arguments.get("index_name")
        if index_name or hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)
        view = copy.copy(self)  # shallow: shares every attribute but ``items``
        partition = self.items.get(hash_key)
        view.items = {hash_key: partition} if partition else {}
        return original_query(view, hash_key, *args, **kwargs)

    Table.query = query


# -- 11. a conditional write is atomic, and a read sees a whole write, as in DynamoDB -------------
_item_lock = threading.RLock()


def _hold_item_lock(cls: Any, names: tuple[str, ...]) -> None:
    """Each of ``cls``'s methods ``names`` runs under the one item lock (re-entrant: a request may nest)."""
    def held(method: Callable[..., Any]) -> Callable[..., Any]:
        def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _item_lock:
                return method(self, *args, **kwargs)

        return locked

    for name in names:
        setattr(cls, name, held(getattr(cls, name)))


def patch_atomic_writes() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    _hold_item_lock(DynamoDBBackend, ("put_item", "update_item", "delete_item", "transact_write_items"))


def patch_whole_item_reads() -> None:
    """moto applies an update's actions to the stored item one by one, and builds a read's answer from
    the stored items after its lookup: a read in another thread could see half an update (status
    FAILED without the failure_reason set beside it). DynamoDB reads an item before or after a write,
    never in between. Each read request, its answer built, runs under the writes' lock (under the GIL,
    serialising these CPU-only sections costs next to nothing)."""
    from moto.dynamodb.responses import DynamoHandler

    _hold_item_lock(DynamoHandler, ("get_item", "batch_get_item", "query", "scan", "transact_get_items"))


# -- 13. transactions roll back the items they name, not a copy of whole tables --------------------
def patch_transaction_rollback() -> None:
    from moto.dynamodb import models as ddb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    real_copy = ddb_models.copy

    class _TablesByReference:
        """moto's ``copy`` module in ``moto.dynamodb.models``, except that a Table deep-copies as itself."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real_copy, name)

        @staticmethod
        def deepcopy(obj: Any, memo: Any = None) -> Any:
            return obj if isinstance(obj, Table) else real_copy.deepcopy(obj, memo)

    def snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any]]:
        saved = []
        for entry in transact_items:
            op = next(iter(entry.values()), None) if isinstance(entry, dict) else None
            table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            attrs = (op.get("Item") if "Item" in op else op.get("Key")) if table is not None else None
            if not attrs or table.hash_key_attr not in attrs:
                continue  # moto rejects the transaction before writing anything
            hash_key = DynamoType(attrs[table.hash_key_attr])
            range_key = (DynamoType(attrs[table.range_key_attr])
                         if table.range_key_attr and table.range_key_attr in attrs else None)
            if table.range_key_attr and range_key is None:
                continue
            current = table.items.get(hash_key, {}).get(range_key) if range_key is not None \
                else table.items.get(hash_key)
            saved.append((table, hash_key, range_key, real_copy.deepcopy(current)))
        return saved

    def restore(saved: list[tuple[Any, Any, Any, Any]]) -> None:
        for table, hash_key, range_key, item in reversed(saved):
            if range_key is not None:
                partition = table.items[hash_key]
                if item is None:
                    partition.pop(range_key, None)
                else:
                    partition[range_key] = item
            elif item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = snapshot(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            restore(saved)
            raise

    ddb_models.copy = _TablesByReference()
    DynamoDBBackend.transact_write_items = transact_write_items
