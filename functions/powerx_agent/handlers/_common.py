"""What every handler shares: the Powertools logger and tracer (powerx_agent.telemetry) and a
per-invocation metrics flush."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from powerx_agent import spec, telemetry
from powerx_agent.deps import Deps, get_deps

logger = telemetry.logger
tracer = telemetry.tracer()


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
