"""Every patch the embedded runtime applies to moto, in one place, with the reason for each.

Checked against moto 5.2.5 (the version pinned by ``pyproject.toml``: ``moto[server]>=5.2.5,<5.3``).
``apply`` refuses to run on another minor version, so an upgrade is a conscious decision.

1. ``LambdaFunction._invoke_lambda``: moto runs Lambda code in Docker, which this runtime does not
   have. The patch dispatches every invocation (direct Invoke, Step Functions tasks, DynamoDB
   stream mappings) to our real handler, named by the function's handler path in
   ``powerx_agent.spec``, in this process. Errors are returned the way Lambda reports them
   (``{"errorType", "errorMessage"}`` with a function error) so ASL ``Retry``/``Catch`` match on the
   error name. ``LambdaFunction.invoke`` too: moto decodes an Invoke payload before
   ``_invoke_lambda``, which then took a payload that is a JSON string for JSON text (a 500); the
   patch hands ``_invoke_lambda`` the payload's JSON text, decoded once, so the handler gets the
   value, as on Lambda.
2. ``Rule.send_to_targets``: moto raises ``NotImplementedError`` for Lambda rule targets. The patch
   hands Lambda targets to an asynchronous invoker with the target's retry policy and dead-letter
   queue (what EventBridge does), and lets moto deliver every other target type itself.
3. ``boto_client_for`` (Step Functions executor): moto builds a new boto3 client for every Lambda
   task (~5 ms CPU each, plus a new connection) and points it at ``localhost``. The patch caches
   one client per region and service and uses 127.0.0.1. Measured in
   docs/architecture.md ("Local runtime vs. deployed stack").
4. ``AmazonStateLanguageParser.parse`` (Step Functions executor): moto re-parses the definition
   with ANTLR for every execution (~2.1 of ~2.8 ms CPU per parse). The patch keeps the ANTLR
   *syntax tree* per definition text (bounded LRU) and still runs moto's ``Preprocessor`` on every
   call, so each execution gets its own, fresh evaluation components: no evaluation state is
   shared between executions (the risk of memoizing the whole program, for Map and Parallel).
   Tests: ``tests/integration/test_motopatch_sfn.py`` runs Parallel and Map machines concurrently.
5. ``ExecutionWorker.start`` / ``_execution_logic``: moto starts threads for every execution
   without any limit and appends each to a module list (``TMP_THREADS``) that is never trimmed.
   The patch keeps a cheap count of executions running in this process (``sfn_running()``, an
   integer, not a ``ListExecutions`` scan) that the runtime's SQS poller uses to stop taking work
   while the count is at its cap, and drops finished threads from ``TMP_THREADS`` so long runs
   keep memory bounded.
6. ``StreamShard.add`` (DynamoDB Streams → Lambda): moto invokes the mapped function synchronously
   inside every write request, with one record per invocation, and the record's Lambda errors are
   lost. AWS polls the shard (about four times a second) and delivers up to ``BatchSize`` records
   per invocation, in order, retrying a failed batch (``MaximumRetryAttempts``, splitting it when
   ``BisectBatchOnFunctionError``). The patch queues the records of tables with a mapping and a
   background poller delivers them that way; ``stream_pending()`` tells the runtime's ``wait_idle``
   what is still to be delivered. Tables without a mapping keep moto's behaviour (``GetRecords``).
   A batch given up on goes, as on AWS, to the mapping's on-failure destination (an SQS queue) as
   the documented invocation record with ``DDBStreamBatchInfo`` (``_stream_failure_record``).
7. ``Table.query`` (DynamoDB): a query on the table's own key builds and sorts a list of *every*
   item of the table before keeping the partition asked for, so each query costs O(table size)
   (the audit chain's tail read grew with every record written). The patch runs moto's own query
   code over a shallow view of the table holding only that partition: same results, same
   pagination, O(partition). Index queries and scans are untouched.
8. ``DomainDispatcherApplication.get_backend_for_host`` (server): moto lists its package directory
   (``os.listdir`` + ``isdir`` per entry) and tries ~150 URL patterns on every request; the answer
   depends on the host alone, so the patch caches it per host.
9. ``jsonpath_ng.ext.parse`` as moto's EventBridge (input paths, for every target of every event)
    and Step Functions (every ``.$`` path of every state) call it: each call builds a new PLY parser
    (~0.2 ms, yacc tables included). The patch answers moto's repeated paths from a bounded cache
    (other callers go straight through); parsed paths are immutable (``find`` does not change them),
    so sharing them between threads is safe.
10. ``Queue.attributes`` (SQS): every read builds all attributes, including the three approximate
    message counts, each a scan of every message in the queue. ``GetQueueAttributes`` reads it up to
    three times per attribute name asked, and ``SendMessage`` reads it to look up one FIFO setting,
    so with a backlog of thousands each call cost tens of ms (90% of all CPU in an overload run).
    The patch builds the attributes once per ``GetQueueAttributes`` call, and without the counts
    (which sending never reads) inside ``SendMessage``/``SendMessageBatch``. Same answers.
11. ``DynamoDBBackend.put_item`` / ``update_item`` / ``delete_item`` / ``transact_write_items``: moto
    evaluates a ``ConditionExpression`` and then writes, with nothing in between held, and its server
    answers requests on many threads. Two conditional writes of one item can then both pass their
    condition (two appends at one audit sequence number: one record silently replaces the other; two
    takeovers of one expired lease). DynamoDB applies each conditional write atomically. The patch
    serialises moto's writes (one re-entrant lock per process); reads are not held.
12. ``StateTaskServiceCallback._wait_for_task_token_heartbeat`` (Step Functions executor): on AWS a
    task token is valid from the moment the execution enters the task state ("Task tokens are
    generated ... in the context object when a workflow enters a task state", SendTaskHeartbeat API
    reference), so ``SendTaskSuccess`` sent *while* the ``.waitForTaskToken`` Lambda still runs
    completes the task. moto records such an early outcome but, when the state has
    ``HeartbeatSeconds``, only looks at it after the next heartbeat: the task waits until the
    heartbeat times out and fails. The patch returns an outcome that is already there before waiting.
    Test: ``tests/integration/test_callback_contract.py`` (a callback plugin answering 200 at once).
13. ``DynamoDBBackend.transact_write_items``: to be able to roll back, moto deep-copies *every table*
    a transaction touches before running it, so one TransactWriteItems costs O(table size) (``strategy
    publish`` writes each new version with the first record of its audit chain in one transaction:
    publishing 10,000 strategies copied the growing audit table 200 times). The patch snapshots only
    the items the transaction names, lets moto run it with the tables "copied" by reference, and on any
    failure puts those items back as they were: the same all-or-nothing outcome, O(items).
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import random
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import moto

from powerx_agent import spec

CHECKED_MOTO = ("5.2",)
_HANDLERS_BY_NAME = {f.name: f.handler for f in spec.FUNCTIONS}
_state: dict[str, Any] = {"applied": False, "rule_lambda_target": None}
_lock = threading.Lock()


class LambdaContext:
    """The attributes of the Lambda context object our handlers and Powertools use."""

    def __init__(self, function: Any) -> None:
        self.function_name = function.function_name
        self.function_version = str(getattr(function, "version", None) or "$LATEST")
        self.invoked_function_arn = function.function_arn
        self.memory_limit_in_mb = int(function.memory_size or 128)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + float(function.timeout or 3)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def register_handler(function_name: str, handler_path: str) -> None:
    """Route one more (non-product) function name to an in-process handler: used by the bare-moto
    reference pipeline of ``powerx_agent.loadtest.bare``, whose functions are not part of the spec."""
    _HANDLERS_BY_NAME[function_name] = handler_path


def resolve_handler(function_name: str) -> Callable[[Any, Any], Any]:
    path = _HANDLERS_BY_NAME.get(function_name)
    if path is None:
        raise LookupError(f"no in-process handler for Lambda function {function_name!r}")
    module_name, attr = path.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), attr)


InvocationListener = Callable[[str, LambdaContext, dict[str, Any]], None]
_listeners: list[InvocationListener] = []


def add_invocation_listener(listener: InvocationListener) -> Callable[[], None]:
    """``listener(phase, context, info)`` is called with phase "start" before each in-process invocation
    and "end" after it (info: duration_ms, errored, error, logs); returns the function that removes it
    (``local serve --logs`` prints Lambda's START / END / REPORT lines from it)."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


def _tell(phase: str, context: LambdaContext, info: dict[str, Any]) -> None:
    for listener in list(_listeners):
        try:
            listener(phase, context, info)
        except Exception:  # noqa: BLE001 - a listener never changes an invocation's outcome
            pass


def invoke_in_process(function: Any, event: Any) -> tuple[str, bool, str]:
    """Run our handler for a moto ``LambdaFunction``: (result JSON, errored, logs). ``event`` is JSON
    text (an Invoke payload, moto's own deliveries) or an already decoded event."""
    if isinstance(event, str | bytes):
        event = json.loads(event or "{}")
    context = LambdaContext(function)
    started = time.monotonic()
    _tell("start", context, {})
    try:
        handler = resolve_handler(function.function_name)
        result = handler(event, context)
        outcome = json.dumps(result, default=str), False, ""
        _tell("end", context, {"duration_ms": (time.monotonic() - started) * 1000, "errored": False})
        return outcome
    except Exception as exc:  # noqa: BLE001 - reported to the caller exactly as Lambda would
        error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        logs = traceback.format_exc(limit=5)
        _tell("end", context, {"duration_ms": (time.monotonic() - started) * 1000, "errored": True,
                               "error": error, "logs": logs})
        return json.dumps(error), True, logs


def apply(rule_lambda_target: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
    """Install the patches (idempotent). ``rule_lambda_target(target, event)`` delivers async."""
    if not moto.__version__.startswith(CHECKED_MOTO):
        raise RuntimeError(f"powerx_agent.local.motopatch was checked against moto {CHECKED_MOTO}, "
                           f"found {moto.__version__}: re-check the patches before upgrading")
    with _lock:
        _state["rule_lambda_target"] = rule_lambda_target
        if _state["applied"]:
            return
        _patch_lambda()
        _patch_rule_targets()
        _patch_sfn_clients()
        _patch_sfn_parse_cache()
        _patch_sfn_execution_count()
        _patch_stream_delivery()
        _patch_partition_query()
        _patch_backend_for_host()
        _patch_jsonpath_parse_cache()
        _patch_sqs_attributes()
        _patch_transaction_rollback()
        _patch_atomic_writes()
        _patch_sfn_early_outcome()
        _state["applied"] = True


def _patch_lambda() -> None:
    from moto.awslambda.models import LambdaFunction

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        return invoke_in_process(self, event)

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        # moto decodes the Invoke payload before _invoke_lambda, which then took a payload that is a
        # JSON string ("x") for JSON text and failed with a 500; Lambda hands the handler the value
        res, errored, logs = self._invoke_lambda(event=body or "{}")  # the JSON text, decoded once
        if errored:
            response_headers["x-amz-function-error"] = "Handled"
        if request_headers.get("x-amz-invocation-type", "RequestResponse") == "RequestResponse":
            response_headers["x-amz-log-result"] = base64.b64encode(logs.encode("utf-8")).decode("utf-8")
            return res.encode("utf-8")
        return res

    LambdaFunction._invoke_lambda = _invoke_lambda
    LambdaFunction.invoke = invoke


def _patch_rule_targets() -> None:
    from moto.events.models import Rule

    original = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        lambda_targets = [t for t in self.targets if ":lambda:" in t["Arn"]]
        others = [t for t in self.targets if ":lambda:" not in t["Arn"]]
        if lambda_targets and self.event_pattern.matches_event(original_event):
            event = dict(original_event)
            if isinstance(event.get("time"), int | float):
                event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["time"]))
            event.pop("ingestion-time", None)
            for target in lambda_targets:
                _state["rule_lambda_target"](target, event)
        if others:
            clone = copy.copy(self)
            clone.targets = others
            original(clone, original_event, transform_input)

    Rule.send_to_targets = send_to_targets


