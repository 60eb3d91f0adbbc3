"""Feature flags through Powertools ``FeatureFlags``.

On AWS the store is AppConfig (created by the stack). moto has no AppConfig data plane, so the
embedded runtime uses :class:`DynamoFlagStore`, a Powertools ``StoreProvider`` over one item of
``agent_strategies``; ``FeatureFlags`` itself is unchanged. Every flag defaults to on.
"""

from __future__ import annotations

import json
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

    def invalidate(self) -> None:
        """Forget the cached configuration (after this process changed a flag)."""
        with self._lock:
            self._cached = None


class Flags:
    def __init__(self, store: StoreProvider) -> None:
        self._flags = FeatureFlags(store=store)

    def enabled(self, name: str, context: dict[str, Any] | None = None) -> bool:
        if name not in spec.FEATURE_FLAGS:
            raise KeyError(f"unknown feature flag {name!r}; known: {', '.join(spec.FEATURE_FLAGS)}")
        return bool(self._flags.evaluate(name=name, context=context or {}, default=True))

    def invalidate(self) -> None:
        invalidate = getattr(self._flags.store, "invalidate", None)
        if callable(invalidate):
            invalidate()


def appconfig_store(appconfigdata: Any = None) -> StoreProvider:
    """Powertools' AppConfig store; given our process-wide ``appconfigdata`` client it does not build a
    boto3 session and client of its own (about 40 ms of a cold start)."""
    return AppConfigStore(
        environment=os.environ["APPCONFIG_ENVIRONMENT"],
        application=os.environ["APPCONFIG_APPLICATION"],
        name=os.environ["APPCONFIG_PROFILE"],
        max_age=30,
        boto3_client=appconfigdata,
    )


# -- writing flags (powerx-agent flags set) -------------------------------------------------------


class DynamoFlagWriter:
    """The embedded runtime's store: the ``FLAGS / CURRENT`` item of ``agent_strategies``."""

    store = "dynamodb"

    def __init__(self, strategies_store: Any) -> None:
        self._store = strategies_store

    def current(self) -> dict[str, Any]:
        return {**DEFAULT_FLAGS, **(self._store.flags() or {})}

    def write(self, flags: dict[str, Any], description: str) -> dict[str, Any]:
        self._store.put_flags(flags)
        return {"store": self.store}


class AppConfigFlagWriter:
    """AWS: a new hosted configuration version of the stack's feature-flags profile, deployed with
    ``start_deployment`` (strategy ``AppConfig.AllAtOnce`` unless APPCONFIG_DEPLOYMENT_STRATEGY says
    otherwise). The functions pick it up within the AppConfigStore's ``max_age`` (30 s)."""

    store = "appconfig"

    def __init__(self, client: Any, application: str, environment: str, profile: str,
                 deployment_strategy: str = "AppConfig.AllAtOnce") -> None:
        self._client = client
        self._names = (application, environment, profile)
        self._strategy = deployment_strategy
        self._ids: tuple[str, str, str] | None = None

    @classmethod
    def from_environment(cls, client: Any) -> AppConfigFlagWriter:
        missing = [n for n in ("APPCONFIG_APPLICATION", "APPCONFIG_ENVIRONMENT", "APPCONFIG_PROFILE")
                   if not os.environ.get(n)]
        if missing:
            raise ConfigurationStoreError(f"AppConfig flag store needs {', '.join(missing)} (use --stack NAME)")
        return cls(client, os.environ["APPCONFIG_APPLICATION"], os.environ["APPCONFIG_ENVIRONMENT"],
                   os.environ["APPCONFIG_PROFILE"],
                   os.environ.get("APPCONFIG_DEPLOYMENT_STRATEGY", "AppConfig.AllAtOnce"))

    @staticmethod
    def _find(items: list[dict[str, Any]], name: str, what: str) -> str:
        for item in items:
            if name in (item.get("Name"), item.get("Id")):
                return str(item["Id"])
        raise ConfigurationStoreError(f"AppConfig {what} {name!r} not found")

    def ids(self) -> tuple[str, str, str]:
        if self._ids is None:
            application, environment, profile = self._names
            app_id = self._find(self._client.list_applications().get("Items", []), application, "application")
            env_id = self._find(self._client.list_environments(ApplicationId=app_id).get("Items", []),
                                environment, "environment")
            profile_id = self._find(self._client.list_configuration_profiles(ApplicationId=app_id).get("Items", []),
                                    profile, "configuration profile")
            self._ids = (app_id, env_id, profile_id)
        return self._ids

    def current(self) -> dict[str, Any]:
        app_id, _, profile_id = self.ids()
        versions = self._client.list_hosted_configuration_versions(
            ApplicationId=app_id, ConfigurationProfileId=profile_id, MaxResults=1).get("Items", [])
        if not versions:
            return dict(DEFAULT_FLAGS)
        out = self._client.get_hosted_configuration_version(
            ApplicationId=app_id, ConfigurationProfileId=profile_id, VersionNumber=versions[0]["VersionNumber"])
        content = out["Content"]
        raw = content.read() if hasattr(content, "read") else content
        return {**DEFAULT_FLAGS, **json.loads(raw or b"{}")}

    def write(self, flags: dict[str, Any], description: str) -> dict[str, Any]:
        app_id, env_id, profile_id = self.ids()
        version = self._client.create_hosted_configuration_version(
            ApplicationId=app_id, ConfigurationProfileId=profile_id, Description=description[:1024],
            Content=json.dumps(flags, sort_keys=True).encode(), ContentType="application/json")["VersionNumber"]
        deployment = self._client.start_deployment(
            ApplicationId=app_id, EnvironmentId=env_id, DeploymentStrategyId=self._strategy,
            ConfigurationProfileId=profile_id, ConfigurationVersion=str(version), Description=description[:1024])
        return {"store": self.store, "version": version, "deployment": deployment.get("DeploymentNumber")}
