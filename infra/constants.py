"""Names, defaults and the per-function wiring (environment + grants) of the deployed stack.

Resource names come from ``powerx_agent.spec`` (the one resource specification shared with the
embedded runtime); this module only adds what is specific to the AWS deployment.
"""

from __future__ import annotations

from powerx_agent import spec

STACK_NAME = "PowerXAgent"
SERVICE_NAME = "powerx-agent"  # POWERTOOLS_SERVICE_NAME of every function: metrics aggregate per service
METRICS_NAMESPACE = spec.NAMESPACE  # "PowerX/Agent"
DASHBOARD_NAME = "Agent-Automation"  # dashboard names cannot contain spaces
DASHBOARD_TITLE = "Agent Automation"
API_NAME = "powerx-agent-internal"
API_STAGE = "v1"
APPCONFIG_APPLICATION = "powerx-agent"
APPCONFIG_PROFILE = "feature-flags"
PYTHON_VERSION = "3.11"  # Lambda runtime; layers/build.py builds the dependency layer for the same version

# Context keys (cdk.json "context", or `cdk deploy -c key=value`) and their defaults.
CONTEXT_DEFAULTS: dict[str, object] = {
    "resourcePrefix": "",  # prefixed to every physical name (tables, queues, bus, functions, ...)
    "environmentName": "prod",  # AppConfig environment name
    "pluginRuntimeUrl": "https://plugins.example.internal",
    "notificationsUrl": "https://notifications.example.internal",
    "opsUrl": "https://ops.example.internal",
    "alarmEmail": "",  # optional e-mail subscription of the alarm topic
    "alarmSubscriptions": [],  # optional list of HTTPS endpoints (Slack / PagerDuty webhooks)
    "logRetentionDays": 30,
    "auditLogRetentionDays": 365,
    "archiveRetentionDays": 30,
    "idempotencyExpirySeconds": 86400,
    "reservedConcurrency": {},  # {"<function key>": N}; unset = unreserved
    "apiThrottleRate": 50,
    "apiThrottleBurst": 100,
    "removalPolicy": "retain",  # retain | destroy (tables, keys, audit log group)
    "layerAssetDir": "",  # a prepared layer directory (contains python/); empty = build via layers/build.py
    "cdkNag": True,  # run AwsSolutionsChecks at synth
}

NODE_FUNCTIONS = ("node_plugin", "node_notify", "node_review", "workflow")  # what Step Functions may invoke
NODE_ARN_ENV = {
    "node_plugin": "NODE_PLUGIN_ARN",
    "node_notify": "NODE_NOTIFY_ARN",
    "node_review": "NODE_REVIEW_ARN",
    "workflow": "WORKFLOW_FN_ARN",
}
TABLE_ENV = {
    spec.EVENTS_TABLE.name: "EVENTS_TABLE",
    spec.WORKFLOWS_TABLE.name: "WORKFLOWS_TABLE",
    spec.STRATEGIES_TABLE.name: "STRATEGIES_TABLE",
    spec.TENANTS_TABLE.name: "TENANTS_TABLE",
    spec.AUDIT_TABLE.name: "AUDIT_TABLE",
}
APPCONFIG_ENV = ("APPCONFIG_APPLICATION", "APPCONFIG_ENVIRONMENT", "APPCONFIG_PROFILE", "FLAGS_STORE")

_GET = "dynamodb:GetItem"
_PUT = "dynamodb:PutItem"
_UPDATE = "dynamodb:UpdateItem"
_QUERY = "dynamodb:Query"
AUDIT_APPEND = (_PUT, _QUERY)  # hash chain: read the last record of the key, then a conditional put

# DynamoDB access per function: table -> actions (on the table ARN). Index queries are listed apart.
TABLE_ACCESS: dict[str, dict[str, tuple[str, ...]]] = {
    "ingest": {
        spec.EVENTS_TABLE.name: (_GET, _PUT, _UPDATE),
        spec.TENANTS_TABLE.name: (_GET,),
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "matcher": {
        spec.EVENTS_TABLE.name: (_GET, _UPDATE),
        spec.WORKFLOWS_TABLE.name: (_GET, _PUT, _UPDATE),
        spec.STRATEGIES_TABLE.name: (_GET, _QUERY),
        spec.TENANTS_TABLE.name: (_GET,),
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "node_plugin": {
        spec.WORKFLOWS_TABLE.name: (_GET, _UPDATE),
        spec.TENANTS_TABLE.name: (_GET,),
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "node_notify": {
        spec.WORKFLOWS_TABLE.name: (_GET, _UPDATE),
        spec.TENANTS_TABLE.name: (_GET,),
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "node_review": {
        spec.WORKFLOWS_TABLE.name: (_GET, _PUT, _UPDATE),
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "workflow": {
        spec.EVENTS_TABLE.name: (_UPDATE,),
        spec.WORKFLOWS_TABLE.name: (_GET, _UPDATE, _QUERY),
        spec.TENANTS_TABLE.name: (_GET,),
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "audit_stream": {},  # reads the audit table's stream only (event source mapping)
    "callbacks_api": {
        spec.WORKFLOWS_TABLE.name: (_GET, _UPDATE),
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "replay_api": {
        spec.TENANTS_TABLE.name: (_GET,),
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
}
# Query on one named index: function -> (table, index). node_review counts the open review backlog.
INDEX_QUERIES: dict[str, tuple[tuple[str, str], ...]] = {
    "node_review": ((spec.WORKFLOWS_TABLE.name, "gsi1"),),
}

# Which functions use what (besides tables). Used for both environment and grants.
USES_APPCONFIG = ("ingest", "matcher", "audit_stream")  # agent-orchestrator / strategy-library / audit-streaming
USES_DOWNSTREAM_SECRET = ("matcher", "node_plugin", "node_notify", "node_review", "workflow")
USES_SIGNING_SECRET = ("callbacks_api", "replay_api")
DOWNSTREAM_URLS: dict[str, tuple[str, ...]] = {
    "matcher": ("NOTIFICATIONS_URL", "OPS_URL"),  # unmatched events escalate
    "node_plugin": ("PLUGIN_RUNTIME_URL",),
    "node_notify": ("NOTIFICATIONS_URL",),
    "node_review": ("OPS_URL",),
    "workflow": ("NOTIFICATIONS_URL", "OPS_URL"),  # escalation after retries are exhausted
}
