"""The injectable clock: what ages leases, the flag cache and the library refresh can be moved
forward instead of waited for, and only forward."""

from __future__ import annotations

import pytest

from powerx_agent.adapters.flags import DynamoFlagStore
from powerx_agent.clock import AdjustableClock
from powerx_agent.strategy.library import LibraryCache


class _Flags:
    def __init__(self) -> None:
        self.document: dict = {}
        self.reads = 0

    def flags(self) -> dict:
        self.reads += 1
        return self.document


def test_given_an_adjustable_clock_when_advanced_then_wall_and_monotonic_time_move_by_as_much():
    clock = AdjustableClock()
    wall, mono = clock.time(), clock.monotonic()
    clock.advance(3600)
    assert clock.time() - wall >= 3600 and clock.monotonic() - mono >= 3600
    assert clock.offset == 3600


def test_given_an_adjustable_clock_when_moved_back_then_refused():
    with pytest.raises(ValueError):
        AdjustableClock().advance(-1)


def test_given_dynamo_flag_store_when_the_clock_passes_the_cache_age_then_it_reads_again():
    clock, store = AdjustableClock(), _Flags()
    flags = DynamoFlagStore(store, max_age=5.0, clock=clock.monotonic)
    store.document = {"agent-orchestrator": {"default": False}}
    assert flags.get_raw_configuration["agent-orchestrator"] == {"default": False}
    store.document = {}
    clock.advance(4.0)
    assert flags.get_raw_configuration["agent-orchestrator"] == {"default": False}  # still cached
    clock.advance(1.5)
    assert flags.get_raw_configuration["agent-orchestrator"] != {"default": False}
    assert store.reads == 2


def test_given_library_cache_when_the_clock_passes_the_refresh_then_the_revision_is_checked_again():
    clock, checks = AdjustableClock(), []
    cache = LibraryCache(1.0, clock.monotonic)

    def current() -> str:
        checks.append(1)
        return "r1"

    def load(revision: str):
        return type("Lib", (), {"revision": revision})()

    cache.get(current, load, on_error=lambda exc: None)
    cache.get(current, load, on_error=lambda exc: None)
    assert len(checks) == 1
    clock.advance(1.1)
    cache.get(current, load, on_error=lambda exc: None)
    assert len(checks) == 2


def test_given_fake_deps_when_the_clock_passes_the_lease_then_a_redelivery_takes_over():
    from powerx_agent.testing.fakes import FakeDeps

    deps = FakeDeps.create()
    args = {"tenant_id": "acme", "idempotency_key": "k1", "payload_hash": "h" * 64, "event_id": "e1",
            "workflow_id": "w1", "event_type": "plugin.job.completed", "lease_seconds": 20.0, "ttl_seconds": 3600.0}
    assert deps.events.claim(**args).kind == "new"
    assert deps.events.claim(**args).kind == "in_progress"
    deps.clock.advance(20.5)
    assert deps.events.claim(**args).kind == "takeover"
