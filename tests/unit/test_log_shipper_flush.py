"""A read of one endpoint's metrics ships what is pending first; a shipper of another endpoint that can no
longer ship (an earlier command's, its server gone) must not fail that read."""

from __future__ import annotations

from typing import Any

import pytest

from powerx_agent.adapters.metrics import LogShipper
from powerx_agent.testing.fakes import FakeLogs


class GoneLogs(FakeLogs):
    def put_log_events(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise ConnectionRefusedError("the endpoint is gone")


@pytest.fixture()
def shippers(monkeypatch):
    monkeypatch.setattr(LogShipper, "_shippers", {})
    live, gone = FakeLogs(), GoneLogs()
    for logs in (live, gone):
        shipper = LogShipper(logs, "/powerx/agent/metrics", background=False)
        shipper._pending.append({"timestamp": 1, "message": "{}"})
        LogShipper._shippers[(id(logs), "/powerx/agent/metrics")] = shipper
    return live, gone


def test_given_a_shipper_of_a_gone_endpoint_when_another_endpoint_is_read_then_its_lines_ship_and_no_error(shippers):
    live, gone = shippers
    LogShipper.flush_all(reading=live)
    assert live.events and not gone.events
    assert LogShipper._shippers[(id(gone), "/powerx/agent/metrics")]._pending  # kept for a later flush


def test_given_a_shipper_of_a_gone_endpoint_when_that_endpoint_is_read_then_the_failure_is_raised(shippers):
    _, gone = shippers
    with pytest.raises(ConnectionRefusedError):
        LogShipper.flush_all(reading=gone)