def _patch_sfn_clients() -> None:
    import boto3
    from botocore.config import Config
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import boto_client

    clients: dict[tuple[str, str, str], Any] = {}
    client_lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, str(moto_server_port()))
        with client_lock:
            found = clients.get(key)
            if found is None:
                found = boto3.session.Session().client(
                    service, region_name=region, endpoint_url=f"http://127.0.0.1:{moto_server_port()}",
                    aws_access_key_id="ak", aws_secret_access_key="sk",
                    config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1},
                                  connect_timeout=60, read_timeout=900, max_pool_connections=64))
                clients[key] = found
            return found

    boto_client.boto_client_for = boto_client_for
    lambda_eval_utils.boto_client_for = boto_client_for


# -- 4. ASL syntax tree cache ---------------------------------------------------------------
_PARSE_CACHE_SIZE = 256
_parse_stats = {"hits": 0, "misses": 0}


def parse_cache_stats() -> dict[str, int]:
    return dict(_parse_stats)


def _patch_sfn_parse_cache() -> None:
    from collections import OrderedDict

    from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
    from moto.stepfunctions.parser.asl.parse import asl_parser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    trees: OrderedDict[str, Any] = OrderedDict()
    tree_lock = threading.Lock()

    def parse(definition: str) -> tuple[Any, Any]:
        with tree_lock:
            tree = trees.get(definition)
            if tree is not None:
                trees.move_to_end(definition)
                _parse_stats["hits"] += 1
        if tree is None:
            listener = asl_parser.SyntaxErrorListener()
            parser = ASLParser(asl_parser.CommonTokenStream(ASLLexer(asl_parser.InputStream(definition))))
            parser.removeErrorListeners()
            parser.addErrorListener(listener)
            tree = parser.state_machine()
            if listener.errors:
                raise asl_parser.ASLParserException(errors=listener.errors)  # never cached
            with tree_lock:
                _parse_stats["misses"] += 1
                trees[definition] = tree
                while len(trees) > _PARSE_CACHE_SIZE:
                    trees.popitem(last=False)
        # a fresh program (evaluation components) for every execution: only the tree is shared
        return Preprocessor().visit(tree), tree

    asl_parser.AmazonStateLanguageParser.parse = staticmethod(parse)


