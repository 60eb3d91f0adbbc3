"""Metrics in CloudWatch Embedded Metric Format through Powertools (namespace ``PowerX/Agent``).

Each metric is recorded with its own dimension set (tenant, strategy) and flushed at the end of an
invocation. The sink is stdout on Lambda (CloudWatch turns EMF log lines into metrics) and a
CloudWatch Logs group on the embedded runtime, so tests and ``powerx-agent metrics`` read the very
same EMF documents. On the embedded runtime the documents are shipped the way the Lambda platform
ships a function's stdout: off the invocation's path, batched, into one log stream per process
(``LogShipper``); readers in the same process (``read_emf_totals``) ship what is pending first.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from powerx_agent import spec, telemetry
from powerx_agent.adapters.log_sink import LogStreamSink

SERVICE = "powerx-agent"
_UNITS = {"Count": MetricUnit.Count, "None": MetricUnit.NoUnit, "Milliseconds": MetricUnit.Milliseconds}


class MetricsRecorder:
    def __init__(self, sink: str = "stdout", logs: Any = None, log_group: str = "", *,
                 background: bool = True) -> None:
        self._sink = sink
        self._background = background
        self._logs = logs
        self._log_group = log_group
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, name: str, value: float = 1, unit: str = "Count", *, at: float | None = None,
            **dimensions: str | None) -> None:
        """One raw value; ``at`` (epoch seconds) dates it (EMF ``Timestamp``), default now."""
        provider = AmazonCloudWatchEMFProvider(namespace=spec.NAMESPACE, service=SERVICE)
        if at is not None:
            provider.set_timestamp(int(at * 1000))
        for dim, dim_value in dimensions.items():
            if dim_value:
                provider.add_dimension(dim, str(dim_value))
        provider.add_metric(name, _UNITS[unit], value)
        document = provider.serialize_metric_set()
        # also publish under [service] alone, so alarms and the dashboard can read the totals
        for directive in document["_aws"]["CloudWatchMetrics"]:
            if ["service"] not in directive["Dimensions"]:
                directive["Dimensions"].append(["service"])
        with self._lock:
            self._pending.append(dict(document))

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        if self._sink == "logs" and self._logs is not None:
            shipper = LogShipper.for_group(self._logs, self._log_group, background=self._background)
            shipper.put([json.dumps(doc) for doc in pending])
        else:
            for doc in pending:
                sys.stdout.write(json.dumps(doc) + "\n")
            sys.stdout.flush()


class LogShipper:
    """Ships log lines off the invocation's path, like the Lambda platform does with a function's
    stdout: every ``INTERVAL`` seconds, ``MAX_BATCH`` lines at a time, through a ``LogStreamSink``
    (one stream per day, process and group). ``flush_all()`` ships what is pending now. Without
    ``background`` (in-memory fakes) every ``put`` ships at once and no thread is started."""

    INTERVAL = 0.2
    MAX_BATCH = 1000
    _shippers: dict[tuple[int, str], LogShipper] = {}
    _registry_lock = threading.Lock()

    def __init__(self, logs: Any, group: str, background: bool = True) -> None:
        self._background = background
        self._group = group
        self._sink = LogStreamSink(logs, group, uuid.uuid4().hex)
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # guards _pending
        self._ship_lock = threading.Lock()  # one PutLogEvents at a time: the stream's order is kept
        self._wake = threading.Event()
        self._closed = False
        if background:
            threading.Thread(target=self._loop, name=f"log-shipper{group}", daemon=True).start()

    @classmethod
    def for_group(cls, logs: Any, group: str, background: bool = True) -> LogShipper:
        if not background:
            return cls(logs, group, background=False)
        with cls._registry_lock:
            shipper = cls._shippers.get((id(logs), group))
            if shipper is None:
                shipper = cls._shippers[(id(logs), group)] = cls(logs, group)
            return shipper

    @classmethod
    def flush_all(cls, reading: Any = None) -> None:
        """Ship what every shipper holds. With ``reading`` (the logs client about to be read), a shipper
        of another client that cannot ship (its endpoint gone: an earlier command's) is logged and kept
        pending; it does not fail the read of this one."""
        with cls._registry_lock:
            shippers = list(cls._shippers.items())
        for (logs_id, group), shipper in shippers:
            try:
                shipper.flush()
            except Exception as exc:
                if reading is None or logs_id == id(reading):
                    raise
                telemetry.logger.warning("EMF lines of another endpoint not shipped",
                                         extra={"group": group, "error": str(exc)[:500]})

    @classmethod
    def close_all(cls) -> None:
        """Ship what is pending and stop every shipper (the embedded runtime's shutdown)."""
        with cls._registry_lock:
            shippers, cls._shippers = list(cls._shippers.values()), {}
        for shipper in shippers:
            shipper._closed = True
            shipper._wake.set()
            try:
                shipper.flush()
            except Exception as exc:  # noqa: BLE001 - the server may already be gone
                telemetry.logger.warning("EMF lines not shipped at shutdown",
                                         extra={"group": shipper._group, "error": str(exc)[:500]})

    def put(self, lines: list[str]) -> None:
        now = int(time.time() * 1000)
        with self._lock:
            self._pending += [{"timestamp": now, "message": line} for line in lines]
        if not self._background:
            self.flush()

    def _loop(self) -> None:
        failing = False
        while not self._closed:
            self._wake.wait(self.INTERVAL)
            if self._closed:
                return
            try:
                self.flush()
                failing = False
            except Exception as exc:  # noqa: BLE001 - kept pending and retried on the next tick
                if failing:
                    continue
                failing = True
                telemetry.logger.warning("EMF log shipping failed; will retry",
                                         extra={"group": self._group, "error": str(exc)[:500]})

    def flush(self) -> None:
        with self._ship_lock:
            while batch := self._take():
                try:
                    self._sink.put(batch, time.strftime("%Y/%m/%d"))
                except Exception:
                    with self._lock:
                        self._pending[:0] = batch  # kept, in order, for the next flush
                    raise

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:
            batch, self._pending = self._pending[:self.MAX_BATCH], self._pending[self.MAX_BATCH:]
        return batch


def read_emf_totals(logs: Any, log_group: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Sum every EMF document in a log group by (metric, dimensions): the embedded runtime's view."""
    LogShipper.flush_all(reading=logs)
    totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    paginator = logs.get_paginator("filter_log_events")
    for page in paginator.paginate(logGroupName=log_group):
        for event in page.get("events", []):
            try:
                doc = json.loads(event["message"])
                directives = doc["_aws"]["CloudWatchMetrics"]
            except (ValueError, KeyError, TypeError):
                continue
            for directive in directives:
                dims = tuple(sorted((d, str(doc.get(d))) for group in directive["Dimensions"] for d in group
                                    if d != "service"))
                for metric in directive["Metrics"]:
                    name = metric["Name"]
                    raw = doc.get(name, [])
                    total = sum(raw) if isinstance(raw, list) else float(raw)
                    totals[(name, dims)] = totals.get((name, dims), 0.0) + total
    return totals


class EmfReader:
    """The EMF totals of a metrics log group (``powerx-agent metrics`` cross-checks them with the trail)."""

    def __init__(self, logs: Any) -> None:
        self._logs = logs

    def totals(self, log_group: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        """None when the log group does not exist."""
        return read_emf_totals(self._logs, log_group) if log_group_exists(self._logs, log_group) else None


def log_group_exists(logs: Any, log_group: str) -> bool:
    """Whether the CloudWatch Logs group exists (``powerx-agent metrics`` cross-checks EMF only then)."""
    out = logs.describe_log_groups(logGroupNamePrefix=log_group)
    return any(g.get("logGroupName") == log_group for g in out.get("logGroups", []))


def put_completeness(cloudwatch: Any, percent: float) -> None:
    """``audit verify --publish``: the audit completeness of the run as one datapoint of
    ``agent.audit.completeness`` (the operator's CLI is no Lambda: PutMetricData, not EMF), with the
    service dimension the dashboards read."""
    cloudwatch.put_metric_data(Namespace=spec.NAMESPACE, MetricData=[{
        "MetricName": spec.METRICS["audit_completeness"], "Dimensions": [{"Name": "service", "Value": SERVICE}],
        "Value": float(percent), "Unit": "Percent"}])
