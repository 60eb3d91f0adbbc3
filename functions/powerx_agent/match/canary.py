"""Canary runs: start, abort, status, and the live tally that aborts a failing canary by itself
(docs/strategies.md, "Canary rollout"; the arithmetic is :mod:`powerx_agent.strategy.canary`).

A run is the item ``CANARY#<id> / RUN#<started>#V<version>`` in ``agent_strategies`` plus its entry in
the revision's ``canaries`` map (what the matchers route by). The tally runs in the audit stream
function (:func:`tally`): it reads the arm from each ``decision`` record and follows the workflow's
``workflow.started`` / ``workflow.succeeded`` / ``workflow.failed`` / ``workflow.escalated`` /
``escalation.opened`` records, adds them to the run's counters (one conditional update per run per
batch), and applies the verdict. An abort is audited (``strategy.canary_aborted``), counted
(``agent.strategy.canary_aborted_total``, alarmed) and notified to the strategy's owner.

The tally follows the audit stream, which is delivered at least once: a batch retried after its
tally was written is counted twice (rare: the tally is the batch's last write, and its failure is
logged, not retried, so it never causes a retry itself).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from powerx_agent import spec, telemetry
from powerx_agent.adapters.downstream import Downstream
from powerx_agent.audit.records import AuditEntry, now_iso
from powerx_agent.errors import AgentError
from powerx_agent.strategy.canary import (
    ARMS,
    Arm,
    CanaryPlan,
    Rules,
    comparison,
    counter_names,
    latency_bucket,
    verdict,
)

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

OUTCOMES = {"workflow.succeeded": "succeeded", "workflow.failed": "failed", "workflow.escalated": "failed"}
KINDS = {"decision", "workflow.started", "escalation.opened", *OUTCOMES}
HEAD_CACHE_SECONDS = 5.0
"""How long the audit stream function reuses the running canaries it read (one GetItem per period)."""


def strategy_chain(strategy_id: str) -> str:
    return f"STRAT#{strategy_id}"


def running(deps: Deps) -> dict[str, dict[str, Any]]:
    """strategy id -> its running canary's revision entry."""
    return dict(deps.strategies.revision_head().get("canaries") or {})


def start(deps: Deps, strategy_id: str, version: int, percent: float, approver: str, reason: str, *,
          rules: Rules, compiled: Any, item: dict[str, Any], baseline: int) -> dict[str, Any]:
    """Record a canary run of ``compiled`` (version ``version``, checked by the caller) against the
    active ``baseline``, deciding ``percent`` % of the events of their event types."""
    event_types = sorted(set(compiled.event_types) | set(_event_types(deps, strategy_id, baseline)))
    for other, entry in running(deps).items():
        shared = sorted(set(event_types) & set(entry.get("event_types", [])))
        if other != strategy_id and shared:
            raise AgentError(f"{other}'s canary already covers {', '.join(shared[:5])}: one canary per event type; "
                             f"promote or abort it first", code="strategy.canary_overlap")
    started = now_iso()
    run_key = f"RUN#{started}#V{version:06d}"
    entry = {**CanaryPlan(strategy_id, version, baseline, percent, started).to_item(), "run": run_key,
             "event_types": event_types}
    run = {"pk": f"CANARY#{strategy_id}", "sk": run_key, "strategy_id": strategy_id, "version": version,
           "baseline": baseline, "percent": percent, "status": "RUNNING", "started_at": started,
           "started_by": approver, "reason": reason, "author": item.get("author"),
           "owner": compiled.strategy.owner, "margin": rules.margin, "min_events": rules.min_events,
           "event_types": event_types, **dict.fromkeys(counter_names(), 0)}
    deps.strategies.start_canary(strategy_id, entry, run)
    deps.audit.append(AuditEntry("strategy.canary_started", strategy_chain(strategy_id), strategy_id=strategy_id,
                                 status="CANARY", data={"version": version, "baseline": baseline, "percent": percent,
                                                        "approver": approver, "reason": reason,
                                                        "author": item.get("author"), "run": run_key,
                                                        "margin": rules.margin, "min_events": rules.min_events,
                                                        "event_types": event_types}))
    return {"strategy_id": strategy_id, "version": version, "baseline": baseline, "percent": percent,
            "run": run_key, "event_types": event_types}


