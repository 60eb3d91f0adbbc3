"""matcher → Step Functions: the input of a workflow execution (``$``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from powerx_agent.handoffs import Handoff


class WorkflowRef(Handoff):
    """The execution input's ``workflow`` block, passed to every task (``$.workflow``)."""

    workflow_id: str
    tenant_id: str
    strategy_id: str | None = None  # the matcher always writes it; a callback for a vanished workflow has none
    event_id: str | None = None
    idempotency_key: str | None = None
    event_type: str | None = None
    strategy_version: int | None = None
    traceparent: str = ""
    # set by ``powerx-agent workflow retry`` (ops/workflow.py) on the new execution's input
    generation: int = 1
    reuse: list[str] | None = None
    retry_of: str | None = None
    # set by the Express head's hand-off (nodes/workflow.py): attempts each node made there
    attempts_before: dict[str, int] | None = None
    # and the nodes that failed for good there: the continuation escalates on them without calling them again
    failed_before: list[str] | None = None


class ExecutionInput(Handoff):
    workflow: WorkflowRef
    variables: dict[str, Any] = Field(default_factory=dict)
    when: dict[str, bool] = Field(default_factory=dict)  # node when-key → condition held at match time
    continuation: str | None = None  # an Express head's Standard machine (ARN), where a hand-off goes
