"""Small helpers over the low-level DynamoDB client: (de)serialisation of plain Python values."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, overload

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from powerx_agent.errors import AgentError

_ser = TypeSerializer()
_de = TypeDeserializer()


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set):
        return sorted(_from_dynamo(v) for v in value)
    return value


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(_to_dynamo(v)) for k, v in data.items() if v is not None}


@overload
def from_item(item: dict[str, Any]) -> dict[str, Any]: ...
@overload
def from_item(item: None) -> None: ...
@overload
def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None: ...


def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """A DynamoDB item as plain Python values (None stays None)."""
    if item is None:
        return None
    return {k: _from_dynamo(_de.deserialize(v)) for k, v in item.items()}


def key(**parts: Any) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in parts.items()}


def values(**parts: Any) -> dict[str, Any]:
    return {f":{k}": _ser.serialize(_to_dynamo(v)) for k, v in parts.items()}


def pages(ddb: Any, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every page of a ``query`` or ``scan``, following ``LastEvaluatedKey``."""
    call = getattr(ddb, operation)
    while True:
        out = call(**kwargs)
        yield out
        if "LastEvaluatedKey" not in out:
            return
        kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def all_items(ddb: Any, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a ``query`` or ``scan`` over all pages, as plain Python values."""
    for page in pages(ddb, operation, **kwargs):
        for item in page.get("Items", []):
            yield from_item(item)


FAN_OUT_WORKERS = 16


def fan_out(ddb: Any, table: str, index: str | None, queries: list[dict[str, Any]],
            limit: int | None = None) -> list[dict[str, Any]]:
    """The items of many queries of one index (the shards of a sharded key), or of the table itself
    (``index`` None: several partitions), run in parallel; each query is followed over all its pages, or
    up to ``limit`` items. Unordered: the caller merges."""
    from concurrent.futures import ThreadPoolExecutor

    def run(query: dict[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        kwargs = {"TableName": table, **({"IndexName": index} if index else {}), **query}
        if limit is not None:
            kwargs["Limit"] = limit
        for page in pages(ddb, "query", **kwargs):
            found += [from_item(i) for i in page.get("Items", [])]
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found

    with ThreadPoolExecutor(max_workers=min(FAN_OUT_WORKERS, max(1, len(queries)))) as pool:
        return [item for items in pool.map(run, queries) for item in items]


BATCH_GET_KEYS = 100  # BatchGetItem's most keys per request
BATCH_GET_ATTEMPTS = 12


def batch_get(ddb: Any, table: str, keys: list[dict[str, Any]], consistent: bool = True,
              code: str = "dynamodb.unprocessed", attempts: int = BATCH_GET_ATTEMPTS) -> list[dict[str, Any]]:
    """The items of ``keys`` (DynamoDB-typed keys) by BatchGetItem, 100 keys a request, as plain Python
    values; absent items are left out, the order is DynamoDB's. Keys DynamoDB leaves unprocessed (throttling,
    the 16 MB response limit) are asked again with exponential backoff, at most ``attempts`` times per
    request; then AgentError(``code``)."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET_KEYS):
        request: dict[str, Any] = {table: {"Keys": keys[start:start + BATCH_GET_KEYS], "ConsistentRead": consistent}}
        for attempt in range(attempts):
            out = ddb.batch_get_item(RequestItems=request)
            found += [from_item(raw) for raw in out.get("Responses", {}).get(table, [])]
            request = out.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(1.0, 0.02 * 2 ** attempt))
        else:
            raise AgentError(f"DynamoDB kept keys of a batch read of {table} unprocessed", code=code)
    return found