def _event_types(deps: Deps, strategy_id: str, version: int) -> list[str]:
    from powerx_agent.strategy.loader import load_strategy_text

    item = deps.strategies.version(strategy_id, version)
    compiled, _ = load_strategy_text(item["yaml"], f"{strategy_id}@v{version}") if item else (None, [])
    return list(compiled.event_types) if compiled is not None else []


def current_run(deps: Deps, strategy_id: str) -> dict[str, Any]:
    entry = running(deps).get(strategy_id)
    if entry is None:
        raise AgentError(f"{strategy_id} has no running canary", code="strategy.no_canary")
    run = deps.strategies.canary_run(strategy_id, entry["run"])
    if run is None:
        raise AgentError(f"{strategy_id}'s canary run {entry['run']} is missing", code="strategy.no_canary")
    return run


def status(deps: Deps, strategy_id: str) -> dict[str, Any]:
    """The running canary (or, without one, the latest run) with both arms compared."""
    entry = running(deps).get(strategy_id)
    runs = deps.strategies.canary_runs(strategy_id)
    run = (deps.strategies.canary_run(strategy_id, entry["run"]) if entry else None) or (runs[-1] if runs else None)
    if run is None:
        raise AgentError(f"{strategy_id} has never had a canary", code="strategy.no_canary")
    return describe(run)


def describe(run: dict[str, Any]) -> dict[str, Any]:
    canary, baseline = (Arm.from_item(run, arm) for arm in ARMS)
    rules = Rules(float(run.get("margin", 0)), int(run.get("min_events", 0)))
    abort, why = verdict(canary, baseline, rules)
    keep = ("strategy_id", "version", "baseline", "percent", "status", "started_at", "started_by", "reason",
            "ended_at", "ended_by", "end_reason", "margin", "min_events", "event_types", "sk")
    return {**{k: run[k] for k in keep if k in run}, "comparison": comparison(canary, baseline),
            "verdict": {"abort": abort, "why": why}}


