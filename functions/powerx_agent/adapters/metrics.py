"""Metrics in CloudWatch Embedded Metric Format through Powertools (namespace ``PowerX/Agent``).

Each metric is recorded with its own dimension set (tenant, strategy) and flushed at the end of an
invocation. The sink is stdout on Lambda (CloudWatch turns EMF log lines into metrics) and a
CloudWatch Logs group on the embedded runtime, so tests and ``powerx-agent metrics`` read the very
same EMF documents.
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

from powerx_agent import spec

SERVICE = "powerx-agent"
_UNITS = {"Count": MetricUnit.Count, "None": MetricUnit.NoUnit, "Milliseconds": MetricUnit.Milliseconds}


class MetricsRecorder:
    def __init__(self, sink: str = "stdout", logs: Any = None, log_group: str = "") -> None:
        self._sink = sink
        self._logs = logs
        self._log_group = log_group
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, name: str, value: float = 1, unit: str = "Count", **dimensions: str | None) -> None:
        provider = AmazonCloudWatchEMFProvider(namespace=spec.NAMESPACE, service=SERVICE)
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
            self._pending.append(document)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        if self._sink == "logs" and self._logs is not None:
            stream = f"{time.strftime('%Y/%m/%d')}/{uuid.uuid4().hex}"
            self._logs.create_log_stream(logGroupName=self._log_group, logStreamName=stream)
            now = int(time.time() * 1000)
            self._logs.put_log_events(
                logGroupName=self._log_group,
                logStreamName=stream,
                logEvents=[{"timestamp": now, "message": json.dumps(doc)} for doc in pending],
            )
        else:
            for doc in pending:
                sys.stdout.write(json.dumps(doc) + "\n")
            sys.stdout.flush()


def read_emf_totals(logs: Any, log_group: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Sum every EMF document in a log group by (metric, dimensions): the embedded runtime's view."""
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


def log_group_exists(logs: Any, log_group: str) -> bool:
    """Whether the CloudWatch Logs group exists (``powerx-agent metrics`` cross-checks EMF only then)."""
    out = logs.describe_log_groups(logGroupNamePrefix=log_group)
    return any(g.get("logGroupName") == log_group for g in out.get("logGroups", []))
