"""Typed settings from the environment, read when called (never at import).

On AWS the CDK stack sets these variables per function; the embedded runtime sets them for the
in-process handlers. ``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points every client at the
local moto server; nothing else differs between the two.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from powerx_agent import spec


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from exc


def _env_bool(name: str, default: bool) -> bool:
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
    region = _env("AWS_REGION", _env("AWS_DEFAULT_REGION", "us-east-1"))
    return Settings(
        region=region,
        endpoint_url=_env("AWS_ENDPOINT_URL") or None,
        events_table=_env("EVENTS_TABLE", spec.EVENTS_TABLE.name),
        workflows_table=_env("WORKFLOWS_TABLE", spec.WORKFLOWS_TABLE.name),
        strategies_table=_env("STRATEGIES_TABLE", spec.STRATEGIES_TABLE.name),
        tenants_table=_env("TENANTS_TABLE", spec.TENANTS_TABLE.name),
        audit_table=_env("AUDIT_TABLE", spec.AUDIT_TABLE.name),
        match_queue_url=_env("MATCH_QUEUE_URL"),
        ingest_dlq_url=_env("INGEST_DLQ_URL"),
        event_bus=_env("EVENT_BUS_NAME", spec.BUS_NAME),
        workflow_role_arn=_env("WORKFLOW_ROLE_ARN"),
        node_plugin_arn=_env("NODE_PLUGIN_ARN"),
        node_notify_arn=_env("NODE_NOTIFY_ARN"),
        node_review_arn=_env("NODE_REVIEW_ARN"),
        workflow_fn_arn=_env("WORKFLOW_FN_ARN"),
        plugin_runtime_url=_env("PLUGIN_RUNTIME_URL").rstrip("/"),
        notifications_url=_env("NOTIFICATIONS_URL").rstrip("/"),
        ops_url=_env("OPS_URL").rstrip("/"),
        replay_secret=_env("REPLAY_SECRET_ARN", spec.REPLAY_SECRET_NAME),
        callback_secret=_env("CALLBACK_SECRET_ARN", spec.CALLBACK_SECRET_NAME),
        callbacks_url=_env("CALLBACKS_URL").rstrip("/"),
        downstream_secret=_env("DOWNSTREAM_SECRET_ARN", spec.DOWNSTREAM_SECRET_NAME),
        audit_log_group=_env("AUDIT_LOG_GROUP", spec.AUDIT_LOG_GROUP),
        metrics_sink=_env("METRICS_SINK", "stdout"),
        metrics_log_group=_env("METRICS_LOG_GROUP", "/powerx/agent/metrics"),
        flags_store=_env("FLAGS_STORE", "appconfig"),
        strategies_dir=_env("STRATEGIES_DIR", "strategies"),
        event_contracts_dir=_env("EVENT_CONTRACTS_DIR", ""),
        library_source=_env("LIBRARY_SOURCE", "table"),
        library_refresh_seconds=_env_float("LIBRARY_REFRESH_SECONDS", 30.0),
        idempotency_lease_seconds=_env_float("IDEMPOTENCY_LEASE_SECONDS", 20.0),
        idempotency_default_ttl_hours=(_env_float("IDEMPOTENCY_EXPIRY_SECONDS", 0) / 3600
                                       or _env_float("IDEMPOTENCY_TTL_HOURS", 24.0)),
        http_connect_timeout=_env_float("HTTP_CONNECT_TIMEOUT", 2.0),
        http_read_timeout=_env_float("HTTP_READ_TIMEOUT", 10.0),
        signature_window_seconds=_env_float("SIGNATURE_WINDOW_SECONDS", 300.0),
        console_region_url=_env("CONSOLE_URL", f"https://{region}.console.aws.amazon.com"),
        state_machine_prefix=_env("STATE_MACHINE_PREFIX", spec.STATE_MACHINE_PREFIX),
        resource_prefix=_env("RESOURCE_PREFIX"),
        state_machine_log_group_arn=_env("SFN_LOG_GROUP_ARN"),
        state_machine_log_level=_env("SFN_LOG_LEVEL", "ALL").upper(),
        state_machine_log_execution_data=_env_bool("SFN_LOG_INCLUDE_EXECUTION_DATA", False),
        state_machine_tracing=_env_bool("SFN_TRACING", True),
        require_other_approver=_env_bool("REQUIRE_OTHER_APPROVER", False),
        appconfig_application=_env("APPCONFIG_APPLICATION"),
        appconfig_environment=_env("APPCONFIG_ENVIRONMENT"),
        appconfig_profile=_env("APPCONFIG_PROFILE"),
        appconfig_deployment_strategy=_env("APPCONFIG_DEPLOYMENT_STRATEGY"),
    )
