"""Patch 6 (see the package's docstring): DynamoDB stream records reach their mapped functions in
batches, from a background poller, retried and bisected, with the on-failure destination AWS uses."""

from __future__ import annotations

import json
import random
import threading
import time
import traceback
import uuid
from typing import Any

from powerx_agent.local.motopatch import lambdas

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
                _, errored, _ = lambdas.invoke_in_process(function, {"Records": records})
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


def patch_delivery() -> None:
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