# -- 5. executions in flight --------------------------------------------------------------------
_running = {"now": 0, "peak": 0, "finished": 0}
_running_lock = threading.Lock()


def sfn_running() -> int:
    """Executions started by moto's executor in this process and not finished yet."""
    return _running["now"]


def sfn_running_stats() -> dict[str, int]:
    with _running_lock:
        return dict(_running)


def reset_sfn_peak() -> None:
    with _running_lock:
        _running["peak"] = _running["now"]


def _patch_sfn_early_outcome() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_task,
    )

    cls = callback_task.StateTaskServiceCallback
    original = cls._wait_for_task_token_heartbeat

    def _wait_for_task_token_heartbeat(self: Any, env: Any, callback_endpoint: Any, heartbeat_endpoint: Any) -> Any:
        early = callback_endpoint.get_outcome()  # SendTaskSuccess/Failure sent before the wait began
        if early is not None:
            return early
        return original(self, env, callback_endpoint, heartbeat_endpoint)

    cls._wait_for_task_token_heartbeat = _wait_for_task_token_heartbeat


def _patch_sfn_execution_count() -> None:
    from moto.stepfunctions.parser import utils as sfn_utils
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original_start = ExecutionWorker.start
    original_logic = ExecutionWorker._execution_logic

    def start(self: Any) -> None:
        with _running_lock:
            _running["now"] += 1
            _running["peak"] = max(_running["peak"], _running["now"])
        self._powerx_counted = True
        try:
            original_start(self)
        except BaseException:
            _finished(self)
            raise

    def _execution_logic(self: Any) -> None:
        try:
            original_logic(self)
        finally:
            _finished(self)

    def _finished(worker: Any) -> None:
        if not getattr(worker, "_powerx_counted", False):
            return  # synchronous executions (StartSyncExecution) were never counted
        worker._powerx_counted = False
        with _running_lock:
            _running["now"] -= 1
            _running["finished"] += 1
            trim = _running["finished"] % 200 == 0
        if trim:  # moto never removes finished threads from this list
            sfn_utils.TMP_THREADS[:] = [t for t in sfn_utils.TMP_THREADS if t.is_alive()]

    ExecutionWorker.start = start
    ExecutionWorker._execution_logic = _execution_logic


