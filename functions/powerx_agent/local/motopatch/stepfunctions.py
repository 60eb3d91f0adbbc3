"""Patches 3, 4, 5 and 12 (see the package's docstring): moto's Step Functions executor with one boto3
client per service, a cached ASL syntax tree, a count of executions in flight, and a task token's
outcome taken when it came before the wait."""

from __future__ import annotations

import threading
from typing import Any


def patch_clients() -> None:
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


def patch_parse_cache() -> None:
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


def patch_early_outcome() -> None:
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


def patch_execution_count() -> None:
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
