"""One resource specification for the CDK stack and the embedded runtime (docs/architecture.md).

The CDK constructs (``infra/``) and the local deployer (``powerx_agent.local.deployer``) both build
their resources from these definitions, and an infrastructure test compares the synthesized
template with what the local runtime creates, so the two cannot drift apart.

Names are logical: the deployed stack may prefix them (``<prefix>agent_events``); the local runtime
uses them as they are. Pure data: no boto3 here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NAMESPACE = "PowerX/Agent"
BUS_NAME = "powerx-agent"
INGEST_RULE_NAME = "powerx-agent-ingest"
UNROUTED_RULE_NAME = "powerx-agent-unrouted"
ARCHIVE_NAME = "powerx-agent-archive"
AUDIT_LOG_GROUP = "/powerx/agent/audit"
METRICS_LOG_GROUP = "/powerx/agent/metrics"  # EMF lines of the embedded runtime (on Lambda: stdout)
STATE_MACHINE_LOG_GROUP = "/aws/vendedlogs/states/powerx-agent"  # every agent-* state machine logs here
STATE_MACHINE_PREFIX = "agent-"
WORKFLOW_ROLE_NAME = "powerx-agent-workflow"
LAMBDA_ROLE_NAME = "powerx-agent-lambda"
REPLAY_SECRET_NAME = "powerx/agent/replay-keys"
"""Replay callers: ``{"callers": {"<caller>": {"tenants": [...], "active": "k1", "k1": ..., "k2": ...}}}``."""
CALLBACK_SECRET_NAME = "powerx/agent/callback-keys"
"""The engine's own key for signed callback URLs: ``{"active": "k1", "k1": ..., "k2": ...}``."""
DOWNSTREAM_SECRET_NAME = "powerx/agent/downstream-credentials"
EVENT_SOURCES = ("powerx.plugins", "powerx.tenants", "powerx.ops", "powerx.replay")
"""The sources the bus routes to ingest (docs/intake.md); any other source goes to the unrouted queue."""


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition_key: str
    sort_key: str | None = None
    projection: str = "ALL"
    """ALL | KEYS_ONLY. DynamoDB writes to an index only when a write changes the index's keys or its
    projected attributes: with KEYS_ONLY, an update of anything but the keys writes nothing to the index."""


@dataclass(frozen=True)
class TableSpec:
    name: str
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None
    stream: str | None = None  # NEW_IMAGE | NEW_AND_OLD_IMAGES | None
    indexes: tuple[IndexSpec, ...] = ()
    number_keys: tuple[str, ...] = ()  # key attributes of DynamoDB type N; every other key attribute is S

    def attribute_type(self, name: str) -> str:
        """"N" or "S": the DynamoDB type of a key attribute (the stack and the local deployer agree)."""
        return "N" if name in self.number_keys else "S"

    @property
    def key_attributes(self) -> tuple[str, ...]:
        names = [self.partition_key, self.sort_key]
        for index in self.indexes:
            names += [index.partition_key, index.sort_key]
        return tuple(dict.fromkeys(n for n in names if n))


EVENTS_TABLE = TableSpec("agent_events", "pk", ttl_attribute="expires_at")
WORKFLOWS_TABLE = TableSpec(
    "agent_workflows",
    "pk",
    "sk",
    indexes=(
        # open review tasks: gsi1pk = "REVIEW#OPEN"; and workflows by tenant created before by_tenant existed:
        # gsi1pk = "T#<tenant>#<shard>" (audit/shards.py; "WF#<tenant>" before the key was sharded)
        IndexSpec("gsi1", "gsi1pk", "gsi1sk"),
        # workflows by tenant: tpk = "T#<tenant>#<shard>", tsk = "<created_at>#<workflow id>"; keys only, so a
        # status change of META (which rewrites the whole item) is no index write (docs/write-path.md)
        IndexSpec("by_tenant", "tpk", "tsk", projection="KEYS_ONLY"),
    ),
)
STRATEGIES_TABLE = TableSpec("agent_strategies", "pk", "sk")
TENANTS_TABLE = TableSpec("agent_tenants", "tenant_id")
AUDIT_TABLE = TableSpec("agent_audit", "pk", "seq", stream="NEW_IMAGE",
                        indexes=(IndexSpec("by_time", "day", "ts_seq"),),
                        number_keys=("seq",))  # audit_store writes seq as an integer
TABLES: tuple[TableSpec, ...] = (EVENTS_TABLE, WORKFLOWS_TABLE, STRATEGIES_TABLE, TENANTS_TABLE, AUDIT_TABLE)


@dataclass(frozen=True)
class FunctionSpec:
    key: str
    name: str
    handler: str
    timeout: int
    memory: int = 512
    description: str = ""
    environment: tuple[str, ...] = ()


