"""What a run on the embedded runtime would consume on AWS, counted per request (``local load --heat``,
``powerx-agent cost``, ``bench/cost.py``).

The :class:`Meter` sits in front of the moto server's request dispatcher and beside the in-process
Lambda dispatch, for the duration of a ``with`` block:

- **requests** by service and operation (``X-Amz-Target``, or the REST path for Lambda), the way the
  issue's "AWS requests per event" are counted; requests made by the measuring harness itself
  (clients created with :func:`harness_client`: idle checks, samples, accounting) are left out;
- **DynamoDB capacity**: for every write, the item before and after is read from moto's backend and
  sized with DynamoDB's documented rules (`item sizes and formats
  <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html>`_):
  write request units (1 per KB, rounded up; a write whose condition fails still consumes them),
  index writes per global secondary index (an update that moves the index key is a delete and a put:
  two writes, `GSI writes <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html>`_),
  read request units (4 KB per unit, half for an eventually consistent read) and which reads were
  strongly consistent;
- **heat**: write units per (table, index, partition-key value) per second, with the workflows that
  wrote each key, so a key shared by every event (a hot key) can be told from a per-workflow key;
- **Lambda** invocations and wall time per function (in process, so the time is the embedded
  runtime's, not Lambda's), **log bytes** put (message + 26 bytes per event, CloudWatch's metering),
  **Step Functions** executions started.

Nothing here changes what the product does; it only observes. Pure measuring aid for the local runtime.
"""

from __future__ import annotations

import io
import json
import math
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

HARNESS_AGENT = "powerx-harness"
"""User-agent marker of the measuring harness's own clients (never counted)."""

WRITE_OPS = ("PutItem", "UpdateItem", "DeleteItem")
READ_OPS = ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems")
MAX_CONTRIBUTORS = 64  # per key: enough to tell one workflow's key from a key every event shares


# ---------------------------------------------------------------------------------- item sizes
def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    if "e" in digits.lower():  # exponent notation: count the mantissa only
        digits = digits.lower().split("e")[0]
    return (len(digits) + 1) // 2 + 1


def value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB JSON (``{"S": ...}``, ``{"M": ...}``), documented rules."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(str(inner).encode("utf-8", "surrogatepass"))
    if kind == "N":
        return _number_size(str(inner))
    if kind == "B":
        return len(inner) * 3 // 4 if isinstance(inner, str) else len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(v).encode("utf-8", "surrogatepass")) for v in inner)
    if kind == "NS":
        return sum(_number_size(str(v)) for v in inner)
    if kind == "BS":
        return sum(len(v) for v in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in inner.items())
    return 0


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


# ---------------------------------------------------------------------------------- the meter
@dataclass
class KeyHeat:
    table: str
    index: str  # "" for the table itself
    key: str
    units: int = 0
    writes: int = 0
    per_second: Counter[int] = field(default_factory=Counter)
    contributors: set[str] = field(default_factory=set)

    @property
    def peak(self) -> int:
        return max(self.per_second.values(), default=0)


@dataclass
class TableUse:
    write_requests: int = 0
    failed_conditions: int = 0
    wru: int = 0
    index_writes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    index_wru: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    read_requests: int = 0
    strongly_consistent: Counter[str] = field(default_factory=Counter)  # operation -> count
    rru: float = 0.0


