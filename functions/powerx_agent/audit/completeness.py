"""What a complete workflow is: the one definition ``audit verify`` reports against and ``repair`` fixes
against (docs/operations.md, "Audit verify and repair"), so the two always agree.

A workflow's unit is its chain ``WF#<workflow id>`` together with its ``agent_events`` record, its
``agent_workflows`` items and its execution. It is **complete** when:

- the chain holds the event's acceptance (``event.accepted`` / ``event.deferred``) and, once the event
  was handed on, its ``decision`` (an ``agent_events`` record COMPLETED needs one, DEFERRED needs
  ``event.deferred``);
- a finished workflow has ``workflow.started`` (when it had an execution) and the terminal record of its
  status, written in the current attempt generation (after the last ``workflow.retried``);
- every node item with a terminal status has the node's outcome in the chain (``node.succeeded`` /
  ``.failed`` / ``.skipped`` / ``.stopped`` / ``.filled``, or a reconstruction of one), the outcome
  agrees with the item (a ``node.reset`` of a retry starts the node afresh), and every node the chain
  names has its item (a node META's ``node_ids`` names has none until it first moves: it is PENDING);
- a finished workflow has no node still PENDING or RUNNING;
- an active workflow's execution is running, or is an Express execution no log record speaks of yet
  (then the unit is *in flight*, not a gap).

:func:`check_workflow` returns the gaps and the milestones the chain lacks (what ``repair`` appends as
``audit.repaired`` reconstructions). Pure: the caller reads the stores and the execution status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from powerx_agent.audit.chain import Gap, effective_kinds, node_states
from powerx_agent.status import NODE_TERMINAL
from powerx_agent.status import WORKFLOW_ACTIVE as WF_ACTIVE

ACCEPTANCE = {"event.accepted", "event.deferred"}
TERMINAL = {"workflow.succeeded", "workflow.escalated", "workflow.failed", "workflow.stopped", "escalation.opened"}
SELF_TERMINAL = {"event.deferred", "event.duplicate", "event.rejected"}
WF_TERMINAL_FOR_STATUS = {
    "SUCCEEDED": {"workflow.succeeded"},
    "ESCALATED": {"workflow.escalated", "escalation.opened"},
    "FAILED": {"workflow.failed", "workflow.escalated"},
    "STOPPED": {"workflow.stopped"},
}
WF_KIND = {"SUCCEEDED": "workflow.succeeded", "FAILED": "workflow.failed", "STOPPED": "workflow.stopped",
           "ESCALATED": "workflow.escalated"}
# what a node item may say once the chain says X (escalation moves FAILED nodes on to ESCALATED)
NODE_COMPATIBLE = {"SUCCEEDED": {"SUCCEEDED"}, "SKIPPED": {"SKIPPED"}, "FAILED": {"FAILED", "ESCALATED"}}
RUNNING, UNKNOWN = "RUNNING", "UNKNOWN"
"""UNKNOWN: an Express execution no log record speaks of yet; nothing can be concluded from it."""
NO_EXECUTION = "NONE"
"""``execution_status`` of a workflow that names no execution (as opposed to None: it names one that is gone)."""

# the gap code a missing milestone is reported under
GAP_FOR_KIND = {"event.accepted": "event.no_acceptance", "decision": "event.no_decision",
                "event.deferred": "event.no_deferral", "workflow.started": "workflow.no_start",
                **{kind: "workflow.no_terminal" for kind in WF_KIND.values()}}


def node_kind(item: dict[str, Any]) -> str:
    """The outcome record a node item's status calls for: a node ended by an operator's stop or by a
    failing sibling is ``node.stopped`` (not a failure of its own: not counted in the node failures)."""
    status = str(item.get("status"))
    if status == "SUCCEEDED":
        return "node.succeeded"
    if status == "SKIPPED":
        return "node.skipped"
    stopped = item.get("stopped_by_failure") or (item.get("error") or {}).get("type") == "Stopped"
    return "node.stopped" if stopped else "node.failed"


@dataclass(frozen=True)
class Milestone:
    """A record the chain lacks, and what it can be reconstructed from (``source`` empty: nothing left
    to rebuild it from)."""

    kind: str
    status: str | None
    source: str
    node_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"no {self.kind} record" + (f" for node {self.node_id}" if self.node_id else "")


@dataclass
class WorkflowCheck:
    gaps: list[Gap]
    missing: list[Milestone]
    in_flight: bool
    status: str | None


def current_generation(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records since the last ``workflow.retried`` (all of them when the workflow never was); a retry
    whose start failed (``workflow.retry_failed`` after it) does not begin a generation."""
    ordered = sorted(records, key=lambda r: int(r["seq"]))
    starts = [0]
    for i, record in enumerate(ordered):
        if record.get("kind") == "workflow.retried":
            starts.append(i + 1)
        elif record.get("kind") == "workflow.retry_failed" and len(starts) > 1:
            starts.pop()
    return ordered[starts[-1]:]


