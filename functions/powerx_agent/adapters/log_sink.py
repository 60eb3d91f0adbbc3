"""Writing to a CloudWatch Logs group: one stream per day and process, batched PutLogEvents."""

from __future__ import annotations

from typing import Any

from powerx_agent.adapters.aws import error_code


class LogStreamSink:
    """A CloudWatch Logs group written by one process: one log stream per day (``<day>/<suffix>``),
    created on first use, events put in batches. Used for the audit log group (audit stream Lambda)
    and, on the embedded runtime, for EMF metrics (``adapters.metrics.LogShipper``)."""

    MAX_BATCH = 500  # well under PutLogEvents' 10,000 events / 1 MiB per call

    def __init__(self, logs: Any, group: str, stream_suffix: str) -> None:
        self._logs = logs
        self._group = group
        self._suffix = stream_suffix
        self._created: set[str] = set()

    def put(self, log_events: list[dict[str, Any]], day: str) -> int:
        if not log_events:
            return 0
        stream = f"{day}/{self._suffix}"
        if stream not in self._created:
            try:
                self._logs.create_log_stream(logGroupName=self._group, logStreamName=stream)
            except Exception as exc:  # noqa: BLE001
                if error_code(exc) != "ResourceAlreadyExistsException":
                    raise
            self._created.add(stream)
        for start in range(0, len(log_events), self.MAX_BATCH):
            self._logs.put_log_events(logGroupName=self._group, logStreamName=stream,
                                      logEvents=log_events[start:start + self.MAX_BATCH])
        return len(log_events)
