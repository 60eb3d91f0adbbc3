"""Wiring: the clients and stores a handler passes to the logic (built once per process).

Logic modules receive these objects as arguments; only this module and ``adapters`` know boto3.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from powerx_agent.adapters import aws
from powerx_agent.clock import SYSTEM_CLOCK, Clock
from powerx_agent.settings import Settings, load_settings

if TYPE_CHECKING:  # imported lazily below: a cold start pays only for what its handler uses
    from powerx_agent.adapters.alarms import Alarms
    from powerx_agent.adapters.audit_store import AuditStore
    from powerx_agent.adapters.bus import Bus
    from powerx_agent.adapters.events_store import EventsStore
    from powerx_agent.adapters.flags import Flags
    from powerx_agent.adapters.metrics import EmfReader, MetricsRecorder
    from powerx_agent.adapters.queues import Queues
    from powerx_agent.adapters.releases import LambdaReleases
    from powerx_agent.adapters.secrets import SecretsCache
    from powerx_agent.adapters.state_machines import StateMachines
    from powerx_agent.adapters.strategies_store import StrategiesStore
    from powerx_agent.adapters.tenants_store import TenantsStore
    from powerx_agent.adapters.workflows_store import WorkflowsStore


@dataclass
class Deps:
    settings: Settings
    clock: Clock = SYSTEM_CLOCK  # leases, cache ages, refresh intervals (the embedded runtime's can advance)

    def client(self, service: str) -> Any:
        return aws.client(service, self.settings.region, self.settings.endpoint_url)

    @cached_property
    def ddb(self) -> Any:
        return self.client("dynamodb")

    @cached_property
    def events(self) -> EventsStore:
        from powerx_agent.adapters.events_store import EventsStore

        return EventsStore(self.ddb, self.settings.events_table, self.clock)

    @cached_property
    def workflows(self) -> WorkflowsStore:
        from powerx_agent.adapters.workflows_store import WorkflowsStore

        return WorkflowsStore(self.ddb, self.settings.workflows_table)

    @cached_property
    def tenants(self) -> TenantsStore:
        from powerx_agent.adapters.tenants_store import TenantsStore

        return TenantsStore(self.ddb, self.settings.tenants_table)

    @cached_property
    def strategies(self) -> StrategiesStore:
        from powerx_agent.adapters.strategies_store import StrategiesStore

        return StrategiesStore(self.ddb, self.settings.strategies_table)

    @cached_property
    def audit(self) -> AuditStore:
        from powerx_agent.adapters.audit_store import AuditStore

        return AuditStore(self.ddb, self.settings.audit_table)

    @cached_property
    def secrets(self) -> SecretsCache:
        from powerx_agent.adapters.secrets import SecretsCache

        return SecretsCache(self.client("secretsmanager"))

    @cached_property
    def flags(self) -> Flags:
        from powerx_agent.adapters.flags import DynamoFlagStore, Flags, ResilientStore, appconfig_store

        if self.settings.flags_store == "appconfig":
            return Flags(ResilientStore(lambda: appconfig_store(self.client("appconfigdata"), self.settings)))
        return Flags(DynamoFlagStore(self.strategies, self.settings.flags_cache_seconds, self.clock.monotonic))

    def flag_store_errors(self) -> int:
        """Failed flag reads since the last call, if this process reads flags at all (a metric per invocation)."""
        flags = self.__dict__.get("flags")  # the cached_property, only when already built
        return flags.take_store_errors() if flags is not None else 0

    @cached_property
    def state_machines(self) -> StateMachines:
        from powerx_agent.adapters.state_machines import StateMachines

        return StateMachines(self.client("stepfunctions"), self.settings, logs=lambda: self.client("logs"),
                             identity=lambda: aws.caller_arn(self.client("sts")))

    @cached_property
    def queues(self) -> Queues:
        from powerx_agent.adapters.queues import Queues

        return Queues(self.client("sqs"))

    @cached_property
    def bus(self) -> Bus:
        from powerx_agent.adapters.bus import Bus

        return Bus(self.client("events"), self.settings.event_bus)

    @cached_property
    def alarms(self) -> Alarms:
        from powerx_agent.adapters.alarms import Alarms

        return Alarms(self.client("cloudwatch"))

    @cached_property
    def releases(self) -> LambdaReleases:
        from powerx_agent.adapters.releases import LambdaReleases

        return LambdaReleases(self.client("lambda"))

    @cached_property
    def emf(self) -> EmfReader:
        from powerx_agent.adapters.metrics import EmfReader

        return EmfReader(self.client("logs"))

    def metrics(self) -> MetricsRecorder:
        """A fresh recorder per invocation (flushed by the handler when it returns)."""
        from powerx_agent.adapters.metrics import MetricsRecorder

        logs = self.client("logs") if self.settings.metrics_sink == "logs" else None
        return MetricsRecorder(self.settings.metrics_sink, logs, self.settings.metrics_log_group)

    @cached_property
    def process_state(self) -> dict[str, Any]:
        """Per-process caches owned by logic modules (library cache, compiled flows, ...)."""
        return {}


_lock = threading.Lock()
_deps: Deps | None = None
_clock: Clock = SYSTEM_CLOCK


def use_clock(clock: Clock) -> None:
    """The clock of the process-wide Deps (the embedded runtime sets its own, and the system clock
    back when it stops)."""
    global _clock
    _clock = clock


def get_deps() -> Deps:
    """The process-wide Deps, rebuilt when the settings or the clock change (the embedded runtime restarts)."""
    global _deps
    settings = load_settings()
    if _deps is not None and _deps.settings == settings and _deps.clock is _clock:
        return _deps
    with _lock:
        if _deps is None or _deps.settings != settings or _deps.clock is not _clock:
            _deps = Deps(settings, _clock)
        return _deps
