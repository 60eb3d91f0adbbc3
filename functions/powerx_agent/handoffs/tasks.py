"""state machine → functions: the ``Parameters.Payload`` of each Task state (``powerx_agent.taskflow.asl``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from powerx_agent.handoffs import Handoff, HandoffInvalid, describe
from powerx_agent.handoffs.execution import WorkflowRef


class NodeRetryDoc(Handoff):
    attempts: int = 1


class NodeNotifyDoc(Handoff):
    to: str
    template: str


class NodeReviewDoc(Handoff):
    queue: str
    reason: str


class NodeCallbackDoc(Handoff):
    timeout: float = 600.0


class NodeDoc(Handoff):
    """A node as compiled into its Task state (``taskflow.model.NodeSpec`` without ``after``/``when``).
    ``kind`` is checked by the function that runs it (each runs one kind)."""

    id: str
    kind: str
    plugin: str | None = None
    notify: NodeNotifyDoc | None = None
    manual_review: NodeReviewDoc | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    retry: NodeRetryDoc | None = None
    callback: NodeCallbackDoc | None = None


class NodeTask(Handoff):
    """``action: run`` → node_plugin / node_notify / node_review."""

    action: Literal["run"] = "run"
    node: NodeDoc
    workflow: WorkflowRef
    variables: dict[str, Any] = Field(default_factory=dict)
    retry_count: int = 0  # $$.State.RetryCount
    execution_id: str | None = None  # $$.Execution.Id
    task_token: str | None = None  # $$.Task.Token, for the states that wait for a callback or review
    hand_off: bool = False  # in an Express head: a failure the retry policy would retry is handed off


class SkipTask(Handoff):
    """``<node>.skipped`` → workflow: the node's ``when`` was false."""

    action: Literal["skip"]
    node_id: str
    workflow: WorkflowRef


class CompleteTask(Handoff):
    """``Complete`` → workflow."""

    action: Literal["complete"]
    workflow: WorkflowRef


class HandOffTask(Handoff):
    """``Hand off`` → workflow: an Express head's node needs a retry; the Standard machine continues."""

    action: Literal["hand_off"]
    workflow: WorkflowRef
    continuation: str
    variables: dict[str, Any] = Field(default_factory=dict)
    when: dict[str, bool] = Field(default_factory=dict)
    failure: dict[str, Any] | None = None
    execution_id: str | None = None


class EscalationDoc(Handoff):
    queue: str = "ops"
    notify: list[str] = Field(default_factory=list)


class EscalateTask(Handoff):
    """``Escalate`` → workflow: a node failed for good (``failure`` is Step Functions' error output)."""

    action: Literal["escalate"]
    workflow: WorkflowRef
    failure: dict[str, Any] | None = None
    escalation: EscalationDoc = Field(default_factory=EscalationDoc)


WorkflowTask = Annotated[SkipTask | CompleteTask | EscalateTask | HandOffTask, Field(discriminator="action")]
_WORKFLOW_TASK: TypeAdapter[SkipTask | CompleteTask | EscalateTask | HandOffTask] = TypeAdapter(WorkflowTask)


def parse_workflow_task(raw: Mapping[str, Any]) -> SkipTask | CompleteTask | EscalateTask | HandOffTask:
    """The workflow function's payload, by its ``action``."""
    try:
        return _WORKFLOW_TASK.validate_python(raw)
    except ValidationError as exc:
        raise HandoffInvalid(describe("workflow task", exc)) from None