# -- 6. DynamoDB Streams delivered in batches, in the background ------------------------------
_STREAM_POLL_SECONDS = 0.25  # Lambda polls a DynamoDB stream shard about four times a second
_STREAM_RETRY_CAP_SECONDS = 2.0


class StreamDelivery:
    """Delivers stream records to their mapped functions the way Lambda's shard poller does: per
    (mapping, table) in order, up to ``BatchSize`` per invocation, a failed batch retried with
    backoff and full jitter (bisected when the mapping says so) until ``MaximumRetryAttempts``; a
    batch that still fails is counted in ``stats["dropped"]`` and, when the mapping has an on-failure
    destination, its metadata is sent there as AWS does (the records themselves stay in the table)."""

    def __init__(self) -> None:
        self._queues: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._mappings: dict[tuple[str, str], Any] = {}
        self._cond = threading.Condition()
        self._delivering = 0
        self._thread: threading.Thread | None = None
        self.stats = {"records": 0, "invocations": 0, "errors": 0, "dropped": 0}

    def add(self, function_arn: str, esm: Any, region: str, record: dict[str, Any]) -> None:
        key = (function_arn, esm.event_source_arn)
        with self._cond:
            self._queues.setdefault(key, []).append({**record, "awsRegion": region,
                                                     "eventSourceARN": esm.event_source_arn})
            self._mappings[key] = esm
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="dynamodb-stream-poller", daemon=True)
                self._thread.start()

    def pending(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._queues.values()) + self._delivering

    def _run(self) -> None:
        while True:
            time.sleep(_STREAM_POLL_SECONDS)
            with self._cond:
                work = [(key, self._mappings[key], queue[:]) for key, queue in self._queues.items() if queue]
                for key, _, taken in work:
                    del self._queues[key][:len(taken)]
                self._delivering += sum(len(taken) for _, _, taken in work)
            for (function_arn, _), esm, records in work:
                size = max(1, int(esm.batch_size or 100))
                for start in range(0, len(records), size):
                    batch = records[start:start + size]
                    try:
                        self._deliver(function_arn, esm, batch)
                    except Exception:  # noqa: BLE001 - e.g. the function was deleted: count, keep polling
                        self.stats["dropped"] += len(batch)
                        traceback.print_exc()
                    finally:
                        with self._cond:
                            self._delivering -= len(batch)

    def _deliver(self, function_arn: str, esm: Any, batch: list[dict[str, Any]]) -> None:
        from moto.awslambda.utils import get_backend

        retries = esm.max_retry_attempts
        retries = 10_000 if retries in (None, -1) else int(retries)
        function = get_backend(function_arn.split(":")[4], function_arn.split(":")[3]).get_function(function_arn)
        pending = [batch]
        while pending:
            records = pending.pop(0)
            for attempt in range(retries + 1):
                _, errored, _ = invoke_in_process(function, {"Records": records})
                self.stats["invocations"] += 1
                if not errored:
                    self.stats["records"] += len(records)
                    break
                self.stats["errors"] += 1
                if esm.bisect_on_error and len(records) > 1:
                    half = len(records) // 2
                    pending[:0] = [records[:half], records[half:]]
                    break
                time.sleep(random.uniform(0, min(_STREAM_RETRY_CAP_SECONDS, 0.1 * 2 ** attempt)))
            else:
                self.stats["dropped"] += len(records)
                _send_on_failure(esm, _stream_failure_record(function_arn, str(function.version), esm, records,
                                                             retries + 1))