class Meter:
    """Counts requests, DynamoDB capacity and heat, Lambda invocations and log bytes while active."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.tables: dict[str, TableUse] = defaultdict(TableUse)
        self.heat: dict[tuple[str, str, str], KeyHeat] = {}
        self.lambdas: dict[str, list[float]] = defaultdict(list)
        self.log_bytes = 0
        self.log_events = 0
        self.executions: Counter[str] = Counter()  # state machine ARN -> StartExecution calls
        self.started = 0.0
        self.stopped = 0.0
        self._lock = threading.Lock()
        self._originals: dict[str, Any] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> Meter:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        from powerx_agent.local.motopatch import lambdas as dispatch

        meter = self
        original_call = DomainDispatcherApplication.__call__
        original_invoke = dispatch.invoke_in_process
        self._originals = {"call": original_call, "invoke": original_invoke}

        def counted(app: Any, environ: dict[str, Any], start_response: Any) -> Any:
            return meter._observe(original_call, app, environ, start_response)

        def timed_invoke(function: Any, event: Any) -> Any:
            started = time.perf_counter()
            try:
                return original_invoke(function, event)
            finally:
                with meter._lock:
                    meter.lambdas[str(getattr(function, "function_name", "?"))].append(
                        (time.perf_counter() - started) * 1000)

        DomainDispatcherApplication.__call__ = counted
        dispatch.invoke_in_process = timed_invoke  # every in-process invocation goes through it
        self.started = time.time()
        return self

    def __exit__(self, *exc: object) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        from powerx_agent.local.motopatch import lambdas as dispatch

        DomainDispatcherApplication.__call__ = self._originals["call"]
        dispatch.invoke_in_process = self._originals["invoke"]
        self.stopped = time.time()

    # -- one request -------------------------------------------------------------------------
    def _observe(self, call: Any, app: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if HARNESS_AGENT in environ.get("HTTP_USER_AGENT", ""):
            return call(app, environ, start_response)
        auth = environ.get("HTTP_AUTHORIZATION", "")
        service = auth.split("/")[3] if auth.count("/") >= 3 else "?"
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.split(".")[-1] if target else _rest_operation(service, environ)
        with self._lock:
            self.requests[(service, operation)] += 1
        if service not in ("dynamodb", "logs", "states"):
            return call(app, environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            request = json.loads(body or b"{}", parse_float=Decimal)
        except ValueError:
            return call(app, environ, start_response)
        if service == "logs":
            if operation == "PutLogEvents":
                events = request.get("logEvents") or []
                with self._lock:
                    self.log_events += len(events)
                    self.log_bytes += sum(len(str(e.get("message", "")).encode()) + 26 for e in events)
            return call(app, environ, start_response)
        if service == "states":
            if operation == "StartExecution":
                with self._lock:
                    self.executions[str(request.get("stateMachineArn"))] += 1
            return call(app, environ, start_response)
        return self._dynamodb(call, app, environ, start_response, operation, request)

    def _dynamodb(self, call: Any, app: Any, environ: dict[str, Any], start_response: Any, operation: str,
                  request: dict[str, Any]) -> Any:
        writes = _writes_of(operation, request)
        before = [(w, _stored(w["table"], w["key"])) for w in writes]
        status: list[str] = []

        def capture(code: str, headers: Any, *rest: Any) -> Any:
            status.append(code)
            return start_response(code, headers, *rest)

        chunks = list(call(app, environ, capture))
        ok = bool(status) and status[0].startswith("200")
        body = b"".join(chunks)
        transactional = operation == "TransactWriteItems"
        for write, old in before:
            new = _stored(write["table"], write["key"]) if ok else None
            self._record_write(write, old, new if ok else None, ok, transactional, body)
        if operation in READ_OPS and ok:
            self._record_read(operation, request, body)
        return chunks

    def _record_write(self, write: dict[str, Any], old: dict[str, Any] | None, new: dict[str, Any] | None,
                      ok: bool, transactional: bool, response: bytes) -> None:
        table_name, schema = write["table"], _schema(write["table"])
        if schema is None:
            return
        attempted = write.get("item") or new or {}
        size = max(item_size(old), item_size(new if ok else attempted))
        units = write_units(size) * (2 if transactional else 1)
        now = int(time.time())
        owner = _owner(new or old or attempted)
        use = self.tables[table_name]
        with self._lock:
            use.write_requests += 1
            use.wru += units
            if not ok and b"ConditionalCheckFailed" in response:
                use.failed_conditions += 1
            base_key = _key_value(write["key"].get(schema["hash"]))
            self._heat(table_name, "", base_key, units, now, owner)
            if not ok:
                return
            for index, (hash_attr, projection) in schema["indexes"].items():
                old_key = _key_value((old or {}).get(hash_attr)) if old and _in_index(old, schema, index) else None
                new_key = _key_value((new or {}).get(hash_attr)) if new and _in_index(new, schema, index) else None
                if old_key is None and new_key is None:
                    continue
                if old and new and not _index_changed(old, new, schema, index, projection):
                    continue  # nothing the index holds changed: no index write
                projected = write_units(_projected_size(new or old or {}, schema, index, projection))
                keys = [k for k in (old_key, new_key) if k is not None]
                if old_key is not None and new_key is not None and not _sort_moved(old, new, schema, index) \
                        and old_key == new_key:
                    keys = [new_key]
                for key in keys:
                    use.index_writes[index] += 1
                    use.index_wru[index] += projected
                    self._heat(table_name, index, key, projected, now, owner)

    def _heat(self, table: str, index: str, key: str, units: int, now: int, owner: str | None) -> None:
        found = self.heat.get((table, index, key))
        if found is None:
            found = self.heat[(table, index, key)] = KeyHeat(table, index, key)
        found.units += units
        found.writes += 1
        found.per_second[now] += units
        if owner and len(found.contributors) < MAX_CONTRIBUTORS:
            found.contributors.add(owner)

    def _record_read(self, operation: str, request: dict[str, Any], response: bytes) -> None:
        try:
            out = json.loads(response or b"{}")
        except ValueError:
            return
        consistent = bool(request.get("ConsistentRead"))
        if operation == "GetItem":
            units = read_units(item_size(out.get("Item")), consistent)
        elif operation in ("Query", "Scan"):
            units = read_units(sum(item_size(i) for i in out.get("Items", [])), consistent)
        else:
            units = 0.0
        table = str(request.get("TableName") or "?")
        use = self.tables[table]
        with self._lock:
            use.read_requests += 1
            use.rru += units
            if consistent:
                use.strongly_consistent[operation] += 1

    # -- results ---------------------------------------------------------------------------
    def summary(self, events: int) -> dict[str, float]:
        """Requests per event by service, and the total (the side-by-side table's line)."""
        found = self.per_event(events)
        return {**found["requests_by_service"], "total": found["requests_total"]}

    def per_event(self, events: int) -> dict[str, Any]:
        """Everything counted, divided by ``events`` (the accepted events of the run)."""
        n = max(1, events)
        by_service: Counter[str] = Counter()
        for (service, _), count in self.requests.items():
            by_service[service] += count
        ddb_writes = sum(c for (s, op), c in self.requests.items()
                         if s == "dynamodb" and op in (*WRITE_OPS, "TransactWriteItems", "BatchWriteItem"))
        lambdas = {name: {"invocations": round(len(ms) / n, 3), "mean_ms": round(sum(ms) / len(ms), 1)}
                   for name, ms in sorted(self.lambdas.items()) if ms}
        return {
            "events": events,
            "requests": {f"{s}:{op}": round(c / n, 3) for (s, op), c in sorted(self.requests.items())},
            "requests_by_service": {s: round(c / n, 3) for s, c in by_service.most_common()},
            "requests_total": round(sum(by_service.values()) / n, 2),
            "dynamodb_write_requests": round(ddb_writes / n, 2),
            "dynamodb": {name: {"write_requests": round(u.write_requests / n, 3),
                                "failed_conditions": round(u.failed_conditions / n, 3),
                                "wru": round(u.wru / n, 3),
                                "index_writes": {k: round(v / n, 3) for k, v in sorted(u.index_writes.items())},
                                "index_wru": {k: round(v / n, 3) for k, v in sorted(u.index_wru.items())},
                                "read_requests": round(u.read_requests / n, 3), "rru": round(u.rru / n, 3),
                                "strongly_consistent": {k: round(v / n, 3)
                                                        for k, v in sorted(u.strongly_consistent.items())}}
                         for name, u in sorted(self.tables.items())},
            "index_writes": round(sum(sum(u.index_writes.values()) for u in self.tables.values()) / n, 2),
            "wru": round(sum(u.wru for u in self.tables.values()) / n, 2),
            "index_wru": round(sum(sum(u.index_wru.values()) for u in self.tables.values()) / n, 2),
            "rru": round(sum(u.rru for u in self.tables.values()) / n, 3),
            "strongly_consistent_reads": round(sum(sum(u.strongly_consistent.values())
                                                   for u in self.tables.values()) / n, 3),
            "lambda": lambdas,
            "lambda_invocations": round(sum(len(ms) for ms in self.lambdas.values()) / n, 2),
            "log_bytes": round(self.log_bytes / n, 1),
            "log_events": round(self.log_events / n, 2),
            "executions_started": round(sum(self.executions.values()) / n, 3),
        }


# ---------------------------------------------------------------------------------- heat report
def heat_report(meter: Meter, events: int, seconds: float, target_rate: float = 2000.0,
                shards: Any = None) -> list[dict[str, Any]]:
    """Every written key with its measured write units and what it would see at ``target_rate``
    events/s of one tenant: a key written by one workflow only keeps its own rate (its writes all
    within one second, at worst); a key shared by several workflows grows with the rate, as
    ``units per event × target_rate``. Keys of a sharded index (``shards(table, index, key)`` gives
    ``(family, shard_count)``) are reported per family: the family's units per event × target rate
    ÷ shard count, the expected load of each shard."""
    n = max(1, events)
    families: dict[tuple[str, str, str], dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for heat in meter.heat.values():
        shard = shards(heat.table, heat.index, heat.key) if shards else None
        if shard is not None:
            family, count = shard
            entry = families.setdefault((heat.table, heat.index, family),
                                        {"table": heat.table, "index": heat.index, "key": f"{family} (×{count} shards)",
                                         "units": 0, "writes": 0, "peak_measured": 0, "shards": count,
                                         "workflows": 0, "kind": "sharded"})
            entry["units"] += heat.units
            entry["writes"] += heat.writes
            entry["peak_measured"] = max(entry["peak_measured"], heat.peak)
            entry["workflows"] += len(heat.contributors)
            continue
        shared = len(heat.contributors) != 1
        at_target = heat.units / n * target_rate if shared else float(heat.units)
        rows.append({"table": heat.table, "index": heat.index, "key": heat.key, "units": heat.units,
                     "writes": heat.writes, "peak_measured": heat.peak, "workflows": len(heat.contributors),
                     "kind": "shared" if shared else "per workflow",
                     "per_event": round(heat.units / n, 3), "at_target": round(at_target, 1)})
    for entry in families.values():
        entry["per_event"] = round(entry["units"] / n, 3)
        entry["at_target"] = round(entry["units"] / n * target_rate / entry["shards"], 1)
        rows.append(entry)
    rows.sort(key=lambda r: -r["at_target"])
    return rows


# ---------------------------------------------------------------------------------- helpers
def harness_client(service: str, endpoint_url: str, region: str = "us-east-1") -> Any:
    """A client whose requests the :class:`Meter` leaves out (the harness's own idle checks and reads)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint_url,
                                          config=Config(user_agent_extra=HARNESS_AGENT))


def _rest_operation(service: str, environ: dict[str, Any]) -> str:
    path = environ.get("PATH_INFO", "")
    if service == "lambda":
        return "Invoke" if path.endswith("/invocations") else path.split("/")[2] if path.count("/") > 1 else path
    query = environ.get("QUERY_STRING", "")
    for part in query.split("&"):
        if part.startswith("Action="):
            return part[7:]
    return path[:40] or "?"


def _writes_of(operation: str, request: dict[str, Any]) -> list[dict[str, Any]]:
    """(table, key, item) of every item a write request touches."""
    out = []
    if operation == "PutItem":
        out.append({"table": request.get("TableName"), "item": request.get("Item") or {}})
    elif operation in ("UpdateItem", "DeleteItem"):
        out.append({"table": request.get("TableName"), "key": request.get("Key") or {}})
    elif operation == "TransactWriteItems":
        for entry in request.get("TransactItems") or []:
            for kind, op in entry.items():
                if kind == "ConditionCheck":
                    continue
                out.append({"table": op.get("TableName"), "item": op.get("Item"), "key": op.get("Key")})
    elif operation == "BatchWriteItem":
        for table, entries in (request.get("RequestItems") or {}).items():
            for entry in entries:
                if "PutRequest" in entry:
                    out.append({"table": table, "item": entry["PutRequest"].get("Item") or {}})
                elif "DeleteRequest" in entry:
                    out.append({"table": table, "key": entry["DeleteRequest"].get("Key") or {}})
    for write in out:
        schema = _schema(write["table"])
        if write.get("key") is None and schema is not None:
            item = write.get("item") or {}
            write["key"] = {k: item[k] for k in (schema["hash"], schema["range"]) if k and k in item}
        write["key"] = write.get("key") or {}
    return [w for w in out if w["table"]]


def _backend_table(name: str) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    try:
        return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(name)
    except Exception:  # noqa: BLE001 - a table that does not exist: nothing to measure
        return None


_schemas: dict[str, dict[str, Any] | None] = {}


def _schema(name: str) -> dict[str, Any] | None:
    if name not in _schemas:
        table = _backend_table(name)
        if table is None:
            return None
        indexes = {}
        for index in table.global_indexes or []:
            hash_attr = next(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")
            range_attr = next((k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"), None)
            indexes[index.name] = (hash_attr, {**(index.projection or {}), "range": range_attr})
        _schemas[name] = {"hash": table.hash_key_attr, "range": table.range_key_attr, "indexes": indexes}
    return _schemas[name]


def forget_schemas() -> None:
    """Tables are re-created when the embedded runtime restarts."""
    _schemas.clear()


def _stored(table_name: str, key: dict[str, Any]) -> dict[str, Any] | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    table = _backend_table(table_name)
    schema = _schema(table_name)
    if table is None or schema is None or schema["hash"] not in key:
        return None
    try:
        item = table.get_item(DynamoType(key[schema["hash"]]),
                              DynamoType(key[schema["range"]]) if schema["range"] and schema["range"] in key else None)
    except Exception:  # noqa: BLE001
        return None
    return item.to_json()["Attributes"] if item is not None else None


def _key_value(value: dict[str, Any] | None) -> str | None:
    if not value:
        return None
    (_, inner), = value.items()
    return str(inner)


def _in_index(item: dict[str, Any], schema: dict[str, Any], index: str) -> bool:
    hash_attr, projection = schema["indexes"][index]
    return hash_attr in item and (projection.get("range") is None or projection["range"] in item)


def _sort_moved(old: dict[str, Any] | None, new: dict[str, Any] | None, schema: dict[str, Any], index: str) -> bool:
    range_attr = schema["indexes"][index][1].get("range")
    return bool(range_attr) and (old or {}).get(range_attr) != (new or {}).get(range_attr)


def _projected_names(item: dict[str, Any], schema: dict[str, Any], index: str, projection: dict[str, Any]) -> list[str]:
    kind = projection.get("ProjectionType", "ALL")
    if kind == "ALL":
        return list(item)
    keys = [schema["hash"], schema["range"], schema["indexes"][index][0], projection.get("range")]
    if kind == "INCLUDE":
        keys += list(projection.get("NonKeyAttributes") or [])
    return [k for k in keys if k and k in item]


def _projected_size(item: dict[str, Any], schema: dict[str, Any], index: str, projection: dict[str, Any]) -> int:
    return item_size({k: item[k] for k in _projected_names(item, schema, index, projection)})


def _index_changed(old: dict[str, Any], new: dict[str, Any], schema: dict[str, Any], index: str,
                   projection: dict[str, Any]) -> bool:
    names = set(_projected_names(old, schema, index, projection)) | set(_projected_names(new, schema, index, projection))
    return any(old.get(n) != new.get(n) for n in names)


def _owner(item: dict[str, Any]) -> str | None:
    """The workflow (or event) a write belongs to: what tells a per-workflow key from a shared one."""
    for name in ("workflow_id", "pk"):
        value = _key_value(item.get(name))
        if value:
            return value
    return None
