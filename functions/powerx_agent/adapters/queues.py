"""SQS, the one place the engine sends to a queue (the match queue, the ingest DLQ)."""

from __future__ import annotations

from typing import Any


class Queues:
    """The engine's port to its SQS queues (``deps.queues``)."""

    def __init__(self, client: Any) -> None:
        self._sqs = client

    def send(self, queue_url: str, body: str, attributes: dict[str, str] | None = None) -> str:
        """SendMessage with string message attributes; returns the message id."""
        kwargs: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": body}
        if attributes:
            kwargs["MessageAttributes"] = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
        return str(self._sqs.send_message(**kwargs).get("MessageId", ""))

    def url(self, name: str) -> str | None:
        """The URL of the queue named ``name``, or None when it cannot be found (a probe: the commands
        that need the queue say so)."""
        try:
            return str(self._sqs.get_queue_url(QueueName=name)["QueueUrl"])
        except Exception:  # noqa: BLE001
            return None
