"""Typed settings from the environment, read when called (never at import).

On AWS the CDK stack sets these variables per function; the embedded runtime sets them for the
in-process handlers. ``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points every client at the
local moto server; nothing else differs between the two.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum, auto

from powerx_agent import spec


class Env(StrEnum):
    """Every environment variable of the engine, each name written once: ``load_settings`` reads them,
    ``infra/`` sets them on the functions, ``local/`` on the embedded runtime, the CLI from a stack's
    outputs (a test keeps the names out of string literals everywhere else)."""

    @staticmethod
    def _generate_next_value_(name: str, start: int, count: int, last_values: list[str]) -> str:
        return name  # the member's name is the variable's name

    # boto3's own, read for the region and the local endpoint
    AWS_REGION = auto()
    AWS_DEFAULT_REGION = auto()
    AWS_ENDPOINT_URL = auto()
    # resources
    EVENTS_TABLE = auto()
    WORKFLOWS_TABLE = auto()
    STRATEGIES_TABLE = auto()
    TENANTS_TABLE = auto()
    AUDIT_TABLE = auto()
    MATCH_QUEUE_URL = auto()
    INGEST_DLQ_URL = auto()
    EVENT_BUS_NAME = auto()
    WORKFLOW_ROLE_ARN = auto()
    NODE_PLUGIN_ARN = auto()
    NODE_NOTIFY_ARN = auto()
    NODE_REVIEW_ARN = auto()
    WORKFLOW_FN_ARN = auto()
    STATE_MACHINE_PREFIX = auto()
    RESOURCE_PREFIX = auto()
    AUDIT_LOG_GROUP = auto()
    REPLAY_SECRET_ARN = auto()
    CALLBACK_SECRET_ARN = auto()
    CALLBACKS_URL = auto()  # where a plugin calls back (signed per call)
    DOWNSTREAM_SECRET_ARN = auto()
    # downstream services
    PLUGIN_RUNTIME_URL = auto()
    NOTIFICATIONS_URL = auto()
    OPS_URL = auto()
    HTTP_CONNECT_TIMEOUT = auto()
    HTTP_READ_TIMEOUT = auto()
    # metrics, flags, the strategy library
    METRICS_SINK = auto()
    METRICS_LOG_GROUP = auto()
    FLAGS_STORE = auto()
    FLAGS_CACHE_SECONDS = auto()
    APPCONFIG_APPLICATION = auto()
    APPCONFIG_ENVIRONMENT = auto()
    APPCONFIG_PROFILE = auto()
    APPCONFIG_DEPLOYMENT_STRATEGY = auto()
    STRATEGIES_DIR = auto()
    EVENT_CONTRACTS_DIR = auto()  # per-event-type payload contracts (empty: the checkout's config/event-types)
    LIBRARY_SOURCE = auto()
    LIBRARY_REFRESH_SECONDS = auto()
    REQUIRE_OTHER_APPROVER = auto()
    # idempotency and signatures
    IDEMPOTENCY_LEASE_SECONDS = auto()
    IDEMPOTENCY_EXPIRY_SECONDS = auto()
    IDEMPOTENCY_TTL_HOURS = auto()
    SIGNATURE_WINDOW_SECONDS = auto()
    # the state machines the matcher creates
    SFN_LOG_GROUP_ARN = auto()
    SFN_LOG_LEVEL = auto()
    SFN_LOG_INCLUDE_EXECUTION_DATA = auto()
    SFN_TRACING = auto()
    CONSOLE_URL = auto()
    # set on every function by a deploy (not read by load_settings)
    AGENT_FUNCTION = auto()  # the function's key in spec.FUNCTIONS
    POWERX_RELEASE = auto()  # the release the function's version belongs to
    # read by the CLI only
    POWERX_API_URL = auto()  # the internal API (replay --via api)
    POWERX_ARCHIVE_NAME = auto()  # the bus archive (a stack output)
    POWERX_ACTOR = auto()  # who an operator command is recorded as (else $USER)
    POWERX_REPLAY_CALLER = auto()  # replay --via api: the caller whose key signs
    # the embedded runtime
    POWERX_LOCAL_MAX_EXECUTIONS = auto()


def _env(name: Env, default: str = "") -> str:
    return os.environ.get(name, default)


def _env_float(name: Env, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from exc


def _env_bool(name: Env, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return default if not raw else raw in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    region: str
    endpoint_url: str | None
    events_table: str
    workflows_table: str
    strategies_table: str
    tenants_table: str
    audit_table: str
    match_queue_url: str
    ingest_dlq_url: str
    event_bus: str
    workflow_role_arn: str
    node_plugin_arn: str
    node_notify_arn: str
    node_review_arn: str
    workflow_fn_arn: str
    plugin_runtime_url: str
    notifications_url: str
    ops_url: str
    replay_secret: str
    callback_secret: str
    callbacks_url: str  # the callbacks endpoint's URL: plugins and the ops service get it signed per call
    downstream_secret: str
    audit_log_group: str
    metrics_sink: str  # "stdout" (Lambda: EMF picked up by CloudWatch) | "logs" (embedded runtime)
    metrics_log_group: str
    flags_store: str  # "appconfig" | "dynamodb"
    strategies_dir: str
    event_contracts_dir: str  # "" : the checkout's config/event-types (payload_contracts.default_directory)
    library_source: str  # "table" (published versions) | "dir" (baseline shipped with the code)
    library_refresh_seconds: float
    idempotency_lease_seconds: float
    idempotency_default_ttl_hours: float
    http_connect_timeout: float
    http_read_timeout: float
    signature_window_seconds: float
    console_region_url: str
    state_machine_prefix: str
    resource_prefix: str = ""  # the stack's resourcePrefix: function names are <prefix><spec name>
    # every state machine the matcher creates: logging (Express executions' only history) and X-Ray
    state_machine_log_group_arn: str = ""  # "arn:...:log-group:<name>:*"; empty: no logging configured
    state_machine_log_level: str = "ALL"  # ALL | ERROR | FATAL | OFF
    state_machine_log_execution_data: bool = False
    state_machine_tracing: bool = True
    require_other_approver: bool = False  # strategy approve: the approver must not be the author
    # the AppConfig feature-flag profile (ids from the stack's outputs) and the strategy `flags set` deploys with
    appconfig_application: str = ""
    appconfig_environment: str = ""
    appconfig_profile: str = ""
    appconfig_deployment_strategy: str = ""
    # how long the DynamoDB flag store (embedded runtime, CLI) serves a read before reading again
    flags_cache_seconds: float = 5.0

    @property
    def state_machine_log_group(self) -> str:
        """The log group's name, from its ARN (``arn:<p>:logs:<r>:<a>:log-group:<name>:*``)."""
        arn = self.state_machine_log_group_arn
        return arn.split(":log-group:", 1)[1].removesuffix(":*") if ":log-group:" in arn else ""

    @property
    def function_arns(self) -> dict[str, str]:
        return {"plugin": self.node_plugin_arn, "notify": self.node_notify_arn,
                "review": self.node_review_arn, "workflow": self.workflow_fn_arn}


