"""Feature flags through Powertools ``FeatureFlags``.

On AWS the store is AppConfig (created by the stack). moto has no AppConfig data plane, so the
embedded runtime uses :class:`DynamoFlagStore`, a Powertools ``StoreProvider`` over one item of
``agent_strategies``; ``FeatureFlags`` itself is unchanged. Every flag defaults to on.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from aws_lambda_powertools.utilities.feature_flags import AppConfigStore, FeatureFlags
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider
from aws_lambda_powertools.utilities.feature_flags.exceptions import ConfigurationStoreError

from powerx_agent import spec

DEFAULT_FLAGS: dict[str, Any] = {name: {"default": True} for name in spec.FEATURE_FLAGS}


class DynamoFlagStore(StoreProvider):
    def __init__(self, strategies_store: Any, max_age: float = 5.0) -> None:
        self._store = strategies_store
        self._max_age = max_age
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            if self._cached and now - self._cached[0] < self._max_age:
                return self._cached[1]
        try:
            flags = self._store.flags()
        except Exception as exc:  # noqa: BLE001
            raise ConfigurationStoreError(f"cannot read feature flags: {exc}") from exc
        config = {**DEFAULT_FLAGS, **(flags or {})}
        with self._lock:
            self._cached = (now, config)
        return config

    def get_configuration(self) -> dict[str, Any]:
        return self.get_raw_configuration


class Flags:
    def __init__(self, store: StoreProvider) -> None:
        self._flags = FeatureFlags(store=store)

    def enabled(self, name: str, context: dict[str, Any] | None = None) -> bool:
        if name not in spec.FEATURE_FLAGS:
            raise KeyError(f"unknown feature flag {name!r}; known: {', '.join(spec.FEATURE_FLAGS)}")
        return bool(self._flags.evaluate(name=name, context=context or {}, default=True))


def appconfig_store() -> StoreProvider:
    return AppConfigStore(
        environment=os.environ["APPCONFIG_ENVIRONMENT"],
        application=os.environ["APPCONFIG_APPLICATION"],
        name=os.environ["APPCONFIG_PROFILE"],
        max_age=30,
    )
