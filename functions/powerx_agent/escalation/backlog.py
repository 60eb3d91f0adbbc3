"""The open manual review backlog as a gauge (``agent.review.backlog``, docs/operations.md alarm
"manual backlog > 20 items").

Emitted whenever a review opens or closes, computed from the OPEN review items themselves (an
exact count over the index, not a running sum of +1/-1), so a retried escalation or a duplicate
callback can never make it drift.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from powerx_agent import spec

if TYPE_CHECKING:
    from powerx_agent.deps import Deps


def emit_backlog(deps: Deps, metrics: Any) -> int:
    count = deps.workflows.count_open_reviews()
    metrics.add(spec.METRICS["review_backlog"], count, "Count")
    return count
