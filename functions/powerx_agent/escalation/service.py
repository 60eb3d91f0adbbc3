"""Escalation to people: a manual review work order plus a notification to the owners.

Retry-safe: the review id is derived from what is escalated, the review item is created
conditionally (so ``agent.manual_escalation_total`` counts each escalation exactly once), and the
ops call and the notification are each marked done on the item, so a retry after a downstream
failure sends what is missing and nothing twice.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from powerx_agent import spec
from powerx_agent.adapters.downstream import Downstream
from powerx_agent.audit.kinds import AuditKind
from powerx_agent.audit.records import AuditEntry, workflow_chain
from powerx_agent.escalation.backlog import emit_backlog
from powerx_agent.trace import child

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

REVIEW_URL_SECONDS = 7 * 24 * 3600
"""How long the decision URL of a review work order is valid (a review decided later is decided with
``powerx-agent review approve|reject``)."""


def review_id_for(workflow_id: str, reason: str, node_id: str | None = None, generation: int = 1) -> str:
    """Stable per (workflow, reason, node) within one attempt generation; a retry generation
    (``workflow retry``) escalates afresh under a new id."""
    text = f"{workflow_id}|{reason}|{node_id or ''}" + (f"|g{generation}" if generation > 1 else "")
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"rv-{digest[:20]}"


def escalate(deps: Deps, metrics: Any, *, workflow_id: str, tenant_id: str, event_id: str | None,
             reason: str, queue: str, notify_to: list[str], details: dict[str, Any],
             strategy_id: str | None = None, node_id: str | None = None, traceparent: str = "",
             task_token: str | None = None, generation: int = 1) -> dict[str, Any]:
    review_id = review_id_for(workflow_id, reason, node_id, generation)
    review = {"review_id": review_id, "workflow_id": workflow_id, "tenant_id": tenant_id, "event_id": event_id,
              "strategy_id": strategy_id, "node_id": node_id, "queue": queue, "reason": reason,
              "details": details, "kind": "escalation" if task_token is None else "review_node",
              "task_token": task_token, "notify_to": list(notify_to), "traceparent": traceparent or None}
    review = {k: v for k, v in review.items() if v is not None}
    if generation > 1:
        review["generation"] = generation
    existing = deps.workflows.get_review(review_id)
    if existing is None and deps.workflows.put_review(review):
        # only the writer whose conditional put created the review counts it: a retried or
        # concurrent Escalate finds it there and only completes what is missing below
        existing = review
        if task_token is None:
            metrics.add(spec.METRICS["escalations"], 1, tenant=tenant_id, strategy=strategy_id)
        deps.audit.append(AuditEntry(
            AuditKind.ESCALATION_OPENED if task_token is None else AuditKind.REVIEW_REQUESTED, workflow_chain(workflow_id),
            tenant_id=tenant_id, event_id=event_id, workflow_id=workflow_id, strategy_id=strategy_id,
            node_id=node_id, status="ESCALATED" if task_token is None else "WAITING", escalation_reason=reason,
            data={"review_id": review_id, "queue": queue, "details": details}))
        emit_backlog(deps, metrics)
    elif existing is None:  # lost the race to a concurrent writer
        existing = deps.workflows.get_review(review_id) or review
    return _send(deps, existing, review_id, reason, queue, notify_to, details, traceparent, task_token)


def unsent(review: dict[str, Any]) -> list[str]:
    """What an open review has not delivered yet: ``ops`` (the work order) and/or ``notification``."""
    return [what for what, flag in (("ops", "ops_sent"), ("notification", "notified")) if not review.get(flag)]


def resend(deps: Deps, review: dict[str, Any]) -> dict[str, Any]:
    """Deliver what an escalation could not (the ops service or notifications stayed down past the
    Escalate state's retries): the same payloads with the same ``Idempotency-Key`` (the review id), each
    marked done on the review as it succeeds, so a second run sends nothing twice. Audited in the
    workflow's chain as ``escalation.resent``."""
    missing = unsent(review)
    notify_to = list(review.get("notify_to") or [])
    if not notify_to:  # a review written before notify_to was stored: the tenant's targets
        tenant = deps.tenants.get(review["tenant_id"]) or {}
        notify_to = list(tenant.get("notify") or [tenant.get("owner")] if tenant else [])
    result = _send(deps, review, review["review_id"], review["reason"], review.get("queue", "ops"),
                   [t for t in notify_to if t], review.get("details") or {}, review.get("traceparent") or "",
                   review.get("task_token"))
    deps.audit.append(AuditEntry(
        "escalation.resent", workflow_chain(review["workflow_id"]), tenant_id=review["tenant_id"],
        event_id=review.get("event_id"), workflow_id=review["workflow_id"], strategy_id=review.get("strategy_id"),
        node_id=review.get("node_id"), status="SENT", escalation_reason=review["reason"],
        data={"review_id": review["review_id"], "sent": missing}))
    return {**result, "sent": missing}


def _send(deps: Deps, existing: dict[str, Any], review_id: str, reason: str, queue: str, notify_to: list[str],
          details: dict[str, Any], traceparent: str, task_token: str | None) -> dict[str, Any]:
    tenant_id, workflow_id = existing["tenant_id"], existing["workflow_id"]
    event_id, strategy_id, node_id = existing.get("event_id"), existing.get("strategy_id"), existing.get("node_id")
    downstream = Downstream(deps)
    headers = {"Idempotency-Key": review_id, "X-Tenant-Id": tenant_id, "traceparent": child(traceparent)}
    if not existing.get("ops_sent"):
        # the ops system gets the work order, never the task token (kept server side), and a URL
        # signed for this review only, through which the decision comes back
        order = {"review_id": review_id, "tenant_id": tenant_id, "workflow_id": workflow_id,
                 "event_id": event_id, "strategy_id": strategy_id, "node_id": node_id,
                 "queue": queue, "reason": reason, "details": details}
        url = downstream.callback_url(review_id, REVIEW_URL_SECONDS)
        if url:
            order["callback_url"] = url
        downstream.manual_review(order, headers)
        deps.workflows.mark_review(review_id, "ops_sent")
    if not existing.get("notified"):
        downstream.notify({"type": "escalated" if task_token is None else "review_requested",
                           "to": notify_to, "tenant_id": tenant_id, "workflow_id": workflow_id,
                           "review_id": review_id, "reason": reason, "queue": queue}, headers)
        deps.workflows.mark_review(review_id, "notified")
    return {"review_id": review_id, "reason": reason}
