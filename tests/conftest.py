"""Shared fixtures. The embedded runtime (moto server + sandbox + internal API on loopback) is
started once per test session and shared by the integration and e2e tests; each test uses fresh
event ids and resets the sandbox's behaviours."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def runtime() -> Iterator[object]:
    from powerx_agent.local.runtime import LocalRuntime

    rt = LocalRuntime.start()
    try:
        yield rt
    finally:
        rt.stop()


@pytest.fixture()
def rt(runtime: object) -> Iterator[object]:
    runtime.sandbox.reset()  # type: ignore[attr-defined]
    yield runtime
    runtime.sandbox.reset()  # type: ignore[attr-defined]


@pytest.fixture()
def uid() -> str:
    return uuid.uuid4().hex[:10]