def missing_milestones(meta: dict[str, Any] | None, records: list[dict[str, Any]],
                       event: dict[str, Any] | None) -> list[Milestone]:
    """The milestones a (settled part of a) workflow's chain lacks."""
    kinds = set(effective_kinds(records))
    wanted: list[Milestone] = []
    meta = meta or {}
    # a META recreated from an execution proves no acceptance: only agent_events can
    recreated_alone = bool(meta.get("recreated_by")) and event is None
    if not kinds & ACCEPTANCE and (event or meta) and not recreated_alone:
        src = event or meta
        wanted.append(Milestone("event.accepted", "ACCEPTED", "agent_events" if event else "agent_workflows",
                                data={k: src.get(k) for k in ("event_type", "idempotency_key", "payload_hash")
                                      if src.get(k)}))
    if event and event.get("status") == "DEFERRED" and "event.deferred" not in kinds:
        wanted.append(Milestone("event.deferred", "DEFERRED", "agent_events",
                                data={"reason": "agent_events says DEFERRED"}))
    if "decision" not in kinds and meta.get("decision"):
        wanted.append(Milestone("decision", "MATCHED", "agent_workflows META.decision",
                                data={"decision": meta["decision"]}))
    elif "decision" not in kinds and ("event.accepted" in kinds or (event or {}).get("status") == "COMPLETED"):
        # accepted but never decided (or the decision is lost with nothing left to rebuild it from)
        wanted.append(Milestone("decision", None, ""))
    status = str(meta.get("status"))
    if not meta or status in WF_ACTIVE:
        return wanted
    if "workflow.started" not in kinds and meta.get("execution_arn"):
        wanted.append(Milestone("workflow.started", "RUNNING", "agent_workflows + execution history",
                                data={"execution_arn": meta["execution_arn"],
                                      "strategy_version": meta.get("strategy_version")}))
    audited = node_states(records)
    for node_id, item in sorted((meta.get("nodes") or {}).items()):
        if item.get("status") in NODE_TERMINAL and node_id not in audited:
            wanted.append(Milestone(node_kind(item), _node_status(item), "agent_workflows node item", node_id,
                                    data={"attempts": item.get("attempts"), "duration": item.get("duration"),
                                          "reason": item.get("reason")}))
    terminal = WF_TERMINAL_FOR_STATUS.get(status)
    latest = set(effective_kinds(current_generation(records)))
    if terminal and not latest & terminal and not (status == "ESCALATED" and latest & TERMINAL):
        wanted.append(Milestone(WF_KIND[status], status, "agent_workflows META",
                                data={"duration": meta.get("duration"),
                                      "escalation_reason": meta.get("escalation_reason")}))
    return wanted


def _node_status(item: dict[str, Any]) -> str:
    status = str(item.get("status"))
    return "FAILED" if status == "ESCALATED" else status


