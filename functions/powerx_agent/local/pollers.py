"""Lambda's SQS poller, done the way the Lambda service does it, for the embedded runtime.

Receives batches, invokes the function synchronously through the Lambda API, deletes the records
that succeeded and leaves the ones reported in ``batchItemFailures`` (or the whole batch on a
function error) to come back after the visibility timeout; the queue's redrive policy moves a
record to its DLQ after ``maxReceiveCount`` receives.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Self


class _Background(ABC):
    """A daemon thread running ``_loop`` until :meth:`stop`."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    @abstractmethod
    def _loop(self) -> None:
        """The thread's body: runs until ``self._stop`` is set."""


class SqsPoller(_Background):
    def __init__(self, client: Callable[[str], Any], queue_url: str, function_name: str, batch_size: int = 10) -> None:
        super().__init__(f"sqs-poller-{function_name}")
        self._client = client
        self._queue_url = queue_url
        self._function = function_name
        self._batch_size = batch_size
        self.busy = False
        self.invocations = 0

    def _loop(self) -> None:
        sqs = self._client("sqs")
        lam = self._client("lambda")
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=self._batch_size,
                                               WaitTimeSeconds=0, AttributeNames=["All"],
                                               MessageAttributeNames=["All"]).get("Messages", [])
            except Exception:  # noqa: BLE001 - the server is going away during shutdown
                if self._stop.is_set():
                    return
                raise
            if not messages:
                self._stop.wait(0.05)
                continue
            self.busy = True
            try:
                self._process(sqs, lam, queue_arn, messages)
            finally:
                self.busy = False

    def _process(self, sqs: Any, lam: Any, queue_arn: str, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
            "md5OfBody": m.get("MD5OfBody"), "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
            "awsRegion": queue_arn.split(":")[3]} for m in messages]}
        self.invocations += 1
        out = lam.invoke(FunctionName=self._function, Payload=json.dumps(event).encode())
        payload = json.loads(out["Payload"].read() or b"null")
        if out.get("FunctionError"):
            return  # whole batch comes back after the visibility timeout
        failed = {f["itemIdentifier"] for f in (payload or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])


class Scheduler(_Background):
    """EventBridge's schedule rules for the embedded runtime: moto stores a ``rate(...)`` rule but never
    fires it. Once per period, on the period's boundary (``rate(1 minute)``: every whole minute), calls
    ``fire(schedule, at)``; the runtime invokes the rule's target with the event EventBridge sends."""

    def __init__(self, fire: Callable[[Any, float], Any], schedules: tuple[Any, ...]) -> None:
        super().__init__("eventbridge-scheduler")
        self._fire = fire
        self._schedules = schedules
        self.fired = 0

    def _loop(self) -> None:
        import time

        due = {s.name: (time.time() // s.every_seconds + 1) * s.every_seconds for s in self._schedules}
        while not self._stop.is_set():
            now = time.time()
            for schedule in self._schedules:
                if now >= due[schedule.name]:
                    at, due[schedule.name] = due[schedule.name], due[schedule.name] + schedule.every_seconds
                    try:
                        self._fire(schedule, at)
                        self.fired += 1
                    except Exception as exc:  # noqa: BLE001 - like EventBridge: a failed run does not stop the schedule
                        print(json.dumps({"level": "WARNING", "message": "scheduled invocation failed",
                                          "schedule": schedule.name, "error": str(exc)[:500]}))
            self._stop.wait(max(0.05, min(due.values()) - time.time()))
