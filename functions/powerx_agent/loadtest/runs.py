"""The drivers of a load run: one paced producer, the embedded runtime's product pipeline, a deployed
stack, and the accounting of every event offered (overview: :mod:`powerx_agent.loadtest`)."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from powerx_agent import spec
from powerx_agent.audit.chain import check_chain
from powerx_agent.audit.records import workflow_chain
from powerx_agent.ingest.service import workflow_id_for

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

MAX_RATE = 1000.0
MAX_DURATION = 600.0
BATCH = 10

Progress = Callable[[str, int, int], None]  # (stage, done, total)


# ---------------------------------------------------------------------------------- producer
@dataclass
class Produced:
    run_id: str
    keys: list[str] = field(default_factory=list)  # idempotency keys, in send order
    sent_at: dict[str, float] = field(default_factory=dict)  # key -> wall time of the PutEvents return
    failed_entries: int = 0
    started: float = 0.0
    finished: float = 0.0
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.sent_at)


def check_bounds(rate: float, duration: float) -> None:
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"rate must be in (0, {MAX_RATE:g}] events/s, got {rate:g}")
    if not 0 < duration <= MAX_DURATION:
        raise ValueError(f"duration must be in (0, {MAX_DURATION:g}] s, got {duration:g}")


def c1_detail(tenant: str, key: str, event_id: str, i: int) -> dict[str, Any]:
    return {"tenant_id": tenant, "event_id": event_id, "idempotency_key": key,
            "occurred_at": "2026-11-28T10:00:00Z", "context": {"actor": "load", "region": "eu-west-1"},
            "payload": {"job": {"id": str(i), "type": "report", "rows": 100 + i % 1000}}}


def produce(put_events: Callable[[list[dict[str, Any]]], dict[str, Any]], *, rate: float, duration: float,
            bus: str, tenant: str = "acme", run_id: str | None = None, source: str = "powerx.plugins",
            event_type: str = "plugin.job.completed", progress: Progress | None = None,
            sample: Callable[[], dict[str, Any]] | None = None, stop: threading.Event | None = None) -> Produced:
    """Send ``rate × duration`` events on schedule (batched by what is due, ≤ 10 per call)."""
    check_bounds(rate, duration)
    out = Produced(run_id or uuid.uuid4().hex[:8])
    total = int(round(rate * duration))
    out.started = time.time()
    t0 = time.monotonic()
    next_sample = t0
    i = 0
    while i < total and not (stop and stop.is_set()):
        now = time.monotonic()
        due = min(total, int((now - t0) * rate) + 1)
        if due <= i:
            time.sleep(min(0.01, (i + 1) / rate - (now - t0)) if (i + 1) / rate > now - t0 else 0)
            continue
        batch_keys = []
        entries = []
        while i < due and len(entries) < BATCH:
            key = f"load-{out.run_id}-{i}"
            detail = c1_detail(tenant, key, f"evt-{out.run_id}-{i}", i)
            entries.append({"Source": source, "DetailType": event_type, "Detail": json.dumps(detail),
                            "EventBusName": bus})
            batch_keys.append(key)
            i += 1
        answer = put_events(entries)
        at = time.time()
        for key, entry in zip(batch_keys, answer.get("Entries", []), strict=False):
            if entry.get("ErrorCode"):
                out.failed_entries += 1
                continue
            out.keys.append(key)
            out.sent_at[key] = at
        if progress:
            progress("produce", i, total)
        if sample and time.monotonic() >= next_sample:
            out.samples.append({"t": round(time.monotonic() - t0, 2), "lag": int((time.monotonic() - t0) * rate) - i,
                                **sample()})
            next_sample += 1.0
    out.finished = time.time()
    return out


# ---------------------------------------------------------------------------------- statistics
def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 1)

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": round(ordered[-1], 1)}


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class LoadResult:
    pipeline: str
    offered_rate: float
    duration: float
    sent: int
    completed: int
    sustained_rate: float  # completed / (last completion − first send)
    put_rate: float  # events the producer got onto the bus per second of driving
    generation_ms: dict[str, float | None]
    end_to_end_ms: dict[str, float | None]
    send_to_done_ms: dict[str, float | None]
    drained: bool
    drain_seconds: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def make_result(pipeline: str, produced: Produced, rate: float, duration: float, gen: list[float], e2e: list[float],
            done_at: dict[str, float], drained: bool, drain_seconds: float, **extra: Any) -> LoadResult:
    last = max(done_at.values()) if done_at else produced.finished
    span = max(1e-6, last - produced.started)
    drive = max(1e-6, produced.finished - produced.started)
    send_to_done = [(done_at[k] - produced.sent_at[k]) * 1000 for k in done_at if k in produced.sent_at]
    return LoadResult(pipeline, rate, duration, produced.sent, len(done_at), round(len(done_at) / span, 2),
                      round(produced.sent / drive, 2), percentiles(gen), percentiles(e2e), percentiles(send_to_done),
                      drained, round(drain_seconds, 1), produced.samples, extra)


# ---------------------------------------------------------------------------------- product
def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return round(int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except OSError:
        return 0.0


def runtime_sample(rt: Any, queue_url: str) -> Callable[[], dict[str, Any]]:
    from powerx_agent.local import motopatch

    sqs = rt.harness("sqs")

    def sample() -> dict[str, Any]:
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return {"ingest_pending": rt._inflight, "queue": int(attrs["ApproximateNumberOfMessages"])
                + int(attrs["ApproximateNumberOfMessagesNotVisible"]), "running": motopatch.sfn_running(),
                "threads": threading.active_count(), "rss_mb": rss_mb()}

    return sample


def drain(rt: Any, queue_url: str, timeout: float, progress: Progress | None, total: int,
          samples: list[dict[str, Any]], sample: Callable[[], dict[str, Any]], t0: float) -> tuple[bool, float]:
    """Wait until no ingest delivery, queued message or running execution is left."""
    from powerx_agent.local import motopatch

    start = time.monotonic()
    finished0 = motopatch.sfn_running_stats()["finished"]
    quiet = 0
    next_sample = time.monotonic()
    while time.monotonic() - start < timeout:
        snap = sample()
        if time.monotonic() >= next_sample:
            samples.append({"t": round(time.monotonic() - t0, 2), "lag": 0, **snap})
            next_sample += 1.0
        busy = (snap["ingest_pending"] or snap["queue"] or snap["running"] or (rt.poller and rt.poller.busy)
                or motopatch.stream_pending())
        quiet = 0 if busy else quiet + 1
        if progress:
            progress("drain", min(total, motopatch.sfn_running_stats()["finished"] - finished0), total)
        if quiet >= 4:
            return True, time.monotonic() - start
        time.sleep(0.5)  # each sample reads the queue's counts: a scan of every message in moto
    return False, time.monotonic() - start


def run_product(rt: Any, rate: float, duration: float, *, drain_timeout: float = 300.0,
                progress: Progress | None = None, tenant: str = "acme") -> tuple[LoadResult, Produced]:
    from powerx_agent.deps import get_deps
    from powerx_agent.local import motopatch

    assert rt.deployment is not None
    queue_url = rt.deployment.queue_urls[spec.MATCH_QUEUE.name]
    sample = runtime_sample(rt, queue_url)
    motopatch.reset_sfn_peak()
    t0 = time.monotonic()
    events = rt.client("events")
    produced = produce(lambda entries: events.put_events(Entries=entries), rate=rate, duration=duration,
                       bus=spec.BUS_NAME, tenant=tenant, progress=progress, sample=sample)
    drained, drain_seconds = drain(rt, queue_url, drain_timeout, progress, produced.sent, produced.samples,
                                   sample, t0)
    from powerx_agent.adapters.audit_store import AuditStore

    audit = AuditStore(rt.harness("dynamodb"), get_deps().settings.audit_table)  # not counted as the product's
    gen, e2e, done_at = [], [], {}
    for key in produced.keys:
        records = {r["kind"]: r for r in audit.chain(workflow_chain(workflow_id_for(tenant, key)))}
        accepted = records.get("event.accepted")
        if accepted and "workflow.started" in records:
            gen.append((_ts(records["workflow.started"]["ts"]) - _ts(accepted["ts"])) * 1000)
        if accepted and "workflow.succeeded" in records:
            e2e.append((_ts(records["workflow.succeeded"]["ts"]) - _ts(accepted["ts"])) * 1000)
            done_at[key] = _ts(records["workflow.succeeded"]["ts"])
    stats = motopatch.sfn_running_stats()
    result = make_result("product", produced, rate, duration, gen, e2e, done_at, drained, drain_seconds,
                     executions_peak=stats["peak"], cap=rt.max_executions_in_flight,
                     poller_paused_s=round(rt.poller_paused_seconds, 1))
    return result, produced


# ---------------------------------------------------------------------------------- deployed stack
def run_stack(deps: Deps, rate: float, duration: float, *, tenant: str, drain_timeout: float = 300.0,
              progress: Progress | None = None) -> LoadResult:
    """The same producer against a deployed stack; completion read from its audit table.

    Needs AWS credentials for the stack's account, a tenant registered and active on the stack
    that allows ``plugin.job.completed`` and whose strategies match C-1-shaped events.
    """
    events = deps.client("events")
    produced = produce(lambda entries: events.put_events(Entries=entries), rate=rate, duration=duration,
                       bus=deps.settings.event_bus, tenant=tenant, progress=progress)
    pending = set(produced.keys)
    gen_at: dict[str, float] = {}
    accepted_at: dict[str, float] = {}
    done_at: dict[str, float] = {}
    start = time.monotonic()
    while pending and time.monotonic() - start < drain_timeout:
        for key in list(pending):
            records = {r["kind"]: r for r in deps.audit.chain(workflow_chain(workflow_id_for(tenant, key)))}
            if "event.accepted" in records:
                accepted_at[key] = _ts(records["event.accepted"]["ts"])
            if "workflow.started" in records:
                gen_at[key] = _ts(records["workflow.started"]["ts"])
            final = records.get("workflow.succeeded") or records.get("workflow.escalated") or \
                records.get("escalation.opened") or records.get("event.rejected") or records.get("event.duplicate")
            if final:
                done_at[key] = _ts(final["ts"])
                pending.discard(key)
        if progress:
            progress("drain", len(done_at), produced.sent)
        if pending:
            time.sleep(2.0)
    gen = [(gen_at[k] - accepted_at[k]) * 1000 for k in gen_at if k in accepted_at]
    e2e = [(done_at[k] - accepted_at[k]) * 1000 for k in done_at if k in accepted_at]
    return make_result(f"stack {deps.settings.event_bus}", produced, rate, duration, gen, e2e, done_at,
                   not pending, time.monotonic() - start)


# ---------------------------------------------------------------------------------- accounting
def account(deps: Deps, produced: Produced, tenant: str = "acme") -> dict[str, Any]:
    """Every event offered, classified from agent_events + its audit chain; every chain verified."""
    outcomes: dict[str, int] = {}
    unaccounted: list[str] = []
    broken: list[str] = []
    for key in produced.keys:
        workflow_id = workflow_id_for(tenant, key)
        chain = workflow_chain(workflow_id)
        records = deps.audit.chain(chain)
        if check_chain(chain, records)[0]:
            broken.append(chain)
        kinds = {r["kind"] for r in records}
        record = deps.events.get(tenant, key) or {}
        if "workflow.started" in kinds:
            terminal = kinds & {"workflow.succeeded", "workflow.escalated"}
            outcome = "workflow" if terminal else "workflow (not finished)"
            if "workflow.escalated" in kinds:
                outcome = "workflow escalated"
        elif "escalation.opened" in kinds:
            outcome = "escalation"
        elif "event.rejected" in kinds:
            outcome = "rejection"
        elif "event.duplicate" in kinds:
            outcome = "duplicate"
        else:
            outcome = "unaccounted"
        if record.get("status") not in ("COMPLETED", "DEFERRED") and outcome != "rejection":
            outcome = "unaccounted" if outcome == "unaccounted" else outcome + " (event record open)"
        if outcome.startswith("unaccounted") or "not finished" in outcome or "open" in outcome:
            unaccounted.append(key)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    offered = len(produced.keys)
    complete = offered - len(unaccounted)
    return {"offered": offered, "outcomes": outcomes, "unaccounted": unaccounted[:20],
            "unaccounted_count": len(unaccounted), "chains_broken": broken[:20], "chains_broken_count": len(broken),
            "accounted_pct": round(100.0 * complete / offered, 3) if offered else 100.0}


def summary_rows(results: list[LoadResult]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        rows.append({"pipeline": r.pipeline, "offered": r.offered_rate, "sent": r.sent, "completed": r.completed,
                     "sustained": r.sustained_rate, "gen": r.generation_ms, "e2e": r.end_to_end_ms,
                     "drained": r.drained})
    return rows


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0
