"""Every kind of audit record the engine writes (docs/operations.md, "Audit trail").

``AuditEntry`` accepts only these, so a misspelt kind fails where it is written, not in ``audit
verify`` weeks later. Members equal their string (``AuditKind.DECISION == "decision"``): records read
back from DynamoDB or the log group compare with them directly.
"""

from __future__ import annotations

from enum import StrEnum


class AuditKind(StrEnum):
    # ingest
    EVENT_ACCEPTED = "event.accepted"
    EVENT_DEFERRED = "event.deferred"
    EVENT_DUPLICATE = "event.duplicate"
    EVENT_REJECTED = "event.rejected"
    EVENT_RESUMED = "event.resumed"
    EVENT_TAKEOVER = "event.takeover"
    # match
    DECISION = "decision"
    WORKFLOW_STARTED = "workflow.started"
    # nodes and workflow transitions
    NODE_RUNNING = "node.running"
    NODE_WAITING = "node.waiting"
    NODE_SUCCEEDED = "node.succeeded"
    NODE_ATTEMPT_FAILED = "node.attempt_failed"
    NODE_FAILED = "node.failed"
    NODE_SKIPPED = "node.skipped"
    NODE_STOPPED = "node.stopped"  # ended by an operator's stop or a failing sibling, not a failure of its own
    NODE_REUSED = "node.reused"
    CALLBACK_RECEIVED = "callback.received"
    CALLBACK_EXPIRED = "callback.expired"
    WORKFLOW_SUCCEEDED = "workflow.succeeded"
    WORKFLOW_FAILED = "workflow.failed"
    WORKFLOW_ESCALATED = "workflow.escalated"
    WORKFLOW_HANDED_OFF = "workflow.handed_off"  # the Express head handed the workflow to its Standard machine
    # hand-over to people
    ESCALATION_OPENED = "escalation.opened"
    REVIEW_REQUESTED = "review.requested"
    REVIEW_CLOSED = "review.closed"
    REVIEW_CANCELLED = "review.cancelled"
    ESCALATION_RESENT = "escalation.resent"
    # operators
    WORKFLOW_STOPPED = "workflow.stopped"
    WORKFLOW_STOP_REISSUED = "workflow.stop_reissued"
    WORKFLOW_RETRIED = "workflow.retried"
    WORKFLOW_RETRY_FAILED = "workflow.retry_failed"  # the retry's start failed: the nodes were put back
    NODE_RESET = "node.reset"
    NODE_FILLED = "node.filled"
    STRATEGY_PUBLISHED = "strategy.published"
    STRATEGY_APPROVED = "strategy.approved"
    STRATEGY_ROLLED_BACK = "strategy.rolled_back"
    STRATEGY_PUBLISH_FAILED = "strategy.publish_failed"
    STRATEGY_APPROVE_FAILED = "strategy.approve_failed"
    STRATEGY_ROLLBACK_FAILED = "strategy.rollback_failed"
    STRATEGY_CANARY_STARTED = "strategy.canary_started"
    STRATEGY_CANARY_PROMOTED = "strategy.canary_promoted"
    STRATEGY_CANARY_ABORTED = "strategy.canary_aborted"
    LIBRARY_REBUILT = "library.rebuilt"
    FLAG_CHANGED = "flag.changed"
    FLAG_CHANGE_FAILED = "flag.change_failed"
    KEYS_ROTATED = "keys.rotated"
    KEYS_RETIRED = "keys.retired"
    KEYS_CALLER_ADDED = "keys.caller_added"
    KEYS_CALLER_REMOVED = "keys.caller_removed"
    KEYS_CALLER_SCOPED = "keys.caller_scoped"
    TENANT_CREATED = "tenant.created"
    TENANT_CHANGED = "tenant.changed"
    TENANT_DISABLED = "tenant.disabled"
    TENANT_REVERTED = "tenant.reverted"
    RELEASE_ROLLED_BACK = "release.rolled_back"
    RELEASE_ROLLBACK_FAILED = "release.rollback_failed"
    # repair
    AUDIT_REPAIRED = "audit.repaired"
    CHAIN_REBASED = "chain.rebased"
    REPAIR_APPLIED = "repair.applied"
    REPAIR_FAILED = "repair.failed"


WORKFLOW_OUTCOMES: frozenset[AuditKind] = frozenset({
    AuditKind.WORKFLOW_SUCCEEDED, AuditKind.WORKFLOW_ESCALATED, AuditKind.WORKFLOW_FAILED,
    AuditKind.WORKFLOW_STOPPED, AuditKind.ESCALATION_OPENED})
"""The records that end an accepted event's story (``audit verify``'s completeness rule)."""