_H = "powerx_agent.handlers"
FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("ingest", "powerx-agent-ingest", f"{_H}.ingest.handler", 30,
                 description="Validates envelopes, tenant scope and idempotency; queues for matching"),
    FunctionSpec("matcher", "powerx-agent-matcher", f"{_H}.matcher.handler", 60, 1024,
                 description="Matches strategies, compiles the taskflow, starts the execution"),
    FunctionSpec("node_plugin", "powerx-agent-node-plugin", f"{_H}.node_plugin.handler", 120,
                 description="Runs plugin nodes against the plugin runtime"),
    FunctionSpec("node_notify", "powerx-agent-node-notify", f"{_H}.node_notify.handler", 30,
                 description="Sends agent-task notifications"),
    FunctionSpec("node_review", "powerx-agent-node-review", f"{_H}.node_review.handler", 30,
                 description="Opens manual review work orders and stores the task token"),
    FunctionSpec("workflow", "powerx-agent-workflow", f"{_H}.workflow.handler", 60,
                 description="Workflow transitions: skip, complete, escalate"),
    FunctionSpec("audit_stream", "powerx-agent-audit-stream", f"{_H}.audit_stream.handler", 60,
                 description="Forwards audit records from DynamoDB Streams to CloudWatch Logs + EMF"),
    FunctionSpec("callbacks_api", "powerx-agent-callbacks-api", f"{_H}.callbacks_api.handler", 30,
                 description="POST /internal/agent/callbacks (signed)"),
    FunctionSpec("replay_api", "powerx-agent-replay-api", f"{_H}.replay_api.handler", 30,
                 description="POST /internal/agent/events (signed manual replay)"),
    FunctionSpec("backlog_gauge", "powerx-agent-backlog-gauge", f"{_H}.backlog_gauge.handler", 30, 256,
                 description="Every minute (schedule): the open manual review backlog gauge"),
)
FUNCTIONS_BY_KEY = {f.key: f for f in FUNCTIONS}

LIVE_ALIAS = "live"
"""Every trigger (rule target, event source mappings, API integrations, Step Functions tasks) invokes a
function through this alias; a release publishes a version of every function and points the alias at
it, ``powerx-agent release rollback`` points it back (docs/runbook.md)."""
RELEASE_PREFIX = "powerx-agent release "


def release_description(release_id: str) -> str:
    """The description of every version a release publishes (and of the alias pointing at it)."""
    return f"{RELEASE_PREFIX}{release_id}"


def release_of(description: str | None) -> str | None:
    """The release id in a version's description, or None for a version no release published."""
    text = description or ""
    return text[len(RELEASE_PREFIX):].strip() or None if text.startswith(RELEASE_PREFIX) else None


@dataclass(frozen=True)
class QueueSpec:
    name: str
    visibility_timeout: int
    max_receive_count: int | None = 5  # None: this queue is itself a dead-letter queue
    dlq: str | None = None
    retention_seconds: int = 14 * 24 * 3600
    max_message_bytes: int = 1024 * 1024
    """SQS's largest message (1 MiB), stated rather than left to the default: a match message carries a
    whole event (a detail of up to 256 KiB) and its context, and a rejection record a whole event."""


DLQ_VISIBILITY_SECONDS = 30  # nothing consumes a dead-letter queue automatically; operators read it
SQS_VISIBILITY_FACTOR = 6
"""AWS Lambda's guidance for an SQS event source: the queue's visibility timeout is at least six times
the function's timeout plus the mapping's MaximumBatchingWindowInSeconds, so a batch still being
processed (or retried after throttling) never becomes visible again and runs twice
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html)."""


def sqs_visibility_timeout(function_timeout: int, batching_window: int) -> int:
    return SQS_VISIBILITY_FACTOR * function_timeout + batching_window


@dataclass(frozen=True)
class EventSourceSpec:
    function: str  # FunctionSpec.key
    source: str  # queue name or table name
    kind: str  # "sqs" | "dynamodb"
    batch_size: int = 10
    batching_window: int = 0  # MaximumBatchingWindowInSeconds
    report_batch_item_failures: bool = True
    bisect_on_error: bool = True  # streams only
    retry_attempts: int = 10  # streams only
    on_failure: str | None = None  # streams only: queue that receives the metadata of a batch given up on


MATCH_QUEUE_NAME = "powerx-agent-match"
MATCH_MAPPING = EventSourceSpec("matcher", MATCH_QUEUE_NAME, "sqs", batch_size=10, batching_window=1)
AUDIT_STREAM_DLQ = QueueSpec("powerx-agent-audit-stream-dlq", DLQ_VISIBILITY_SECONDS, None)
AUDIT_MAPPING = EventSourceSpec("audit_stream", AUDIT_TABLE.name, "dynamodb", batch_size=100,
                                on_failure=AUDIT_STREAM_DLQ.name)
