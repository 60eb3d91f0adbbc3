"""Every patch the embedded runtime applies to moto, in one place, with the reason for each.

Checked against moto 5.2.5 (the version pinned by ``pyproject.toml``: ``moto[server]>=5.2.5,<5.3``).
``apply`` refuses to run on another minor version, so an upgrade is a conscious decision.

1. ``LambdaFunction._invoke_lambda``: moto runs Lambda code in Docker, which this runtime does not
   have. The patch dispatches every invocation (direct Invoke, Step Functions tasks, DynamoDB
   stream mappings) to our real handler, named by the function's handler path in
   ``powerx_agent.spec``, in this process. Errors are returned the way Lambda reports them
   (``{"errorType", "errorMessage"}`` with a function error) so ASL ``Retry``/``Catch`` match on the
   error name.
2. ``Rule.send_to_targets``: moto raises ``NotImplementedError`` for Lambda rule targets. The patch
   hands Lambda targets to an asynchronous invoker with the target's retry policy and dead-letter
   queue (what EventBridge does), and lets moto deliver every other target type itself.
3. ``boto_client_for`` (Step Functions executor): moto builds a new boto3 client for every Lambda
   task (~5 ms CPU each, plus a new connection) and points it at ``localhost``. The patch caches
   one client per region and service and uses 127.0.0.1. Measured in
   ``../shared/notes/moto-embedded-runtime.md``.
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
"""

from __future__ import annotations

import copy
import importlib
import json
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
        self.function_version = "$LATEST"
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
    reference pipeline of ``powerx_agent.local.load``, whose functions are not part of the spec."""
    _HANDLERS_BY_NAME[function_name] = handler_path


def resolve_handler(function_name: str) -> Callable[[Any, Any], Any]:
    path = _HANDLERS_BY_NAME.get(function_name)
    if path is None:
        raise LookupError(f"no in-process handler for Lambda function {function_name!r}")
    module_name, attr = path.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), attr)


def invoke_in_process(function: Any, event: Any) -> tuple[str, bool, str]:
    """Run our handler for a moto ``LambdaFunction``: (result JSON, errored, logs)."""
    if isinstance(event, str | bytes):
        event = json.loads(event or "{}")
    try:
        handler = resolve_handler(function.function_name)
        result = handler(event, LambdaContext(function))
        return json.dumps(result, default=str), False, ""
    except Exception as exc:  # noqa: BLE001 - reported to the caller exactly as Lambda would
        error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        return json.dumps(error), True, traceback.format_exc(limit=5)


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
        _state["applied"] = True


def _patch_lambda() -> None:
    from moto.awslambda.models import LambdaFunction

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        return invoke_in_process(self, event)

    LambdaFunction._invoke_lambda = _invoke_lambda


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