def load_settings() -> Settings:
    region = _env(Env.AWS_REGION, _env(Env.AWS_DEFAULT_REGION, "us-east-1"))
    return Settings(
        region=region,
        endpoint_url=_env(Env.AWS_ENDPOINT_URL) or None,
        events_table=_env(Env.EVENTS_TABLE, spec.EVENTS_TABLE.name),
        workflows_table=_env(Env.WORKFLOWS_TABLE, spec.WORKFLOWS_TABLE.name),
        strategies_table=_env(Env.STRATEGIES_TABLE, spec.STRATEGIES_TABLE.name),
        tenants_table=_env(Env.TENANTS_TABLE, spec.TENANTS_TABLE.name),
        audit_table=_env(Env.AUDIT_TABLE, spec.AUDIT_TABLE.name),
        match_queue_url=_env(Env.MATCH_QUEUE_URL),
        ingest_dlq_url=_env(Env.INGEST_DLQ_URL),
        event_bus=_env(Env.EVENT_BUS_NAME, spec.BUS_NAME),
        workflow_role_arn=_env(Env.WORKFLOW_ROLE_ARN),
        node_plugin_arn=_env(Env.NODE_PLUGIN_ARN),
        node_notify_arn=_env(Env.NODE_NOTIFY_ARN),
        node_review_arn=_env(Env.NODE_REVIEW_ARN),
        workflow_fn_arn=_env(Env.WORKFLOW_FN_ARN),
        plugin_runtime_url=_env(Env.PLUGIN_RUNTIME_URL).rstrip("/"),
        notifications_url=_env(Env.NOTIFICATIONS_URL).rstrip("/"),
        ops_url=_env(Env.OPS_URL).rstrip("/"),
        replay_secret=_env(Env.REPLAY_SECRET_ARN, spec.REPLAY_SECRET_NAME),
        callback_secret=_env(Env.CALLBACK_SECRET_ARN, spec.CALLBACK_SECRET_NAME),
        callbacks_url=_env(Env.CALLBACKS_URL).rstrip("/"),
        downstream_secret=_env(Env.DOWNSTREAM_SECRET_ARN, spec.DOWNSTREAM_SECRET_NAME),
        audit_log_group=_env(Env.AUDIT_LOG_GROUP, spec.AUDIT_LOG_GROUP),
        metrics_sink=_env(Env.METRICS_SINK, "stdout"),
        metrics_log_group=_env(Env.METRICS_LOG_GROUP, spec.METRICS_LOG_GROUP),
        flags_store=_env(Env.FLAGS_STORE, "appconfig"),
        strategies_dir=_env(Env.STRATEGIES_DIR, "strategies"),
        event_contracts_dir=_env(Env.EVENT_CONTRACTS_DIR, ""),
        library_source=_env(Env.LIBRARY_SOURCE, "table"),
        library_refresh_seconds=_env_float(Env.LIBRARY_REFRESH_SECONDS, 30.0),
        idempotency_lease_seconds=_env_float(Env.IDEMPOTENCY_LEASE_SECONDS, 20.0),
        idempotency_default_ttl_hours=(_env_float(Env.IDEMPOTENCY_EXPIRY_SECONDS, 0) / 3600
                                       or _env_float(Env.IDEMPOTENCY_TTL_HOURS, 24.0)),
        http_connect_timeout=_env_float(Env.HTTP_CONNECT_TIMEOUT, 2.0),
        http_read_timeout=_env_float(Env.HTTP_READ_TIMEOUT, 10.0),
        signature_window_seconds=_env_float(Env.SIGNATURE_WINDOW_SECONDS, 300.0),
        console_region_url=_env(Env.CONSOLE_URL, f"https://{region}.console.aws.amazon.com"),
        state_machine_prefix=_env(Env.STATE_MACHINE_PREFIX, spec.STATE_MACHINE_PREFIX),
        resource_prefix=_env(Env.RESOURCE_PREFIX),
        state_machine_log_group_arn=_env(Env.SFN_LOG_GROUP_ARN),
        state_machine_log_level=_env(Env.SFN_LOG_LEVEL, "ALL").upper(),
        state_machine_log_execution_data=_env_bool(Env.SFN_LOG_INCLUDE_EXECUTION_DATA, False),
        state_machine_tracing=_env_bool(Env.SFN_TRACING, True),
        require_other_approver=_env_bool(Env.REQUIRE_OTHER_APPROVER, False),
        appconfig_application=_env(Env.APPCONFIG_APPLICATION),
        appconfig_environment=_env(Env.APPCONFIG_ENVIRONMENT),
        appconfig_profile=_env(Env.APPCONFIG_PROFILE),
        appconfig_deployment_strategy=_env(Env.APPCONFIG_DEPLOYMENT_STRATEGY),
        flags_cache_seconds=_env_float(Env.FLAGS_CACHE_SECONDS, 5.0),
    )
