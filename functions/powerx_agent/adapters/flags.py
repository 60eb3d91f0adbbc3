"""Feature flags: one document format in every store, read through Powertools ``FeatureFlags``.

The document is Powertools' feature-flag schema, ``{"<flag>": {"default": bool, "rules": {...}}}``
(``spec.feature_flags_document()``), held as JSON:

- on AWS in an AppConfig **Freeform** hosted profile (the stack deploys it; ``GetLatestConfiguration``
  returns a Freeform profile's content as it was stored), read with Powertools ``AppConfigStore``;
- on the embedded runtime (moto has no AppConfig) in the ``FLAGS / CURRENT`` item of
  ``agent_strategies``, read with :class:`DynamoFlagStore`.

:class:`ResilientStore` stands between either store and ``FeatureFlags``: a store that cannot be
read, or a document that is not valid, never takes a function down. The last document that was
valid serves (at first, the default document: every flag on), the failure is logged and counted
(``agent.flags.store_errors_total``, alarmed in the stack), and the store is tried again after
``retry_after`` seconds, not on every evaluation.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools.utilities.feature_flags import AppConfigStore, FeatureFlags
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider
from aws_lambda_powertools.utilities.feature_flags.exceptions import ConfigurationStoreError
from aws_lambda_powertools.utilities.feature_flags.schema import SchemaValidator

from powerx_agent import spec, telemetry
from powerx_agent.adapters.aws import error_code
from powerx_agent.errors import AgentError, ConfigurationError
from powerx_agent.settings import Env, Settings

DEFAULT_FLAGS: dict[str, Any] = spec.feature_flags_document()
APPCONFIG_MAX_AGE = 30  # seconds between two GetLatestConfiguration polls of one function instance
_ACTIVE_DEPLOYMENT = ("BAKING", "VALIDATING", "DEPLOYING", "ROLLING_BACK")  # AppConfig DeploymentState


class FlagStoreError(AgentError):
    code = "flags.store"


def validate_document(document: Any) -> dict[str, Any]:
    """The document as Powertools ``FeatureFlags`` would accept it, every known flag a boolean.

    Raises :class:`FlagStoreError` naming what is wrong (e.g. a document in AppConfig's
    ``AWS.AppConfig.FeatureFlags`` retrieved form, ``{"<flag>": {"enabled": true}}``)."""
    if not isinstance(document, dict):
        raise FlagStoreError(f"the flag document is a {type(document).__name__}, not a JSON object")
    try:
        SchemaValidator(document).validate()
    except Exception as exc:  # noqa: BLE001 - Powertools raises SchemaValidationError (and others) with a reason
        raise FlagStoreError(f"the flag document is not in Powertools' feature-flag schema: {exc}") from None
    for name in spec.FEATURE_FLAGS:
        if name in document and not isinstance(document[name].get("default"), bool):
            raise FlagStoreError(f"flag {name!r}: default must be true or false")
    return document


def parse_document(raw: bytes | str, content_type: str | None) -> dict[str, Any]:
    if content_type and content_type.split(";")[0].strip() != spec.FLAGS_CONTENT_TYPE:
        raise FlagStoreError(f"the flag document has content type {content_type!r}, not {spec.FLAGS_CONTENT_TYPE}")
    try:
        document = json.loads(raw or b"{}")
    except ValueError as exc:
        raise FlagStoreError(f"the flag document is not JSON: {exc}") from None
    return validate_document(document)


class DynamoFlagStore(StoreProvider):
    """The embedded runtime's store: the ``FLAGS / CURRENT`` item of ``agent_strategies``."""

    def __init__(self, strategies_store: Any, max_age: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = strategies_store
        self._max_age = max_age
        self._clock = clock
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        now = self._clock()
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


class ResilientStore(StoreProvider):
    """Serves the last valid document when the store behind it cannot be read (see the module doc).

    ``make_store`` builds the store; after a failure it is built anew, so a broken AppConfig session
    (an expired or spent configuration token) is replaced by a fresh one on the next try."""

    def __init__(self, make_store: Callable[[], StoreProvider], retry_after: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._make_store = make_store
        self._store: StoreProvider | None = None
        self._retry_after = retry_after
        self._clock = clock
        self._last: dict[str, Any] = DEFAULT_FLAGS
        self._failed_at: float | None = None
        self._errors = 0
        self._lock = threading.Lock()

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        return self.get_configuration()

    def get_configuration(self) -> dict[str, Any]:
        with self._lock:
            if self._failed_at is not None and self._clock() - self._failed_at < self._retry_after:
                return self._last
        try:
            store = self._store = self._store or self._make_store()
            document = store.get_configuration()
            if document is not self._last:  # stores hand back the same object while their cache is fresh
                validate_document(document)
        except Exception as exc:  # noqa: BLE001 - any failure: the last valid document serves
            with self._lock:
                self._errors += 1
                self._failed_at = self._clock()
                self._store = None
            telemetry.logger.warning("feature flags unreadable; serving the last known flags",
                           extra={"error": str(exc)[:500], "error_type": type(exc).__name__,
                                  "code": error_code(exc) or getattr(exc, "code", "")})
            return self._last
        with self._lock:
            self._last, self._failed_at = document, None
        return document

    def take_errors(self) -> int:
        """How many reads failed since the last call (the handler turns it into a metric)."""
        with self._lock:
            errors, self._errors = self._errors, 0
        return errors

    def invalidate(self) -> None:
        with self._lock:
            self._failed_at = None
            invalidate = getattr(self._store, "invalidate", None)
        if callable(invalidate):
            invalidate()


class Flags:
    def __init__(self, store: StoreProvider) -> None:
        self._store = store if isinstance(store, ResilientStore) else ResilientStore(lambda: store)
        self._flags = FeatureFlags(store=self._store)

    def enabled(self, name: str, context: dict[str, Any] | None = None) -> bool:
        if name not in spec.FEATURE_FLAGS:
            raise KeyError(f"unknown feature flag {name!r}; known: {', '.join(spec.FEATURE_FLAGS)}")
        return bool(self._flags.evaluate(name=name, context=context or {}, default=True))

    def take_store_errors(self) -> int:
        return self._store.take_errors()

    def invalidate(self) -> None:
        self._store.invalidate()


def appconfig_store(appconfigdata: Any, settings: Any, max_age: int = APPCONFIG_MAX_AGE) -> AppConfigStore:
    """Powertools' AppConfig store over our process-wide ``appconfigdata`` client (no boto3 session and
    client of its own: about 40 ms of a cold start)."""
    missing = [n for n, v in ((Env.APPCONFIG_APPLICATION, settings.appconfig_application),
                              (Env.APPCONFIG_ENVIRONMENT, settings.appconfig_environment),
                              (Env.APPCONFIG_PROFILE, settings.appconfig_profile)) if not v]
    if missing:
        raise ConfigurationError(f"the AppConfig flag store needs {', '.join(missing)} (use --stack NAME)")
    return AppConfigStore(environment=settings.appconfig_environment, application=settings.appconfig_application,
                          name=settings.appconfig_profile, max_age=max_age, boto3_client=appconfigdata)


# -- writing flags (powerx-agent flags set) -------------------------------------------------------


class DynamoFlagWriter:
    """The embedded runtime's store: the ``FLAGS / CURRENT`` item of ``agent_strategies``."""

    store = "dynamodb"

    def __init__(self, strategies_store: Any) -> None:
        self._store = strategies_store

    def current(self) -> dict[str, Any]:
        return validate_document({**DEFAULT_FLAGS, **(self._store.flags() or {})})

    def deployed(self) -> dict[str, Any]:
        return self.current()

    def status(self) -> dict[str, Any]:
        return {"store": self.store}

    def write(self, flags: dict[str, Any], description: str) -> dict[str, Any]:
        self._store.put_flags(validate_document(flags))
        return {"store": self.store}


class ClientsDeps(Protocol):
    """What :meth:`AppConfigFlagWriter.from_deps` reads of ``powerx_agent.deps.Deps``: deps/ sits above
    adapters/ in the floor plan, so an adapter names the part it uses, not Deps."""

    @property
    def settings(self) -> Settings: ...

    def client(self, service: str) -> Any: ...


class AppConfigFlagWriter:
    """AWS: a new hosted configuration version of the stack's Freeform flag profile, deployed with
    ``StartDeployment`` and the stack's deployment strategy. Functions see it once the deployment
    has reached them and their ``AppConfigStore`` polls again (at most ``APPCONFIG_MAX_AGE`` later).

    Both writes are guarded: ``LatestVersionNumber`` and ``LatestDeploymentNumber`` make AppConfig
    refuse a change made on a stale read, a deployment still running refuses the change before
    anything is written, and a version whose deployment could not start is deleted again."""

    store = "appconfig"

    def __init__(self, client: Any, application: str, environment: str, profile: str, strategy: str,
                 read_store: Callable[[], StoreProvider] | None = None) -> None:
        self._client = client
        self._app, self._env, self._profile, self._strategy = application, environment, profile, strategy
        self._read_store = read_store
        self._base: int | None = None

    @classmethod
    def from_deps(cls, deps: ClientsDeps) -> AppConfigFlagWriter:
        s = deps.settings
        missing = [n for n, v in ((Env.APPCONFIG_APPLICATION, s.appconfig_application),
                                  (Env.APPCONFIG_ENVIRONMENT, s.appconfig_environment),
                                  (Env.APPCONFIG_PROFILE, s.appconfig_profile),
                                  (Env.APPCONFIG_DEPLOYMENT_STRATEGY, s.appconfig_deployment_strategy)) if not v]
        if missing:
            raise ConfigurationError(f"the AppConfig flag store needs {', '.join(missing)} (use --stack NAME)")
        return cls(deps.client("appconfig"), s.appconfig_application, s.appconfig_environment, s.appconfig_profile,
                   s.appconfig_deployment_strategy,
                   read_store=lambda: appconfig_store(deps.client("appconfigdata"), s, max_age=0))

    def _latest_version(self) -> int | None:
        numbers = [int(item["VersionNumber"])
                   for page in self._client.get_paginator("list_hosted_configuration_versions").paginate(
                       ApplicationId=self._app, ConfigurationProfileId=self._profile)
                   for item in page.get("Items", [])]
        return max(numbers, default=None)

    def _deployments(self) -> list[dict[str, Any]]:
        return [item for page in self._client.get_paginator("list_deployments").paginate(
                    ApplicationId=self._app, EnvironmentId=self._env)
                for item in page.get("Items", [])]

    def _document(self, version: int | None) -> dict[str, Any]:
        if version is None:
            return dict(DEFAULT_FLAGS)
        out = self._client.get_hosted_configuration_version(
            ApplicationId=self._app, ConfigurationProfileId=self._profile, VersionNumber=version)
        return {**DEFAULT_FLAGS, **parse_document(out["Content"].read(), out.get("ContentType"))}

    def current(self) -> dict[str, Any]:
        """The latest hosted version, which the next :meth:`write` is based on: AppConfig refuses that
        write if another version was created in between."""
        self._base = self._latest_version()
        return self._document(self._base)

    def deployed(self) -> dict[str, Any]:
        """What the functions read: the deployed configuration, through the functions' own read path
        (``StartConfigurationSession`` + ``GetLatestConfiguration`` with Powertools ``AppConfigStore``)."""
        store = self._read_store() if self._read_store else None
        if store is None:
            return self.current()
        try:
            document = store.get_configuration()
        except ConfigurationStoreError as exc:
            cause = exc.__cause__ or exc
            raise FlagStoreError(f"cannot read the deployed flags from AppConfig: {cause}") from None
        return {**DEFAULT_FLAGS, **validate_document(document)}

    def status(self) -> dict[str, Any]:
        """The latest deployment of the profile: number, version, state, percentage."""
        mine = [d for d in self._deployments() if d.get("ConfigurationProfileId", self._profile) == self._profile]
        if not mine:
            return {"store": self.store}
        latest = max(mine, key=lambda d: int(d["DeploymentNumber"]))
        return {"store": self.store, "deployment": int(latest["DeploymentNumber"]),
                "version": latest.get("ConfigurationVersion"), "state": latest.get("State"),
                "percent": latest.get("PercentageComplete")}

    def write(self, flags: dict[str, Any], description: str) -> dict[str, Any]:
        document = validate_document(flags)
        deployments = self._deployments()
        running = [d for d in deployments if d.get("State") in _ACTIVE_DEPLOYMENT]
        if running:
            d = running[0]
            raise FlagStoreError(
                f"AppConfig deployment {d['DeploymentNumber']} (version {d.get('ConfigurationVersion')}) is "
                f"{d['State']} ({d.get('PercentageComplete', 0):.0f}%); change flags once it has finished",
                code="flags.deployment_in_progress")
        base = self._base if self._base is not None else self._latest_version()
        create: dict[str, Any] = {"LatestVersionNumber": base} if base is not None else {}
        try:
            version = int(self._client.create_hosted_configuration_version(
                ApplicationId=self._app, ConfigurationProfileId=self._profile, Description=description[:1024],
                Content=json.dumps(document, sort_keys=True).encode(), ContentType=spec.FLAGS_CONTENT_TYPE,
                **create)["VersionNumber"])
        except Exception as exc:
            raise FlagStoreError(f"AppConfig refused the new flag version ({error_code(exc) or exc}); "
                                 "nothing was changed") from exc
        start: dict[str, Any] = {}
        if deployments:
            start["LatestDeploymentNumber"] = max(int(d["DeploymentNumber"]) for d in deployments)
        try:
            deployment = self._client.start_deployment(
                ApplicationId=self._app, EnvironmentId=self._env, DeploymentStrategyId=self._strategy,
                ConfigurationProfileId=self._profile, ConfigurationVersion=str(version),
                Description=description[:1024], **start)
        except Exception as exc:
            self._client.delete_hosted_configuration_version(
                ApplicationId=self._app, ConfigurationProfileId=self._profile, VersionNumber=version)
            raise FlagStoreError(f"AppConfig did not start the deployment ({error_code(exc) or exc}); "
                                 f"version {version} was deleted again, nothing was changed") from exc
        return {"store": self.store, "version": version, "deployment": deployment.get("DeploymentNumber"),
                "state": deployment.get("State")}