def _stream_failure_record(function_arn: str, version: str, esm: Any, records: list[dict[str, Any]],
                           attempts: int) -> dict[str, Any]:
    """What Lambda sends to a stream mapping's on-failure destination (the shape of the example in
    https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html): metadata only."""
    def arrival(record: dict[str, Any]) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(
            record.get("dynamodb", {}).get("ApproximateCreationDateTime") or time.time())))

    return {
        "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": function_arn,
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts},
        "responseContext": {"statusCode": 200, "executedVersion": version, "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "DDBStreamBatchInfo": {
            "shardId": "shardId-00000000000000000000-local",
            "startSequenceNumber": str(records[0].get("dynamodb", {}).get("SequenceNumber")),
            "endSequenceNumber": str(records[-1].get("dynamodb", {}).get("SequenceNumber")),
            "approximateArrivalOfFirstRecord": arrival(records[0]),
            "approximateArrivalOfLastRecord": arrival(records[-1]),
            "batchSize": len(records),
            "streamArn": esm.event_source_arn,
        },
    }


def _send_on_failure(esm: Any, record: dict[str, Any]) -> None:
    destination = ((getattr(esm, "destination_config", None) or {}).get("OnFailure") or {}).get("Destination")
    if not destination or ":sqs:" not in destination:
        return
    from moto.sqs.models import sqs_backends

    _, _, _, region, account, queue_name = destination.split(":", 5)
    sqs_backends[account][region].send_message(queue_name, json.dumps(record))


_streams = StreamDelivery()


def stream_pending() -> int:
    """Stream records written and not yet delivered to (or still being handled by) their function."""
    return _streams.pending()


def stream_stats() -> dict[str, int]:
    return dict(_streams.stats)


