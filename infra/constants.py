"""Names, defaults and the per-function wiring (environment + grants) of the deployed stack.

Resource names come from ``powerx_agent.spec`` (the one resource specification shared with the
embedded runtime); this module only adds what is specific to the AWS deployment.
"""

from __future__ import annotations

from powerx_agent import spec
from powerx_agent.settings import Env

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
    "alarmSubscriptions": [],  # optional list of further HTTPS endpoints subscribed to the alarm topic
    "pagerDutyIntegrationUrl": "",  # PagerDuty "Amazon CloudWatch" integration URL: an HTTPS subscription
    "slackWorkspaceId": "",  # AWS Chatbot: the Slack workspace (team) id authorised once in the Chatbot console
    "slackChannelId": "",  # ... and the channel id: both given = a Chatbot Slack channel configuration
    "logRetentionDays": 30,  # functions, API, state machines
    "stateMachineLogLevel": "ALL",  # ALL | ERROR | FATAL | OFF: what every state machine logs (Express: its only history)
    "stateMachineLogExecutionData": False,  # inputs and outputs in the log records (tenant payloads: off by default)
    "stateMachineTracing": True,  # X-Ray tracing on every state machine
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
    "node_plugin": Env.NODE_PLUGIN_ARN,
    "node_notify": Env.NODE_NOTIFY_ARN,
    "node_review": Env.NODE_REVIEW_ARN,
    "workflow": Env.WORKFLOW_FN_ARN,
}
TABLE_ENV = {
    spec.EVENTS_TABLE.name: Env.EVENTS_TABLE,
    spec.WORKFLOWS_TABLE.name: Env.WORKFLOWS_TABLE,
    spec.STRATEGIES_TABLE.name: Env.STRATEGIES_TABLE,
    spec.TENANTS_TABLE.name: Env.TENANTS_TABLE,
    spec.AUDIT_TABLE.name: Env.AUDIT_TABLE,
}

_GET = "dynamodb:GetItem"
_PUT = "dynamodb:PutItem"
_UPDATE = "dynamodb:UpdateItem"
_QUERY = "dynamodb:Query"
AUDIT_APPEND = (_PUT, _QUERY)  # adapters/audit_store.py: Query the chain's last record, then a conditional put