EVENT_SOURCES_MAPPINGS: tuple[EventSourceSpec, ...] = (MATCH_MAPPING, AUDIT_MAPPING)

MATCH_DLQ = QueueSpec("powerx-agent-match-dlq", DLQ_VISIBILITY_SECONDS, None)
MATCH_QUEUE = QueueSpec(
    MATCH_QUEUE_NAME,
    sqs_visibility_timeout(FUNCTIONS_BY_KEY[MATCH_MAPPING.function].timeout, MATCH_MAPPING.batching_window),
    5, MATCH_DLQ.name)
INGEST_DLQ = QueueSpec("powerx-agent-ingest-dlq", DLQ_VISIBILITY_SECONDS, None)  # rule target DLQ + rejected events
UNROUTED_QUEUE = QueueSpec("powerx-agent-unrouted", DLQ_VISIBILITY_SECONDS, None)  # events of no accepted source
QUEUES: tuple[QueueSpec, ...] = (MATCH_DLQ, MATCH_QUEUE, INGEST_DLQ, AUDIT_STREAM_DLQ, UNROUTED_QUEUE)


@dataclass(frozen=True)
class RuleSpec:
    name: str
    bus: str
    pattern: dict = field(default_factory=dict)
    target_function: str | None = "ingest"  # a FunctionSpec.key, or None when the target is a queue
    target_queue: str | None = None  # a QueueSpec.name
    dlq: str = INGEST_DLQ.name  # where EventBridge puts what it could not deliver to the target
    max_retry_attempts: int = 8
    max_event_age_seconds: int = 3600


INGEST_RULE = RuleSpec(
    INGEST_RULE_NAME,
    BUS_NAME,
    # every PowerX source; an envelope that does not carry a tenant still reaches ingest so it is
    # rejected with a reason and kept, instead of being silently dropped by the rule
    pattern={"source": list(EVENT_SOURCES)},
)
UNROUTED_RULE = RuleSpec(
    UNROUTED_RULE_NAME,
    BUS_NAME,
    # EventBridge has no "else": this is the ingest rule's complement (every source but the accepted
    # ones), so an event matches exactly one of the two rules and nothing put on the bus vanishes
    pattern={"source": [{"anything-but": list(EVENT_SOURCES)}]},
    target_function=None,
    target_queue=UNROUTED_QUEUE.name,
)
RULES: tuple[RuleSpec, ...] = (INGEST_RULE, UNROUTED_RULE)


@dataclass(frozen=True)
class ScheduleSpec:
    """An EventBridge schedule rule on the account's default bus that invokes one function."""

    name: str
    expression: str  # rate(N minute[s])
    target_function: str  # a FunctionSpec.key

    @property
    def every_seconds(self) -> int:
        amount, unit = self.expression.removeprefix("rate(").removesuffix(")").split()
        return int(amount) * {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600}[unit]


BACKLOG_SCHEDULE = ScheduleSpec("powerx-agent-backlog-gauge", "rate(1 minute)", "backlog_gauge")
"""The review backlog gauge is a level, not an event: it is emitted every minute whether or not a review
opened or closed, so an alarm on it sees a stuck backlog as what it is (docs/operations.md)."""
SCHEDULES: tuple[ScheduleSpec, ...] = (BACKLOG_SCHEDULE,)


API_ROUTES = {
    "replay_api": ("POST", "/internal/agent/events"),
    "callbacks_api": ("POST", "/internal/agent/callbacks"),
}

METRICS = {
    "hit_rate": "agent.strategy.hit_rate",
    "generated": "agent.workflow.generated_total",
    "node_success": "agent.node.success_total",
    "node_failure": "agent.node.failure_total",
    "escalations": "agent.manual_escalation_total",
    "latency": "agent.workflow.latency_p95",
    "rejected": "agent.event.rejected_total",
    "duplicates": "agent.event.duplicate_total",
    "library_errors": "agent.strategy.library_errors_total",
    "review_backlog": "agent.review.backlog",
    "flag_store_errors": "agent.flags.store_errors_total",
    "workflow_finished": "agent.workflow.finished_total",
    "workflow_automated": "agent.workflow.automated_success_total",
    "audit_completeness": "agent.audit.completeness",
    "callback_refused": "agent.callback.refused_total",
    "canary_aborted": "agent.strategy.canary_aborted_total",
}

FEATURE_FLAGS = ("agent-orchestrator", "agent-strategy-library", "audit-streaming")
FLAGS_CONTENT_TYPE = "application/json"


def feature_flags_document() -> dict:
    """The flag document the stack deploys and every store holds: Powertools' feature-flag schema
    (``{"<flag>": {"default": bool, "rules": {...}}}``), every flag on (docs/operations.md, "Feature flags")."""
    return {name: {"default": True} for name in FEATURE_FLAGS}
