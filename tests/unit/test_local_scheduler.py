"""The embedded runtime's EventBridge schedule: fires each rule on its period's boundaries, and a failed run
does not stop the schedule (moto stores a rate() rule but never fires it)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from powerx_agent.local.pollers import Scheduler


def test_given_a_rate_schedule_when_running_then_it_fires_on_consecutive_boundaries_even_after_a_failure():
    every = 0.25  # a power of two: boundaries and their sums are exact in binary floating point
    fired: list[float] = []
    enough = threading.Event()

    def fire(schedule: Any, at: float) -> None:
        fired.append(at)
        if len(fired) == 1:
            raise RuntimeError("the first run fails")  # logged; the schedule goes on
        if len(fired) >= 3:
            enough.set()

    scheduler = Scheduler(fire, (SimpleNamespace(name="gauge", every_seconds=every),)).start()
    try:
        assert enough.wait(timeout=30)
    finally:
        scheduler.stop()
    assert all(at % every == 0 for at in fired)  # on the period's boundaries
    assert all(b - a == every for a, b in zip(fired, fired[1:], strict=False))  # none skipped
    assert scheduler.fired == len(fired) - 1  # the failed run is not counted as fired
