"""``powerx-agent review list|approve|reject``: the open manual reviews, decided with the same
effect as the callback API, audited with the actor (docs/operations-takeover.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from powerx_agent.nodes.callbacks import CallbackRequest, CallbackResult, Callbacks
from powerx_agent.ops.takeover import TakeoverError, public_review

if TYPE_CHECKING:
    from powerx_agent.deps import Deps


def list_reviews(deps: Deps, queue: str | None = None) -> list[dict[str, Any]]:
    reviews = deps.workflows.open_reviews(limit=10_000)
    return [public_review(r) for r in reviews if queue is None or r.get("queue") == queue]


def decide_review(deps: Deps, metrics: Any, review_id: str, outcome: str, by: str,
                  reason: str | None = None) -> CallbackResult:
    """approve / reject exactly as ``POST /internal/agent/callbacks`` does, with ``by`` as actor."""
    if outcome == "rejected" and not (reason or "").strip():
        raise TakeoverError("a rejection needs a reason", code="takeover.reason_required")
    if not by.strip():
        raise TakeoverError("say who decides (--by)", code="takeover.actor_required")
    try:
        request = CallbackRequest(review_id=review_id, outcome=outcome, reason=reason, actor=by)
    except ValueError as exc:
        raise TakeoverError(f"{review_id!r} is not a review id (rv-<20 hex>)", code="takeover.bad_id") from exc
    return Callbacks(deps, metrics).handle(request)
