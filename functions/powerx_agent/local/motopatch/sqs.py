"""Patch 10 (see the package's docstring): SQS queue attributes are built once per call, and the
message counts only when asked."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any


def patch_attributes() -> None:
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
