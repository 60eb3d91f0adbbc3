"""Manual takeover, what the workflow and review commands share: the refusal error, the review
as an operator sees it, closing a workflow's reviews, and the audit record of each takeover step
(docs/operations-takeover.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from powerx_agent import spec
from powerx_agent.audit.kinds import AuditKind
from powerx_agent.audit.records import AuditEntry, workflow_chain
from powerx_agent.errors import AgentError
from powerx_agent.escalation.backlog import emit_backlog

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

_ROUTING_FIELDS = (*spec.WORKFLOWS_TABLE.key_attributes, "task_token")
"""What an operator is never shown: the table's and its indexes' keys (both tenant index layouts) and the token."""


class TakeoverError(AgentError):
    """The takeover cannot be done as asked (unknown id, wrong status, ...): nothing was changed."""

    code = "takeover.refused"


def public_review(review: dict[str, Any]) -> dict[str, Any]:
    """A review as an operator sees it: never the task token (kept server side)."""
    out = {k: v for k, v in review.items() if k not in _ROUTING_FIELDS}
    out["waits_for_decision"] = bool(review.get("task_token"))
    return out


def meta_of(deps: Deps, workflow_id: str) -> dict[str, Any]:
    meta = deps.workflows.get(workflow_id)
    if meta is None:
        raise TakeoverError(f"no workflow {workflow_id!r}", code="takeover.not_found")
    return meta


def audit_takeover(deps: Deps, kind: str, meta: dict[str, Any], **fields: Any) -> None:
    deps.audit.append(AuditEntry(kind, workflow_chain(meta["workflow_id"]), tenant_id=meta["tenant_id"],
                                 event_id=meta.get("event_id"), workflow_id=meta["workflow_id"],
                                 strategy_id=meta.get("strategy_id"), **fields))


def close_reviews(deps: Deps, metrics: Any, meta: dict[str, Any], outcome: str, by: str, reason: str,
                   node_id: str | None = None) -> list[str]:
    closed = []
    for review in deps.workflows.open_reviews_for(meta["workflow_id"]):
        if node_id is not None and review.get("node_id") != node_id:
            continue
        if deps.workflows.close_review(review["review_id"], outcome, by, reason):
            closed.append(review["review_id"])
            audit_takeover(deps, AuditKind.REVIEW_CLOSED, meta, node_id=review.get("node_id"), status=outcome.upper(),
                   data={"outcome": outcome, "reason": reason, "actor": by, "id": review["review_id"]})
    if closed:
        emit_backlog(deps, metrics)
    return closed