def check_workflow(workflow_id: str, records: list[dict[str, Any]], meta: dict[str, Any] | None,
                   event: dict[str, Any] | None, execution_status: str | None, *, now: float,
                   stale_after: float) -> WorkflowCheck:
    """Whether one workflow is complete. ``execution_status``: the status of META's execution, None
    when it does not exist, :data:`NO_EXECUTION` when META names none (or there is no META)."""
    chain = f"WF#{workflow_id}"
    gaps: list[Gap] = []
    status = (meta or {}).get("status")
    kinds = set(effective_kinds(records))

    def event_in_flight() -> bool:
        if not event or event.get("status") != "IN_PROGRESS":
            return False
        return float(event.get("lease_until") or 0) > now or now - float(event.get("first_seen") or 0) < stale_after

    young = meta is not None and now - float(meta.get("created_at") or 0) < stale_after
    in_flight = bool(
        (status in WF_ACTIVE and (execution_status in (RUNNING, UNKNOWN) or (execution_status == NO_EXECUTION and young)))
        or event_in_flight())
    missing = [] if in_flight else missing_milestones(meta, records, event)
    if records and not kinds & (ACCEPTANCE | {"decision"}) and not kinds & (SELF_TERMINAL | TERMINAL) and not in_flight:
        gaps.append(Gap(chain, "event.no_acceptance", f"chain holds {sorted(kinds)} but no acceptance, decision "
                        "or outcome", None, workflow_id))
        missing = [m for m in missing if m.kind != "event.accepted"]
    # with a workflow record, the workflow-level gaps below say what is wrong (and repair fixes those)
    if "decision" in kinds and not kinds & TERMINAL and not in_flight and meta is None:
        gaps.append(Gap(chain, "event.no_outcome", "decision recorded but no terminal outcome", None, workflow_id))
    for milestone in missing:
        code = GAP_FOR_KIND.get(milestone.kind, "node.no_outcome")
        gaps.append(Gap(chain, code, _explain(milestone, meta, event), None, workflow_id, milestone.node_id))
    if meta is not None and status in WF_ACTIVE and not in_flight:
        if execution_status is None:
            gaps.append(Gap(chain, "workflow.execution_gone", f"workflow is {status} but its execution does not "
                            "exist", None, workflow_id))
        elif execution_status != NO_EXECUTION:
            gaps.append(Gap(chain, "workflow.not_terminal", f"workflow is {status} but its execution is "
                            f"{execution_status}", None, workflow_id))
        else:
            gaps.append(Gap(chain, "workflow.not_started", f"workflow is {status} with no execution after "
                            f"{stale_after:.0f} s", None, workflow_id))
    if meta is not None:
        nodes = meta.get("nodes") or {}
        audited = node_states(records)
        for node_id in sorted(set(audited) | set(meta.get("node_ids") or ())):
            item = nodes.get(node_id)
            if item is not None and item.get("implicit") and node_id in audited:
                item = None  # PENDING because it has no item, where the chain says it moved
            if item is None or not item.get("status"):
                what = "no status item" if item is None else "a status item without a status"
                said = f"the chain says {audited[node_id]}" if node_id in audited else "the workflow names it"
                gaps.append(Gap(chain, "node.status_missing", f"node {node_id}: {said}, agent_workflows has {what}",
                                None, workflow_id, node_id))
            elif node_id in audited and item["status"] in NODE_TERMINAL and \
                    item["status"] not in NODE_COMPATIBLE[audited[node_id]]:
                # (an item not yet terminal is in flight, or an orphan below)
                gaps.append(Gap(chain, "node.status_mismatch", f"node {node_id}: the chain says {audited[node_id]}, "
                                f"agent_workflows says {item['status']}", None, workflow_id, node_id))
        if status in NODE_TERMINAL:
            for node_id, item in sorted(nodes.items()):
                if item.get("status") and item["status"] not in NODE_TERMINAL:
                    gaps.append(Gap(chain, "node.orphaned", f"node {node_id} is {item['status']} but the workflow "
                                    f"ended {status}", None, workflow_id, node_id))
    return WorkflowCheck(gaps, missing, in_flight and not gaps, status)


def _explain(milestone: Milestone, meta: dict[str, Any] | None, event: dict[str, Any] | None) -> str:
    if milestone.kind == "decision" and not milestone.source:
        if (event or {}).get("status") == "COMPLETED":
            return "agent_events says COMPLETED but the chain has no decision"
        return "accepted event has no decision record"
    if milestone.kind == "event.deferred":
        return "agent_events says DEFERRED but the chain has no event.deferred"
    if milestone.kind in WF_KIND.values():
        return f"workflow is {(meta or {}).get('status')} in agent_workflows but the chain has no {milestone.kind}"
    if milestone.node_id:
        return f"node {milestone.node_id} is {milestone.status} in agent_workflows but the chain has no outcome for it"
    return milestone.describe()
