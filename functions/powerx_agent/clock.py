"""Time, injectable: what leases, cache ages and refresh intervals are measured with.

Code that ages something (the idempotency lease, the flag cache, the strategy library refresh)
reads ``deps.clock`` instead of the ``time`` module, so the embedded runtime can move time forward
(``AdjustableClock.advance``) where a test would otherwise sleep for a lease or a cache to run out.
"""

from __future__ import annotations

import threading
import time


class Clock:
    """The system clock: ``time()`` is wall time (seconds since the epoch, stored in records),
    ``monotonic()`` measures ages within one process."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = Clock()


class AdjustableClock(Clock):
    """The system clock plus an offset that only grows: ``advance(s)`` is what ``s`` seconds of
    waiting would do to every lease, cache age and refresh interval, without the wait. Time never
    goes back, so nothing measured with it sees a negative age."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._offset += seconds

    def time(self) -> float:
        return time.time() + self._offset

    def monotonic(self) -> float:
        return time.monotonic() + self._offset