# DynamoDB access per function, traced from the code each handler reaches (docs/architecture.md has the
# table with the code line behind every action): table -> actions on the table ARN. Only ConsistentRead
# GetItem/Query, conditional PutItem/UpdateItem; no function scans or deletes (those are CLI/repair paths).
TABLE_ACCESS: dict[str, dict[str, tuple[str, ...]]] = {
    "ingest": {
        spec.EVENTS_TABLE.name: (_GET, _PUT, _UPDATE),  # EventsStore.claim (put/get/takeover), .finish
        spec.TENANTS_TABLE.name: (_GET,),  # TenantsStore.get (tenant scope)
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "matcher": {
        spec.EVENTS_TABLE.name: (_GET, _UPDATE),  # EventsStore.get (already done?), .finish
        spec.WORKFLOWS_TABLE.name: (_GET, _PUT, _UPDATE),  # create/update_meta/transition; escalate(): review item
        # StrategiesStore.revision_head / .documents -> .version (GetItem); .artifact: the revision's chunks (Query)
        spec.STRATEGIES_TABLE.name: (_GET, _QUERY),
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "node_plugin": {
        spec.WORKFLOWS_TABLE.name: (_GET, _PUT, _UPDATE),  # transition_node, get_node; put_/close_callback
        spec.TENANTS_TABLE.name: (_GET,),  # allowed_plugins check
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "node_notify": {
        spec.WORKFLOWS_TABLE.name: (_GET, _UPDATE),  # transition_node, get_node (reuse a SUCCEEDED node)
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "node_review": {
        spec.WORKFLOWS_TABLE.name: (_GET, _PUT, _UPDATE),  # transition_node; escalate(): get/put/mark review
        spec.TENANTS_TABLE.name: (_GET,),  # notify targets of the tenant
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "workflow": {
        # get (Query of the workflow's items), transitions, escalate(): get/put/mark review
        spec.WORKFLOWS_TABLE.name: (_GET, _PUT, _UPDATE, _QUERY),
        spec.TENANTS_TABLE.name: (_GET,),  # notify targets of the tenant (escalation)
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "audit_stream": {  # besides the stream (event source mapping)
        # StreamCursor (FLAGS / AUDIT_CURSOR item): hold = conditional update, take = a read (is there a
        # cursor?) then a conditional delete; match/canary.py tally: revision head + canary run (get),
        # tallies (conditional update), an automatic abort (end_canary: one TransactWriteItems of two
        # updates, the run and the revision item; IAM authorizes a transaction by its items' actions)
        spec.STRATEGIES_TABLE.name: (_GET, "dynamodb:DeleteItem", _UPDATE),
        # canary tally: the arm of a workflow decided in another process (Query of its chain) and the
        # audit record of an automatic abort (strategy.canary_aborted); catch-up after the flag
        # audit-streaming was off queries the by_time index (listed in INDEX_QUERIES), then each chain it names
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "callbacks_api": {
        # get_callback/get_review, close_*, transition_node, WorkflowsStore.get (Query) for the audit fields
        spec.WORKFLOWS_TABLE.name: (_GET, _UPDATE, _QUERY),
        spec.AUDIT_TABLE.name: AUDIT_APPEND,
    },
    "replay_api": {
        spec.EVENTS_TABLE.name: (_GET,),  # submit_replay: duplicate / conflict / deferred answered at once
        spec.TENANTS_TABLE.name: (_GET,),  # check_tenant_scope
        spec.AUDIT_TABLE.name: AUDIT_APPEND,  # replay_api._refused: a refused event is audited (event.rejected)
    },
    "backlog_gauge": {},  # only the gsi1 count of open reviews (INDEX_QUERIES)
}
# Query on one named index: function -> ((table, index), ...).
# gsi1: escalation/backlog.py emit_backlog -> WorkflowsStore.count_open_reviews (Select COUNT on "REVIEW#OPEN"),
# called by escalate() (matcher, node_review, workflow) and by a closed review (callbacks_api).
# by_time: audit/stream.py forward -> AuditStore.since (catch-up after audit-streaming was off).
_GSI1 = ((spec.WORKFLOWS_TABLE.name, "gsi1"),)
INDEX_QUERIES: dict[str, tuple[tuple[str, str], ...]] = {
    "matcher": _GSI1,
    "node_review": _GSI1,
    "workflow": _GSI1,
    "callbacks_api": _GSI1,
    "backlog_gauge": _GSI1,  # handlers/backlog_gauge.py, every minute (spec.BACKLOG_SCHEDULE)
    "audit_stream": ((spec.AUDIT_TABLE.name, "by_time"),),
}

# Step Functions actions per function on the ``agent-*`` state machine ARNs (besides the matcher's PassRole).
STATES_ACCESS: dict[str, tuple[str, ...]] = {
    # match/service.py _ensure_state_machine -> adapters/state_machines.py ensure_state_machine: the hash-named machine (describe,
    # create with publish=True and tags) and the per-strategy alias machine (create/update with
    # publish=True -> PublishStateMachineVersion; version map in tags: List/Tag/UntagResource; alias
    # "live": Describe/Create/UpdateStateMachineAlias); matcher._start: StartExecution
    "matcher": ("states:DescribeStateMachine", "states:CreateStateMachine", "states:UpdateStateMachine",
                "states:PublishStateMachineVersion", "states:TagResource", "states:UntagResource",
                "states:ListTagsForResource", "states:DescribeStateMachineAlias",
                "states:CreateStateMachineAlias", "states:UpdateStateMachineAlias", "states:StartExecution"),
    # runner._plugin: an async plugin that answered synchronously after all resumes its own task;
    # runner._reuse: a node already SUCCEEDED (retry generation / filled by hand) resumes its waiting task
    "node_plugin": ("states:SendTaskSuccess",),
    "node_review": ("states:SendTaskSuccess",),  # runner._reuse (a review node waits for a task token)
    # nodes/workflow.py hand_off: an Express head starts its Standard continuation
    "workflow": ("states:StartExecution",),
    # nodes/callbacks.py: heartbeat, success, failure of waiting plugin and review nodes
    "callbacks_api": ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"),
}

# Which functions use what (besides tables). Used for both environment and grants.
# agent-orchestrator (ingest; replay_api: resume DEFERRED) / agent-strategy-library (matcher) / audit-streaming
USES_APPCONFIG = ("ingest", "matcher", "audit_stream", "replay_api")
# adapters/downstream.py Downstream._headers reads the downstream secret for every HTTP call
USES_DOWNSTREAM_SECRET = ("matcher", "node_plugin", "node_notify", "node_review", "workflow", "audit_stream")
# handlers/_api.py replay_caller: each replay caller's keys and tenants
USES_REPLAY_SECRET = ("replay_api",)
# handlers/_api.py callback_grant verifies callback URLs; nodes/calls.py Downstream.callback_url signs them
# for plugin calls (node_plugin) and review work orders (escalate(): matcher, node_review, workflow)
SIGNS_CALLBACK_URLS = ("node_plugin", "matcher", "node_review", "workflow")
USES_CALLBACK_SECRET = ("callbacks_api", *SIGNS_CALLBACK_URLS)
DOWNSTREAM_URLS: dict[str, tuple[str, ...]] = {
    "matcher": (Env.NOTIFICATIONS_URL, Env.OPS_URL),  # unmatched events / refused plugins escalate
    "node_plugin": (Env.PLUGIN_RUNTIME_URL,),
    "node_notify": (Env.NOTIFICATIONS_URL,),
    "node_review": (Env.NOTIFICATIONS_URL, Env.OPS_URL),  # escalate(): ops work order + notification
    "workflow": (Env.NOTIFICATIONS_URL, Env.OPS_URL),  # escalation after retries are exhausted
    "audit_stream": (Env.NOTIFICATIONS_URL,),  # match/canary.py: an automatic canary abort notifies the owner
}
# Functions whose handler builds a MetricsRecorder (deps.metrics()); EMF goes to stdout on Lambda.
RECORDS_METRICS = ("ingest", "matcher", "node_plugin", "node_notify", "node_review", "workflow", "audit_stream",
                   "callbacks_api", "backlog_gauge", "replay_api")
# Where the baseline strategy library lives inside the code asset (the matcher reads it when the flag
# agent-strategy-library is off or LIBRARY_SOURCE=dir): infra/components/functions.py stages strategies/ there.
LAMBDA_TASK_ROOT = "/var/task"
ASSET_STRATEGIES_DIR = "strategies"
# ... and the event-type payload contracts ingest applies (config/event-types, EVENT_CONTRACTS_DIR)
ASSET_CONTRACTS_DIR = "event-types"
