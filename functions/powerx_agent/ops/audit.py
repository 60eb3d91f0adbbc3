"""``powerx-agent audit verify``: prove the audit trail is complete and unaltered; ``audit show``.

What is checked (docs/operations.md, "Audit verify and repair"):

1. **Integrity** of every chain in scope (:func:`powerx_agent.audit.chain.check_chain`): sequence 1..n
   without holes, each ``prev_hash`` equal to the hash of the record before, each record's hash equal to
   the hash of its body; a hole is accepted only when a ``chain.rebased`` record written by ``repair
   --apply`` names exactly it (listed as *rebased*, never hidden); altered records never are.
2. **Completeness** of every workflow (chain, ``agent_events`` record, ``agent_workflows`` items,
   execution): :func:`powerx_agent.audit.completeness.check_workflow`, the one definition ``repair``
   fixes against too. ``event.deferred``, ``event.duplicate`` and ``event.rejected`` are terminal themselves;
   an ``agent_events`` record without any chain is a gap.

Work still running is *in flight*, not a gap: a workflow whose META is PENDING/RUNNING while its
execution runs, or an event still IN_PROGRESS within ``stale_after`` seconds of being first seen.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from powerx_agent.audit.chain import Gap, check_chain
from powerx_agent.audit.completeness import (
    NO_EXECUTION,
    NODE_TERMINAL,
    TERMINAL,
    WF_ACTIVE,
    WF_TERMINAL_FOR_STATUS,
    check_workflow,
)
from powerx_agent.audit.records import iso_at
from powerx_agent.errors import AgentError

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

__all__ = ["NODE_TERMINAL", "TERMINAL", "WF_ACTIVE", "WF_TERMINAL_FOR_STATUS", "VerifyReport", "gather", "verify"]


@dataclass
class VerifyReport:
    units: int = 0
    complete: int = 0
    in_flight: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    rebased: list[dict[str, Any]] = field(default_factory=list)
    chains: int = 0
    records: int = 0
    events: int = 0
    workflows: int = 0

    @property
    def completeness(self) -> float:
        finished = self.units - len(self.in_flight)
        return 100.0 if finished <= 0 else round(100.0 * self.complete / finished, 2)

    @property
    def ok(self) -> bool:
        return not self.gaps

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "completeness": self.completeness, "units": self.units, "complete": self.complete,
                "in_flight": self.in_flight, "gaps": [g.to_dict() for g in self.gaps], "rebased": self.rebased,
                "chains": self.chains, "records": self.records, "events": self.events, "workflows": self.workflows}


# -- gathering ---------------------------------------------------------------------------------

def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


MAX_LOOKBACK_DAYS = 36_500
"""The longest relative window (``100000d`` would be before the year 1 and cannot be a time)."""


def normalise_since(since: str | None) -> str | None:
    """Accept an ISO date/time (``2026-11-28``, ``2026-11-28T10:00:00Z``) or a relative ``15m``/``2h``/``3d``."""
    if not since:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if since[-1:] in units and since[:-1].replace(".", "", 1).isdigit():
        back = float(since[:-1]) * units[since[-1]]
        if back > MAX_LOOKBACK_DAYS * 86400:
            raise ValueError(f"{since!r} reaches back more than {MAX_LOOKBACK_DAYS} days; give an ISO time")
        return iso_at(time.time() - back)
    try:
        parsed = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{since!r} is neither an ISO time nor a duration like 15m / 2h / 3d") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return iso_at(parsed.timestamp())
    except (ValueError, OverflowError, OSError):  # a time zone takes it past year 1 or 9999
        raise ValueError(f"{since!r} is outside the years 1 to 9999 in UTC") from None


@dataclass
class Scope:
    chains: dict[str, list[dict[str, Any]]]
    events: list[dict[str, Any]]
    workflows: dict[str, dict[str, Any]]  # workflow id -> META with "nodes"


def gather(deps: Deps, tenant: str | None = None, since: str | None = None) -> Scope:
    since_iso = normalise_since(since)
    if since_iso:
        chains = {pk: deps.audit.chain(pk) for pk in deps.audit.touched(since_iso)}
        # the index names every chain of the window and a few more (written in its first minute, before it)
        chains = {pk: rs for pk, rs in chains.items() if any(r["ts"] >= since_iso for r in rs)}
    else:
        chains = defaultdict(list)
        for record in deps.audit.scan_all():
            chains[record["pk"]].append(record)
        chains = dict(chains)
    if tenant:
        chains = {pk: rs for pk, rs in chains.items() if any(r.get("tenant_id") == tenant for r in rs)}
    since_epoch = _epoch(since_iso) if since_iso else None
    events = [e for e in deps.events.scan()
              if (not tenant or e.get("tenant_id") == tenant)
              and (since_epoch is None or float(e.get("first_seen") or 0) >= since_epoch)]
    metas = [m for m in deps.workflows.list_workflows(limit=10**9)
             if (not tenant or m.get("tenant_id") == tenant)
             and (since_epoch is None or float(m.get("created_at") or 0) >= since_epoch)]
    wanted = {m["workflow_id"] for m in metas}
    wanted |= {pk[3:] for pk in chains if pk.startswith("WF#")}
    workflows = {}
    for workflow_id in sorted(wanted):
        meta = deps.workflows.get(workflow_id)
        if meta is not None:
            workflows[workflow_id] = meta
    # events and workflows in scope bring their chains even if their records are older than --since
    for workflow_id in wanted | {e.get("workflow_id") for e in events if e.get("workflow_id")}:
        pk = f"WF#{workflow_id}"
        if pk not in chains:
            records = deps.audit.chain(pk)
            if records:
                chains[pk] = records
    return Scope(chains, events, workflows)


def execution_status(deps: Deps, execution_arn: str | None, started_after: float | None = None) -> str | None:
    """RUNNING / SUCCEEDED / FAILED / ... or None when there is no such execution (``UNKNOWN``: an
    Express execution no log record speaks of yet; nothing can be concluded from it)."""
    return deps.state_machines.status(execution_arn, started_after)  # type: ignore[no-any-return]


# -- the check -----------------------------------------------------------------------------------

def workflow_execution_status(deps: Deps, meta: dict[str, Any] | None) -> str | None:
    """What :func:`check_workflow` needs to know of the execution: asked only for an active workflow."""
    if meta is None or meta.get("status") not in WF_ACTIVE:
        return NO_EXECUTION if meta is None or not meta.get("execution_arn") else "ENDED"
    if not meta.get("execution_arn"):
        return NO_EXECUTION
    return execution_status(deps, meta["execution_arn"], meta.get("created_at"))


def verify(deps: Deps, tenant: str | None = None, since: str | None = None,
           stale_after: float = 900.0, now: float | None = None) -> VerifyReport:
    now = now if now is not None else deps.clock.time()
    scope = gather(deps, tenant, since)
    report = VerifyReport(chains=len(scope.chains), records=sum(len(r) for r in scope.chains.values()),
                          events=len(scope.events), workflows=len(scope.workflows))
    unit_gaps: dict[str, list[Gap]] = defaultdict(list)
    in_flight: dict[str, dict[str, Any]] = {}
    units: set[str] = set(scope.chains)

    for chain, records in scope.chains.items():
        gaps, rebased = check_chain(chain, records)
        unit_gaps[chain] += gaps
        report.rebased += rebased

    events_by_wf = {e.get("workflow_id"): e for e in scope.events if e.get("workflow_id")}
    for event in scope.events:
        chain = f"WF#{event.get('workflow_id')}"
        if not scope.chains.get(chain) and event.get("workflow_id") not in scope.workflows:
            unit = f"EVENT#{event['pk']}"
            units.add(unit)
            check = check_workflow(str(event.get("workflow_id")), [], None, event, NO_EXECUTION, now=now,
                                   stale_after=stale_after)
            if check.in_flight:
                in_flight[unit] = {"unit": unit, "workflow_id": event.get("workflow_id"), "status": "IN_PROGRESS"}
            else:
                unit_gaps[unit].append(Gap(unit, "event.no_chain", f"agent_events record ({event.get('status')}) "
                                           f"has no audit chain {chain}", None, event.get("workflow_id")))
    workflow_ids = {c[3:] for c in scope.chains if c.startswith("WF#")} | set(scope.workflows)
    for workflow_id in sorted(workflow_ids):
        chain = f"WF#{workflow_id}"
        units.add(chain)
        meta = scope.workflows.get(workflow_id)
        check = check_workflow(workflow_id, scope.chains.get(chain, []), meta, events_by_wf.get(workflow_id),
                               workflow_execution_status(deps, meta), now=now, stale_after=stale_after)
        unit_gaps[chain] += check.gaps
        if check.in_flight:
            in_flight[chain] = {"unit": chain, "workflow_id": workflow_id,
                                "status": (meta or {}).get("status") or (events_by_wf.get(workflow_id) or {})
                                .get("status")}

    for unit in list(in_flight):
        if unit_gaps.get(unit):
            in_flight.pop(unit)
    report.in_flight = sorted(in_flight.values(), key=lambda i: i["unit"])
    report.units = len(units)
    report.gaps = [g for unit in sorted(unit_gaps) for g in unit_gaps[unit]]
    report.complete = sum(1 for unit in units if not unit_gaps.get(unit) and unit not in in_flight)
    return report


# -- one chain -------------------------------------------------------------------------------------

CHAIN_PREFIXES = ("WF#", "STRAT#", "OPS#", "REJ#", "CONFLICT#")


def chain_name(ref: str) -> str:
    """``WF#wf-…`` / ``STRAT#id`` / ``OPS#…`` as given; a bare workflow id becomes its chain."""
    ref = ref.strip()
    if ref.startswith(CHAIN_PREFIXES):
        return ref
    if ref.startswith("wf-"):
        return f"WF#{ref}"
    raise AgentError(f"{ref!r} is not a chain name (WF#<workflow id>, STRAT#<strategy>, OPS#flags, OPS#repair, "
                     "OPS#release, REJ#…) nor a workflow id (wf-…)", code="audit.bad_chain")


def show_chain(deps: Deps, ref: str) -> dict[str, Any]:
    """Every record of one chain in order, its integrity and the holes a ``chain.rebased`` accounts for."""
    chain = chain_name(ref)
    records = sorted(deps.audit.chain(chain), key=lambda r: int(r["seq"]))
    if not records:
        raise AgentError(f"no audit chain {chain!r}", code="audit.no_chain")
    gaps, rebased = check_chain(chain, records)
    return {"chain": chain, "ok": not gaps, "records": records, "gaps": [g.to_dict() for g in gaps],
            "rebased": rebased}
