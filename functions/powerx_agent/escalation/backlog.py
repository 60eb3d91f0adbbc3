"""The open manual review backlog as a gauge (``agent.review.backlog``, docs/operations.md alarm
"manual backlog > 20 items").

Emitted every minute by the scheduled ``backlog_gauge`` function (``spec.BACKLOG_SCHEDULE``), and
computed from the OPEN review items themselves (an exact count over the index, not a running sum of
+1/-1), so a retried escalation or a duplicate callback can never make it drift, and a backlog that
does not move is still reported every minute (an alarm sees it stuck, not gone).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from powerx_agent import spec

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

# CloudWatch drops EMF values dated more than 14 days back or 2 hours ahead (EMF specification)
_EMF_PAST, _EMF_FUTURE = 14 * 86400, 2 * 3600


def scheduled_at(event: Any, now: float | None = None) -> float:
    """The minute a scheduled event stands for (its ``time``), so there is one gauge value per minute even
    when a delivery runs a little late; the current time when the event has none CloudWatch would take."""
    now = time.time() if now is None else now
    value = event.get("time") if isinstance(event, dict) else None
    if not isinstance(value, str) or len(value) > 40:
        return now
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return now
    return at if now - _EMF_PAST < at < now + _EMF_FUTURE else now


def emit_backlog(deps: Deps, metrics: Any, at: float | None = None) -> int:
    count = deps.workflows.count_open_reviews()
    metrics.add(spec.METRICS["review_backlog"], count, "Count", at=at)
    return count
