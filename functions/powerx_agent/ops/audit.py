"""``powerx-agent audit verify``: prove the audit trail is complete and unaltered .

What is checked (docs/operations.md, "Audit verify and repair"):

1. **Integrity** of every chain in scope: sequence 1..n without holes, each ``prev_hash`` equal to
   the hash of the record before, each record's hash equal to the hash of its body. A hole is
   accepted only when a later ``chain.rebased`` record of the same chain (written by ``repair
   --apply``) names exactly those sequence numbers and pins the ``prev_hash`` of the record after
   the hole; such holes are listed as *rebased*, never hidden. Altered records are never accepted.
2. **Completeness** of every event: an accepted event (``event.accepted``) has a ``decision``;
   a decision has a terminal outcome (``workflow.succeeded`` / ``workflow.escalated`` /
   ``workflow.failed`` / ``workflow.stopped`` / ``escalation.opened``); ``event.deferred``,
   ``event.duplicate`` and ``event.rejected`` are terminal themselves. A record
   ``audit.repaired`` that reconstructs a kind (``data.reconstructs``) counts as that kind.
3. **Cross-checks**: every ``agent_events`` record has its chain (and a decision once COMPLETED,
   ``event.deferred`` once DEFERRED); every workflow in ``agent_workflows`` has ``workflow.started``
   and, once finished, the terminal record that matches its status; every node the chain mentions
   has its status item, and its status agrees with the chain; a finished workflow has no node
   that is not terminal (an orphan).

Work still running is *in flight*, not a gap: a workflow whose META is PENDING/RUNNING while its
execution runs, or an event still IN_PROGRESS within ``stale_after`` seconds of being first seen.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from powerx_agent.audit.chain import Gap, check_chain, effective_kinds, node_states
from powerx_agent.audit.kinds import WORKFLOW_OUTCOMES, AuditKind
from powerx_agent.status import NODE_TERMINAL, WORKFLOW_ACTIVE, WORKFLOW_TERMINAL, NodeStatus, WorkflowStatus

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

ACCEPTANCE = {AuditKind.EVENT_ACCEPTED, AuditKind.EVENT_DEFERRED}
SELF_TERMINAL = {AuditKind.EVENT_DEFERRED, AuditKind.EVENT_DUPLICATE, AuditKind.EVENT_REJECTED}
WF_TERMINAL_FOR_STATUS = {
    WorkflowStatus.SUCCEEDED: {AuditKind.WORKFLOW_SUCCEEDED},
    WorkflowStatus.ESCALATED: {AuditKind.WORKFLOW_ESCALATED, AuditKind.ESCALATION_OPENED},
    WorkflowStatus.FAILED: {AuditKind.WORKFLOW_FAILED, AuditKind.WORKFLOW_ESCALATED},
    WorkflowStatus.STOPPED: {AuditKind.WORKFLOW_STOPPED},
}
# what a node item may say once the chain says X (escalation moves FAILED nodes on to ESCALATED
# without an audit record of its own)
NODE_COMPATIBLE = {NodeStatus.SUCCEEDED: {NodeStatus.SUCCEEDED}, NodeStatus.SKIPPED: {NodeStatus.SKIPPED},
                   NodeStatus.FAILED: {NodeStatus.FAILED, NodeStatus.ESCALATED}}


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


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def normalise_since(since: str | None) -> str | None:
    """Accept an ISO date/time (``2026-11-28``, ``2026-11-28T10:00:00Z``) or a relative ``15m``/``2h``/``3d``."""
    if not since:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if since[-1:] in units and since[:-1].replace(".", "", 1).isdigit():
        return _iso(time.time() - float(since[:-1]) * units[since[-1]])
    try:
        parsed = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"--since {since!r} is neither an ISO time nor a duration like 15m / 2h / 3d") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _iso(parsed.timestamp())


@dataclass
class Scope:
    chains: dict[str, list[dict[str, Any]]]
    events: list[dict[str, Any]]
    workflows: dict[str, dict[str, Any]]  # workflow id -> META with "nodes"


def gather(deps: Deps, tenant: str | None = None, since: str | None = None) -> Scope:
    since_iso = normalise_since(since)
    if since_iso:
        touched = {r["pk"] for r in deps.audit.since(since_iso)}
        chains = {pk: deps.audit.chain(pk) for pk in touched}
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

    def event_in_flight(event: dict[str, Any] | None) -> bool:
        if not event or event.get("status") != "IN_PROGRESS":
            return False
        return (float(event.get("lease_until") or 0) > now
                or now - float(event.get("first_seen") or 0) < stale_after)

    for chain, records in scope.chains.items():
        if not chain.startswith("WF#"):
            continue
        workflow_id = chain[3:]
        kinds = effective_kinds(records)
        meta = scope.workflows.get(workflow_id)
        event = events_by_wf.get(workflow_id)
        running = bool(meta and meta.get("status") in WORKFLOW_ACTIVE
                       and execution_status(deps, meta.get("execution_arn"), meta.get("created_at"))
                       in ("RUNNING", "UNKNOWN"))
        has = set(kinds)
        if AuditKind.DECISION in has:
            if not has & ACCEPTANCE:
                unit_gaps[chain].append(Gap(chain, "event.no_acceptance",
                                            "a decision without the event's acceptance record", None, workflow_id))
            if not has & WORKFLOW_OUTCOMES:
                if running or event_in_flight(event) or (meta and meta.get("status") in WORKFLOW_ACTIVE
                                                        and not meta.get("execution_arn")):
                    in_flight[chain] = {"unit": chain, "workflow_id": workflow_id,
                                        "status": (meta or {}).get("status") or (event or {}).get("status")}
                else:
                    unit_gaps[chain].append(Gap(chain, "event.no_outcome",
                                                "decision recorded but no terminal outcome", None, workflow_id))
        elif AuditKind.EVENT_ACCEPTED in has:
            if event_in_flight(event):
                in_flight[chain] = {"unit": chain, "workflow_id": workflow_id, "status": "IN_PROGRESS"}
            else:
                unit_gaps[chain].append(Gap(chain, "event.no_decision", "accepted event has no decision record",
                                            None, workflow_id))
        elif not has & SELF_TERMINAL and not has & WORKFLOW_OUTCOMES:
            unit_gaps[chain].append(Gap(chain, "event.no_acceptance",
                                        f"chain holds {sorted(has)} but no acceptance, decision or outcome",
                                        None, workflow_id))

    # agent_events: every record has its chain
    for event in scope.events:
        workflow_id = event.get("workflow_id")
        chain = f"WF#{workflow_id}"
        kinds = set(effective_kinds(scope.chains.get(chain, [])))
        if not kinds:
            unit = f"EVENT#{event['pk']}"
            units.add(unit)
            if event_in_flight(event):
                in_flight[unit] = {"unit": unit, "workflow_id": workflow_id, "status": "IN_PROGRESS"}
            else:
                unit_gaps[unit].append(Gap(unit, "event.no_chain", f"agent_events record ({event.get('status')}) "
                                           f"has no audit chain {chain}", None, workflow_id))
            continue
        units.add(chain)
        if event.get("status") == "COMPLETED" and AuditKind.DECISION not in kinds:
            unit_gaps[chain].append(Gap(chain, "event.no_decision", "agent_events says COMPLETED but the chain "
                                        "has no decision", None, workflow_id))
        if event.get("status") == "DEFERRED" and AuditKind.EVENT_DEFERRED not in kinds:
            unit_gaps[chain].append(Gap(chain, "event.no_deferral", "agent_events says DEFERRED but the chain "
                                        "has no event.deferred", None, workflow_id))

    # agent_workflows: META and nodes agree with the chain
    for workflow_id, meta in scope.workflows.items():
        chain = f"WF#{workflow_id}"
        units.add(chain)
        records = scope.chains.get(chain, [])
        kinds = set(effective_kinds(records))
        status = meta.get("status")
        # a workflow stopped before its execution started (a lost Express start) ended without one
        never_started = status == "STOPPED" and not meta.get("execution_arn")
        if AuditKind.WORKFLOW_STARTED not in kinds and status not in WORKFLOW_ACTIVE | {None} and not never_started:
            unit_gaps[chain].append(Gap(chain, "workflow.no_start", f"workflow is {status} in agent_workflows "
                                        "but the chain has no workflow.started", None, workflow_id))
        wanted = WF_TERMINAL_FOR_STATUS.get(str(status))
        if wanted and not kinds & wanted:
            unit_gaps[chain].append(Gap(chain, "workflow.no_terminal", f"workflow is {status} in agent_workflows "
                                        f"but the chain has none of {sorted(wanted)}", None, workflow_id))
        if status in WORKFLOW_ACTIVE:
            exec_status = execution_status(deps, meta.get("execution_arn"), meta.get("created_at")) \
                if meta.get("execution_arn") else "NONE"
            if exec_status in ("RUNNING", "UNKNOWN") or (exec_status == "NONE" and now - float(meta.get("created_at") or 0)
                                                        < stale_after):
                in_flight.setdefault(chain, {"unit": chain, "workflow_id": workflow_id, "status": status})
            elif exec_status is None:
                unit_gaps[chain].append(Gap(chain, "workflow.execution_gone", f"workflow is {status} but its "
                                            "execution does not exist", None, workflow_id))
            else:
                unit_gaps[chain].append(Gap(chain, "workflow.not_terminal", f"workflow is {status} but its "
                                            f"execution is {exec_status}", None, workflow_id))
        nodes = meta.get("nodes") or {}
        for node_id, audited in sorted(node_states(records).items()):
            item = nodes.get(node_id)
            if item is None or not item.get("status"):
                what = "no status item" if item is None else "a status item without a status"
                unit_gaps[chain].append(Gap(chain, "node.status_missing", f"node {node_id}: the chain says "
                                            f"{audited}, agent_workflows has {what}", None, workflow_id, node_id))
            elif item["status"] not in NODE_COMPATIBLE[audited]:
                unit_gaps[chain].append(Gap(chain, "node.status_mismatch", f"node {node_id}: the chain says "
                                            f"{audited}, agent_workflows says {item['status']}", None, workflow_id,
                                            node_id))
        if status in WORKFLOW_TERMINAL:
            for node_id, item in sorted(nodes.items()):
                if item.get("status") and item["status"] not in NODE_TERMINAL:
                    unit_gaps[chain].append(Gap(chain, "node.orphaned", f"node {node_id} is {item['status']} "
                                                f"but the workflow ended {status}", None, workflow_id, node_id))

    for unit in sorted(units):
        if unit in in_flight and not unit_gaps.get(unit):
            continue
        in_flight.pop(unit, None)
    report.in_flight = sorted(in_flight.values(), key=lambda i: i["unit"])
    report.units = len(units)
    report.gaps = [g for unit in sorted(unit_gaps) for g in unit_gaps[unit]]
    report.complete = sum(1 for unit in units if not unit_gaps.get(unit) and unit not in in_flight)
    return report
