"""Load runs for ``powerx-agent local load`` and ``bench/load.py`` (``runs.py``, ``bare.py``) and the
per-event cost profile of ``local load --heat`` (``profile.py``).

Three drivers share one paced producer (PutEvents in batches of up to 10 entries, scheduled at the
offered rate, never faster; bounded by ``MAX_RATE`` and ``MAX_DURATION``):

- :func:`run_product` against the embedded runtime: PutEvents → ingest → match → StartExecution →
  node Lambdas → sandbox plugins. Latencies come from the audit trail: generation latency is
  ``event.accepted`` → ``workflow.started``, end to end is ``event.accepted`` → ``workflow.succeeded``.
- :func:`run_bare` against the same moto server: a bare pipeline of the same shape (PutEvents →
  rule → SQS → poller → Lambda doing a conditional PutItem + StartExecution → a 3-task state
  machine whose Lambda handlers do nothing): moto's own ceiling on this machine, measured in the
  same process and run.
- :func:`run_stack` against a deployed stack (``--stack``): the same producer, with completion read
  from the stack's audit table by workflow id (deterministic from tenant and idempotency key).

:func:`account` then classifies every event offered (workflow, escalation, duplicate, rejection)
from ``agent_events`` and the audit chains, and checks every chain's hashes.
"""

from powerx_agent.loadtest.bare import run_bare, setup_bare, teardown_bare
from powerx_agent.loadtest.runs import (
    MAX_DURATION,
    MAX_RATE,
    LoadResult,
    Produced,
    account,
    check_bounds,
    mean,
    percentiles,
    produce,
    run_product,
    run_stack,
    summary_rows,
)

__all__ = ["MAX_DURATION", "MAX_RATE", "LoadResult", "Produced", "account", "check_bounds", "mean", "percentiles",
           "produce", "run_bare", "run_product", "run_stack", "setup_bare", "summary_rows", "teardown_bare"]
