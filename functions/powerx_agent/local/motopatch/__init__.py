"""Every patch the embedded runtime applies to moto, in one package, with the reason for each.

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
    serialises moto's writes (one re-entrant lock per process). moto also applies an update's actions
    to the stored item one by one, so a read answered meanwhile saw half of it (a workflow FAILED
    without its ``failure_reason``); DynamoDB reads an item before or after a write. The read
    requests (``DynamoHandler.get_item``, ``batch_get_item``, ``query``, ``scan``,
    ``transact_get_items``), their answers built, hold the same lock.
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

One module per thing moto serves differently: ``lambdas`` (1), ``events`` (2), ``stepfunctions`` (3, 4,
5, 12), ``streams`` (6), ``dynamodb`` (7, 11, 13), ``server`` (8), ``jsonpath`` (9), ``sqs`` (10).
``apply`` installs them in the order it lists (13 before 11: the atomic-write lock wraps the rollback).
``invoke_in_process`` is not re-exported here: call (or wrap) ``lambdas.invoke_in_process``, the one
function every in-process invocation goes through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import moto

from powerx_agent.local.motopatch import (
    dynamodb,
    events,
    jsonpath,
    lambdas,
    server,
    sqs,
    stepfunctions,
    streams,
)
from powerx_agent.local.motopatch.lambdas import LambdaContext, add_invocation_listener, register_handler
from powerx_agent.local.motopatch.stepfunctions import (
    parse_cache_stats,
    reset_sfn_peak,
    sfn_running,
    sfn_running_stats,
)
from powerx_agent.local.motopatch.streams import stream_pending, stream_stats

__all__ = ["CHECKED_MOTO", "LambdaContext", "add_invocation_listener", "apply", "dynamodb", "events", "jsonpath",
           "lambdas", "parse_cache_stats", "register_handler", "reset_sfn_peak", "server", "sfn_running",
           "sfn_running_stats", "sqs", "stepfunctions", "stream_pending", "stream_stats", "streams"]

CHECKED_MOTO = ("5.2",)
_state = {"applied": False}
_lock = threading.Lock()


def apply(rule_lambda_target: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
    """Install the patches (idempotent). ``rule_lambda_target(target, event)`` delivers async."""
    if not moto.__version__.startswith(CHECKED_MOTO):
        raise RuntimeError(f"powerx_agent.local.motopatch was checked against moto {CHECKED_MOTO}, "
                           f"found {moto.__version__}: re-check the patches before upgrading")
    with _lock:
        events.set_rule_lambda_target(rule_lambda_target)
        if _state["applied"]:
            return
        lambdas.patch_invoke()  # 1
        events.patch_rule_targets()  # 2
        stepfunctions.patch_clients()  # 3
        stepfunctions.patch_parse_cache()  # 4
        stepfunctions.patch_execution_count()  # 5
        streams.patch_delivery()  # 6
        dynamodb.patch_partition_query()  # 7
        server.patch_backend_for_host()  # 8
        jsonpath.patch_parse_cache()  # 9
        sqs.patch_attributes()  # 10
        dynamodb.patch_transaction_rollback()  # 13
        dynamodb.patch_atomic_writes()  # 11
        dynamodb.patch_whole_item_reads()  # 11
        stepfunctions.patch_early_outcome()  # 12
        _state["applied"] = True
