"""Which event sources the bus routes to ingest (``spec.EVENT_SOURCES``, the ingest rule's pattern).

An event of any other source would be accepted by ``PutEvents`` and then matched only by the
unrouted rule (kept in the unrouted queue, counted, alarmed): the replay endpoint and the replay
command refuse it up front with ``source.not_routed``, naming the sources that are routed.
"""

from __future__ import annotations

from powerx_agent import spec
from powerx_agent.errors import EventRejected


def check_routed(source: str) -> None:
    if source not in spec.EVENT_SOURCES:
        accepted = ", ".join(spec.EVENT_SOURCES)
        raise EventRejected(f"source '{source[:256]}' is not routed by the bus; accepted sources: {accepted}",
                            code="source.not_routed", where="source",
                            details={"accepted_sources": list(spec.EVENT_SOURCES)})
