"""What every handler shares: the Powertools logger and a per-invocation metrics flush."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger

from powerx_agent import spec
from powerx_agent.deps import Deps, get_deps

logger = Logger(service="powerx-agent")


@contextmanager
def invocation() -> Iterator[tuple[Deps, Any]]:
    deps = get_deps()
    metrics = deps.metrics()
    try:
        yield deps, metrics
    finally:
        flag_errors = deps.flag_store_errors()
        if flag_errors:
            metrics.add(spec.METRICS["flag_store_errors"], flag_errors)
        metrics.flush()


def run(fn: Callable[[Deps, Any], Any]) -> Any:
    with invocation() as (deps, metrics):
        return fn(deps, metrics)