def _patch_stream_delivery() -> None:
    from datetime import datetime

    from moto.core.utils import unix_time
    from moto.dynamodb.models.table import StreamRecord, StreamShard

    original_add = StreamShard.add

    def add(self: Any, old: Any, new: Any) -> None:
        mappings = list(self.table.lambda_event_source_mappings.items())
        if not mappings:
            original_add(self, old, new)
            return
        event_name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
        self.sequence = getattr(self, "sequence", self.starting_sequence_number) + 1
        record = StreamRecord(self.table, self.table.stream_specification["StreamViewType"], event_name, old, new,
                              self.sequence).to_json()
        dynamodb = dict(record["dynamodb"])
        if isinstance(dynamodb.get("ApproximateCreationDateTime"), datetime):
            dynamodb["ApproximateCreationDateTime"] = unix_time(dynamodb["ApproximateCreationDateTime"])
        record = {**record, "dynamodb": dynamodb}
        for function_arn, esm in mappings:
            if getattr(esm, "enabled", True):
                _streams.add(function_arn, esm, function_arn.split(":")[3], record)

    StreamShard.add = add


# -- 7. a table query reads its partition, not the whole table -----------------------------------
def _patch_partition_query() -> None:
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


# -- 8. the backend for a host, resolved once ------------------------------------------------------
def _patch_backend_for_host() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    resolved: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in resolved:
            if len(resolved) > 4096:
                resolved.clear()
            resolved[host] = original(self, host)
        return resolved[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host


# -- 9. JSONPath expressions parsed once ----------------------------------------------------------
def _patch_jsonpath_parse_cache() -> None:
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.utils import json_path as sfn_json_path

    original = jsonpath_ng.ext.parse
    parsed: dict[str, Any] = {}

    def parse(path: str, *args: Any, **kwargs: Any) -> Any:
        # only moto's calls are cached: our own code parses its paths once itself (strategy/paths.py)
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if args or kwargs or not isinstance(path, str) or not caller.startswith("moto."):
            return original(path, *args, **kwargs)
        found = parsed.get(path)
        if found is None:
            found = original(path)
            if len(parsed) >= 4096:
                parsed.clear()
            parsed[path] = found
        return found

    jsonpath_ng.ext.parse = parse  # moto.events.utils imports it at every call
    sfn_json_path.parse = parse  # imported once by the Step Functions executor


# -- 10. SQS attributes built once per call, message counts only when asked ----------------------
def _patch_sqs_attributes() -> None:
    from moto.core.utils import camelcase_to_underscores
    from moto.sqs.models import Queue, SQSBackend

    counts = {"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed",
              "ApproximateNumberOfMessagesNotVisible"}
    original = Queue.attributes.fget
    local = threading.local()

    def without_counts(queue: Any) -> dict[str, Any]:  # moto's Queue.attributes, minus the counts
        result: dict[str, Any] = {name: getattr(queue, camelcase_to_underscores(name))
                                  for name in queue.BASE_ATTRIBUTES if name not in counts}
        if queue.fifo_queue:
            result.update({n: getattr(queue, camelcase_to_underscores(n)) for n in queue.FIFO_ATTRIBUTES})
        if queue.kms_master_key_id:
            result.update({n: getattr(queue, camelcase_to_underscores(n)) for n in queue.KMS_ATTRIBUTES})
        if queue.policy:
            result["Policy"] = queue.policy
        if queue.redrive_policy:
            result["RedrivePolicy"] = json.dumps(queue.redrive_policy)
        return {k: str(v).lower() if isinstance(v, bool) else v for k, v in result.items()}

    def attributes(self: Any) -> dict[str, Any]:
        mode = getattr(local, "mode", None)
        if mode is None:
            return original(self)
        found = local.memo.get(id(self))
        if found is None:
            found = local.memo[id(self)] = without_counts(self) if mode == "no-counts" else original(self)
        return dict(found)

    def within(mode: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(local, "mode", None) is not None:
                return method(self, *args, **kwargs)
            local.mode, local.memo = mode, {}
            try:
                return method(self, *args, **kwargs)
            finally:
                local.mode, local.memo = None, None
        return wrapper

    Queue.attributes = property(attributes)
    SQSBackend.get_queue_attributes = within("once", SQSBackend.get_queue_attributes)
    SQSBackend.send_message = within("no-counts", SQSBackend.send_message)
    SQSBackend.send_message_batch = within("no-counts", SQSBackend.send_message_batch)


# -- 11. a conditional write is atomic, as in DynamoDB ------------------------------------------
_write_lock = threading.RLock()


def _patch_atomic_writes() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    def held(method: Callable[..., Any]) -> Callable[..., Any]:
        def write(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _write_lock:
                return method(self, *args, **kwargs)

        return write

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        setattr(DynamoDBBackend, name, held(getattr(DynamoDBBackend, name)))


# -- 13. transactions roll back the items they name, not a copy of whole tables --------------------
def _patch_transaction_rollback() -> None:
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