def abort(deps: Deps, metrics: Any, strategy_id: str, actor: str, reason: str, *, automatic: bool = False,
          run: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """End the running canary: the baseline decides every event again. Audited, counted and (to the
    strategy's owner) notified. None when it was not running any more (someone else ended it)."""
    run = run or current_run(deps, strategy_id)
    ended = now_iso()
    if not deps.strategies.end_canary(strategy_id, run["sk"], "ABORTED",
                                      {"ended_at": ended, "ended_by": actor, "end_reason": reason}):
        return None
    final = describe({**(deps.strategies.canary_run(strategy_id, run["sk"]) or run)})
    deps.audit.append(AuditEntry("strategy.canary_aborted", strategy_chain(strategy_id), strategy_id=strategy_id,
                                 status="ACTIVE", data={"version": run["version"], "baseline": run["baseline"],
                                                        "actor": actor, "reason": reason, "automatic": automatic,
                                                        "run": run["sk"], "comparison": final["comparison"]}))
    metrics.add(spec.METRICS["canary_aborted"], 1, strategy=strategy_id)
    _notify(deps, run, actor, reason, automatic)
    return final


def _notify(deps: Deps, run: dict[str, Any], actor: str, reason: str, automatic: bool) -> None:
    to = [t for t in (run.get("owner"), run.get("started_by")) if t]
    try:
        Downstream(deps).notify({"type": "canary_aborted", "to": to, "strategy_id": run["strategy_id"],
                                 "version": run["version"], "baseline": run["baseline"], "automatic": automatic,
                                 "actor": actor, "reason": reason},
                                {"Idempotency-Key": f"canary-aborted-{run['strategy_id']}-{run['sk']}"})
    except Exception as exc:  # noqa: BLE001 - the abort stands; the alarm on the metric pages anyway
        telemetry.logger.error("canary abort not notified", extra={"error": str(exc)[:500],
                                                                   "strategy_id": run["strategy_id"]})


# -- the live tally (audit stream) --------------------------------------------------------------

_lock = threading.Lock()
_head: dict[str, Any] = {"at": -1e9, "canaries": {}}
_arms: OrderedDict[str, tuple[str, str, str]] = OrderedDict()  # workflow id -> (strategy id, run, arm)


def _running_cached(deps: Deps) -> dict[str, dict[str, Any]]:
    with _lock:
        if time.monotonic() - _head["at"] < HEAD_CACHE_SECONDS:
            return dict(_head["canaries"])
    found = running(deps)
    with _lock:
        _head.update(at=time.monotonic(), canaries=found)
    return found


def forget() -> None:
    """Drop what the tally caches in this process (tests; a runtime restart)."""
    with _lock:
        _head.update(at=-1e9, canaries={})
        _arms.clear()


def _remember(workflow_id: str, value: tuple[str, str, str]) -> None:
    with _lock:
        _arms[workflow_id] = value
        _arms.move_to_end(workflow_id)
        while len(_arms) > 100_000:
            _arms.popitem(last=False)


def _arm_from_decision(record: dict[str, Any], canaries: dict[str, dict[str, Any]]) -> tuple[str, str, str] | None:
    arm = ((record.get("data") or {}).get("decision") or {}).get("arm")
    if not isinstance(arm, dict):
        return None
    entry = canaries.get(str(arm.get("strategy_id")))
    if (entry is None or int(arm.get("canary_version", -1)) != int(entry["version"])
            or str(record.get("ts", "")) < str(entry.get("started_at", ""))):
        return None
    return str(arm["strategy_id"]), str(entry["run"]), str(arm["arm"])


def _arm_of_workflow(deps: Deps, record: dict[str, Any], canaries: dict[str, dict[str, Any]],
                     covered: set[str]) -> tuple[str, str, str] | None:
    workflow_id = record.get("workflow_id")
    if not workflow_id:
        return None
    with _lock:
        known = _arms.get(workflow_id)
    if known is not None:
        return known
    data = record.get("data") or {}
    if record.get("strategy_id") not in canaries and (data.get("details") or {}).get("event_type") not in covered:
        return None  # neither a canaried strategy's workflow nor an unmatched event of a covered type
    for earlier in deps.audit.chain(str(record.get("pk") or f"WF#{workflow_id}")):  # decided in another process
        if earlier.get("kind") == "decision":
            found = _arm_from_decision(earlier, canaries)
            if found is not None:
                _remember(workflow_id, found)
            return found
    return None


def tally(deps: Deps, metrics: Any, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Add a batch of audit records to the running canaries' arms; abort those the verdict fails."""
    if not any(r.get("kind") in KINDS for r in records):
        return {}
    canaries = _running_cached(deps)
    if not canaries:
        return {}
    covered = {t for entry in canaries.values() for t in entry.get("event_types", [])}
    deltas: dict[tuple[str, str], dict[str, float]] = {}
    for record in sorted(records, key=lambda r: (str(r.get("pk")), int(r.get("seq") or 0))):
        kind = record.get("kind")
        if kind not in KINDS:
            continue
        if kind == "decision":
            found = _arm_from_decision(record, canaries)
            if found is not None and record.get("workflow_id"):
                _remember(str(record["workflow_id"]), found)
        else:
            found = _arm_of_workflow(deps, record, canaries, covered)
        if found is None:
            continue
        strategy_id, run_key, arm = found
        add = deltas.setdefault((strategy_id, run_key), {})

        def plus(name: str, amount: float = 1, arm: str = arm, add: dict[str, float] = add) -> None:
            add[f"{arm}_{name}"] = add.get(f"{arm}_{name}", 0) + amount

        if kind == "decision":
            plus("decisions")
            plus("matched", 1 if record.get("status") == "MATCHED" else 0)
        elif kind == "workflow.started":
            duration = float(record.get("duration") or 0)
            plus("started")
            plus("latency_ms_sum", round(duration, 3))
            plus(f"lat_{latency_bucket(duration)}")
        elif kind == "escalation.opened":
            plus("escalated")
        else:
            plus(OUTCOMES[str(kind)])
    aborted = {}
    for (strategy_id, run_key), add in deltas.items():
        run = deps.strategies.tally_canary(strategy_id, run_key, add)
        if run is None:
            continue
        rules = Rules(float(run.get("margin", 0)), int(run.get("min_events", 0)))
        stop, why = verdict(Arm.from_item(run, "canary"), Arm.from_item(run, "baseline"), rules)
        if stop:
            ended = abort(deps, metrics, strategy_id, "canary-watch", why, automatic=True, run=run)
            if ended is not None:
                aborted[strategy_id] = why
                with _lock:
                    _head["at"] = -1e9
    return {"tallied": {f"{sid}@{run}": add for (sid, run), add in deltas.items()}, "aborted": aborted}
