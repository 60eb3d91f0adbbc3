"""The statuses of a workflow and of a node, the one definition of which are active and which are
terminal, and the forward-only moves between them (docs/architecture.md, "Vocabularies").

Statuses are ``StrEnum`` members: each equals its string (``NodeStatus.RUNNING == "RUNNING"``), so
items read back from DynamoDB compare with them, and JSON writes them as their value.
"""

from __future__ import annotations

from enum import StrEnum


class WorkflowStatus(StrEnum):
    """``agent_workflows`` META ``status``."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    ESCALATED = "ESCALATED"
    STOPPED = "STOPPED"


class NodeStatus(StrEnum):
    """``agent_workflows`` NODE item ``status``. A node is never STOPPED: stopping a workflow fails its
    running nodes and skips its pending ones."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    ESCALATED = "ESCALATED"


class EventStatus(StrEnum):
    """An event's status as ``powerx-agent events`` reads it from the event's chain."""

    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    DEFERRED = "DEFERRED"
    REJECTED = "REJECTED"


WORKFLOW_ACTIVE: frozenset[WorkflowStatus] = frozenset({WorkflowStatus.PENDING, WorkflowStatus.RUNNING})
WORKFLOW_TERMINAL: frozenset[WorkflowStatus] = frozenset(WorkflowStatus) - WORKFLOW_ACTIVE
NODE_ACTIVE: frozenset[NodeStatus] = frozenset({NodeStatus.PENDING, NodeStatus.RUNNING})
NODE_TERMINAL: frozenset[NodeStatus] = frozenset(NodeStatus) - NODE_ACTIVE

# forward only: the statuses each status may be entered from (conditional writes in
# adapters/workflows_store.py); retries of a workflow by an operator start a new attempt
# generation instead (docs/operations-takeover.md)
NODE_FROM: dict[NodeStatus, tuple[NodeStatus, ...]] = {
    NodeStatus.RUNNING: (NodeStatus.PENDING, NodeStatus.RUNNING),
    NodeStatus.SUCCEEDED: (NodeStatus.PENDING, NodeStatus.RUNNING),
    NodeStatus.FAILED: (NodeStatus.PENDING, NodeStatus.RUNNING),
    NodeStatus.SKIPPED: (NodeStatus.PENDING,),
    NodeStatus.ESCALATED: (NodeStatus.PENDING, NodeStatus.RUNNING, NodeStatus.FAILED),
}
WORKFLOW_FROM: dict[WorkflowStatus, tuple[WorkflowStatus, ...]] = {
    WorkflowStatus.RUNNING: (WorkflowStatus.PENDING,),
    WorkflowStatus.SUCCEEDED: (WorkflowStatus.PENDING, WorkflowStatus.RUNNING),
    WorkflowStatus.FAILED: (WorkflowStatus.PENDING, WorkflowStatus.RUNNING),
    WorkflowStatus.ESCALATED: (WorkflowStatus.PENDING, WorkflowStatus.RUNNING, WorkflowStatus.FAILED),
    WorkflowStatus.STOPPED: (WorkflowStatus.PENDING, WorkflowStatus.RUNNING),
}
