"""``powerx-agent repair [--apply]``: make ``agent_workflows`` and the audit trail agree with Step
Functions again, append-only (semantics in docs/operations.md, "Audit verify and repair").

Findings and their fixes:

- ``execution.orphan``: an execution of one of our hash-named state machines (the per-strategy
  alias machines are skipped) without a workflow record → recreate META (from the execution
  input's ``workflow`` block and the execution's status) and one node item per ``run`` task of the
  definition, with the status the execution history gives it, then append ``audit.repaired``
  records: what was recreated, and each missing milestone (acceptance and decision only when
  ``agent_events`` holds the event: an execution started outside the matcher has neither).
- ``workflow.execution_gone``: META names an execution that does not exist. PENDING/RUNNING →
  open an escalation (reason ``execution_missing``), settle the nodes, workflow ESCALATED, close the
  reviews whose task tokens died with the execution. Already finished → reported; ``--apply`` only
  notes it on META and in the chain (no status changes). Finished more than
  ``EXECUTION_RETENTION_DAYS`` ago → not reported: Step Functions has expired the execution.
- ``workflow.not_terminal``: META is PENDING/RUNNING but the execution has ended → the status the
  execution ended with (SUCCEEDED / FAILED / STOPPED).
- ``node.orphaned``: the workflow ended but a node is still PENDING/RUNNING → the node's outcome
  from the execution history (SUCCEEDED if its state exited, else FAILED; PENDING → SKIPPED).
- ``node.status_missing``: the chain (or the definition) names a node that has no status item →
  recreate it with the status the chain records (else the execution history's).
- ``audit.missing``: a milestone record is missing from a workflow's chain (acceptance, decision,
  workflow.started, a node's outcome, the workflow's outcome) → append ``audit.repaired`` with
  ``data.reconstructs = <kind>`` and what it was reconstructed from. A running workflow's node
  outcomes are not owed yet (audit.completeness): their writer may be between the status and its record.
- ``chain.missing``: records are missing in the middle of a chain (the hash chain is broken for
  ever) → after the reconstructions, append ``chain.rebased`` naming the lost sequence numbers and
  pinning the ``prev_hash`` of the record after each hole, so ``audit verify`` accepts exactly that
  hole and nothing else.
- ``chain.altered`` / ``chain.link``: an edited record is evidence, not damage: reported, never
  "fixed".

Dry-run by default (every finding and the fix it would make is printed); ``--apply`` performs the
fixes and records each one as ``repair.applied`` in the chain ``OPS#repair``.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from powerx_agent.audit.chain import check_chain, effective_kinds, node_states
from powerx_agent.audit.completeness import (
    GAP_FOR_KIND,
    NO_EXECUTION,
    WF_KIND,
    WF_TERMINAL_FOR_STATUS,
    Milestone,
    check_workflow,
    missing_milestones,
)
from powerx_agent.audit.kinds import AuditKind
from powerx_agent.audit.records import AuditEntry, workflow_chain
from powerx_agent.errors import AgentError
from powerx_agent.ops.audit import _epoch, gather, normalise_since, workflow_execution_status
from powerx_agent.ops.history import EXEC_TO_WF, History, load_history, node_ids_from_definition
from powerx_agent.status import NODE_TERMINAL, WORKFLOW_ACTIVE, WORKFLOW_TERMINAL

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

OPS_CHAIN = "OPS#repair"
NODE_KIND = {"SUCCEEDED": "node.succeeded", "FAILED": "node.failed", "SKIPPED": "node.skipped",
             "ESCALATED": "node.failed"}
RETRY_NAME = re.compile(r"^(?P<workflow>wf-.+)-r(?P<n>[0-9]{1,6})$")
"""``<workflow id>-r<n>``: the execution of a retry's generation n + 1 (ops/workflow.py)."""
METERED = {"workflow.started": "generated", "node.succeeded": "node_success", "node.failed": "node_failure"}
EXECUTION_RETENTION_DAYS = 90  # Step Functions keeps closed standard executions this long


LOOK = "none automatic: look at it with powerx-agent audit show and workflow show"
UNFIXABLE = {
    "node.status_mismatch": "none automatic: the chain and the item disagree on what happened; look at "
                            "powerx-agent workflow show and audit show, then workflow fill or retry",
    "event.no_outcome": "none automatic: the decision has no outcome; look at powerx-agent audit show",
    "event.no_acceptance": LOOK,
    "event.no_chain": "none automatic: the event was recorded but nothing of it was audited; replay it from the "
                      "bus archive (powerx-agent replay --archive) so it runs and is audited",
}


@dataclass
class Finding:
    code: str
    subject: str
    problem: str
    fix: str
    fixable: bool = True
    applied: bool = False
    error: str | None = None
    action: Any = field(default=None, repr=False)  # callable performing the fix

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "subject": self.subject, "problem": self.problem, "fix": self.fix,
                "fixable": self.fixable, "applied": self.applied, **({"error": self.error} if self.error else {})}


# -- the planner ---------------------------------------------------------------------------------

class Repair:
    def __init__(self, deps: Deps, by: str = "repair", tenant: str | None = None, stale_after: float = 900.0) -> None:
        self.deps = deps
        self.stale_after = stale_after
        self.by = by
        self.tenant = tenant
        self.run_id = f"repair-{uuid.uuid4().hex[:12]}"
        self.findings: list[Finding] = []
        self._histories: dict[str, History | None] = {}

    def history(self, execution_arn: str | None, started_after: float | None = None) -> History | None:
        if not execution_arn:
            return None
        if execution_arn not in self._histories:
            self._histories[execution_arn] = load_history(self.deps, execution_arn, started_after)
        return self._histories[execution_arn]

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def _meter(self, meta: dict[str, Any], kinds: list[str]) -> None:
        """Count in EMF the facts repair records that the engine never counted (the nodes of an
        execution that ran without a workflow record, nodes settled because the execution is
        gone), so the figures from the audit trail and the EMF totals keep agreeing. Restoring a
        *deleted* record is not metered: the engine counted it when it happened."""
        names = [METERED[k] for k in kinds if k in METERED]
        if not names:
            return
        from powerx_agent import spec

        metrics = self.deps.metrics()
        for name in names:
            metrics.add(spec.METRICS[name], 1, tenant=meta.get("tenant_id"), strategy=meta.get("strategy_id"))
        metrics.flush()

    def _repaired(self, workflow_id: str, meta: dict[str, Any], reconstructs: str | None, source: str,
                  **fields: Any) -> None:
        data = {"repair_run": self.run_id, "by": self.by, "source": source, **fields.pop("data", {})}
        if reconstructs:
            data["reconstructs"] = reconstructs
        self.deps.audit.append(AuditEntry(
            AuditKind.AUDIT_REPAIRED, workflow_chain(workflow_id), tenant_id=meta.get("tenant_id"),
            event_id=meta.get("event_id"), workflow_id=workflow_id, strategy_id=meta.get("strategy_id"),
            data=data, **fields))

    # -- phase 1: executions without a workflow record ---------------------------------------
    def _is_alias_machine(self, machine: dict[str, Any]) -> bool:
        """The per-strategy alias machine ``agent-<strategy>`` (adapters/state_machines.py) carries the tag
        ``powerx:strategy = <id>``; the hash-named machines executions start on carry ``<id>@v<N>``
        and ``powerx:definition-sha256``. Untagged machines are listed (we cannot tell)."""
        tags = self.deps.state_machines.tags(machine["stateMachineArn"])
        if tags is None:  # no tags readable: treat it as one executions may run on
            return False
        strategy = tags.get("powerx:strategy")
        return bool(strategy) and "@" not in strategy and "powerx:definition-sha256" not in tags

    def plan_orphan_executions(self, known: set[str], since_epoch: float | None = None) -> None:
        """Executions of no recorded workflow. A retry's execution ``<workflow id>-r<n>`` belongs to its
        workflow; when the workflow record is gone, one finding per workflow recreates it from its newest
        execution."""
        orphans: dict[str, tuple[int, dict[str, Any]]] = {}
        for machine in self.deps.state_machines.machines(self.deps.settings.state_machine_prefix):
            if self._is_alias_machine(machine):
                continue
            for execution in self.deps.state_machines.executions(machine["stateMachineArn"]):
                name = execution["name"]
                retry = RETRY_NAME.match(name)
                workflow_id, generation = (retry["workflow"], int(retry["n"]) + 1) if retry else (name, 1)
                if workflow_id in known:
                    continue
                started = execution.get("startDate")
                if since_epoch is not None and hasattr(started, "timestamp") and started.timestamp() < since_epoch:
                    continue
                if self.tenant and not workflow_id.startswith(f"wf-{self.tenant[:20]}-"):
                    continue
                if self.deps.workflows.get(workflow_id) is not None:
                    known.add(workflow_id)
                    continue
                if workflow_id not in orphans or orphans[workflow_id][0] < generation:
                    orphans[workflow_id] = (generation, execution)
        for workflow_id, (generation, execution) in sorted(orphans.items()):
            arn = execution["executionArn"]
            self.add(Finding("execution.orphan", workflow_id,
                             f"execution {arn} ({execution['status']}"
                             + (f", generation {generation}" if generation > 1 else "") + ") has no workflow record",
                             "recreate the workflow record (from the execution input and status) and a "
                             "node item per run task of the definition (status from the execution "
                             "history), then append audit.repaired records for what was recreated",
                             action=lambda arn=arn, g=generation: self._recreate(arn, g)))

    def _recreate(self, execution_arn: str, generation: int = 1) -> None:
        history = self.history(execution_arn)
        if history is None:
            raise AgentError(f"execution {execution_arn} disappeared", code="repair.execution_gone")
        wf = history.input.get("workflow") or {}
        name = execution_arn.rsplit(":", 1)[-1]
        workflow_id = wf.get("workflow_id") or name
        if name not in (workflow_id, f"{workflow_id}-r{generation - 1}"):
            raise AgentError(f"execution {execution_arn} carries workflow id {workflow_id!r} in its input, which "
                             "its name does not match: not recreated (investigate by hand)",
                             code="repair.foreign_execution")
        sm_arn = history.state_machine_arn or execution_arn.replace(":execution:", ":stateMachine:").rsplit(":", 1)[0]
        tenant_id = wf.get("tenant_id") or "unknown"
        event = (self.deps.events.get(tenant_id, wf["idempotency_key"])
                 if wf.get("tenant_id") and wf.get("idempotency_key") else None)
        if event is not None and event.get("workflow_id") not in (None, workflow_id):
            event = None
        status = history.workflow_status()
        nodes = node_ids_from_definition(history.definition)
        meta = {"workflow_id": workflow_id, "tenant_id": tenant_id,
                "event_id": wf.get("event_id"), "idempotency_key": wf.get("idempotency_key"),
                "event_type": wf.get("event_type"), "strategy_id": wf.get("strategy_id"),
                "strategy_version": wf.get("strategy_version"), "state_machine_arn": sm_arn,
                "execution_arn": execution_arn, "traceparent": wf.get("traceparent"),
                "generation": generation if generation > 1 else None, "node_ids": nodes,
                "recreated_by": self.run_id, "recreated_from": "execution input + history",
                "started_at": history.started_at()}
        meta = {k: v for k, v in meta.items() if v is not None}
        if not self.deps.workflows.create(meta, nodes):
            raise AgentError(f"workflow {workflow_id} was created meanwhile: nothing recreated",
                             code="repair.conflict")
        node_status: dict[str, str] = {}
        for node_id in nodes:
            found = history.node_status(node_id)
            if status != "RUNNING":
                # the workflow ended: a node still running then failed with it; never entered → SKIPPED
                found = "FAILED" if found == "RUNNING" else found or "SKIPPED"
            found = found or "PENDING"
            if found != "PENDING":
                self.deps.workflows.transition_node(workflow_id, node_id, found, repaired_by=self.run_id)
            node_status[node_id] = found
        if status == "RUNNING":
            self.deps.workflows.transition_workflow(workflow_id, "RUNNING")
        else:
            self.deps.workflows.transition_workflow(
                workflow_id, status, finished_at=round(time.time(), 3),
                **({"escalation_reason": "node_failed"} if status == "ESCALATED" else {}))
        self._repaired(workflow_id, meta, None, "execution input + history",
                       status=status, data={"action": "workflow_record_recreated", "execution_arn": execution_arn,
                                            "execution_status": history.status, "nodes": node_status,
                                            "generation": generation, "event_record": bool(event)})
        # the milestones the chain lacks, reconstructed right away from what was just recreated
        fresh = self.deps.workflows.get(workflow_id) or meta
        records = self.deps.audit.chain(workflow_chain(workflow_id))
        wanted = [m for m in missing_milestones(fresh, records, event) if m.source]
        for milestone in wanted:
            self._append_milestone(workflow_id, fresh, milestone, history)
        self._meter(fresh, [m.kind for m in wanted])

    def _settle_node(self, workflow_id: str, node_id: str, current: str, history: History | None) -> str:
        outcome = history.node_outcome(node_id) if history else None
        if outcome is None:
            outcome = "SKIPPED" if current == "PENDING" else "FAILED"
        if outcome == "SKIPPED" and current != "PENDING":
            outcome = "FAILED"
        self.deps.workflows.transition_node(workflow_id, node_id, outcome, repaired_by=self.run_id,
                                            **({"error": {"message": "orphaned: the workflow ended first"}}
                                               if outcome == "FAILED" else {}))
        return outcome

    # -- phase 2: workflows, nodes, chains ---------------------------------------------------
    def plan_workflow(self, workflow_id: str, meta: dict[str, Any] | None, records: list[dict[str, Any]],
                      event: dict[str, Any] | None, now: float | None = None) -> None:
        """A finding for every gap of :func:`check_workflow` (what ``audit verify`` reports), with the
        fix when there is one."""
        now = now if now is not None else time.time()
        check = check_workflow(workflow_id, records, meta, event, workflow_execution_status(self.deps, meta),
                               now=now, stale_after=self.stale_after)
        chain = workflow_chain(workflow_id)
        gaps = {g.code: g for g in check.gaps}
        milestone_codes = {self._gap_code(m) for m in check.missing}
        for gap in check.gaps:
            if gap.code not in milestone_codes and (meta is None or gap.code in UNFIXABLE):
                self.add(Finding(gap.code, f"{workflow_id}/{gap.node_id}" if gap.node_id else chain, gap.message,
                                 UNFIXABLE.get(gap.code, LOOK), fixable=False))
        if meta is None:
            self._plan_milestones(workflow_id, {"workflow_id": workflow_id, **(event or {})}, check.missing, None)
            return
        status = str(meta.get("status"))
        arn = meta.get("execution_arn")
        for code in ("workflow.execution_gone", "workflow.not_started"):
            if code in gaps:
                self.add(Finding(code, workflow_id, gaps[code].message,
                                 "open an escalation (reason execution_missing) so a person takes it over, settle "
                                 "its nodes, mark the workflow ESCALATED, close reviews whose task token died "
                                 "with the execution, audit it",
                                 action=lambda: self._execution_missing(workflow_id, meta)))
                return
        if "workflow.not_terminal" in gaps:
            exec_status = str(workflow_execution_status(self.deps, meta))
            target = EXEC_TO_WF.get(exec_status, "FAILED")
            self.add(Finding("workflow.not_terminal", workflow_id, gaps["workflow.not_terminal"].message,
                             f"mark the workflow {target}, settle its nodes, audit it",
                             action=lambda t=target, e=exec_status: self._end(workflow_id, meta, t,
                                                                               f"execution_{e.lower()}")))
            return
        nodes = meta.get("nodes") or {}
        audited = node_states(records)
        history = self.history(arn, meta.get("created_at")) if arn and (status not in WORKFLOW_ACTIVE or audited) else None
        if arn and history is None and status not in WORKFLOW_ACTIVE and self._gone_recently(meta):
            self.add(Finding("workflow.execution_gone", workflow_id,
                             f"workflow ended {status} but execution {arn} does not exist (within the "
                             f"{EXECUTION_RETENTION_DAYS}-day retention of Step Functions)",
                             "none to the workflow (it had ended): note the missing execution on META and in "
                             "the chain so it is not reported again; its history cannot be recovered",
                             action=lambda: self._note_execution_missing(workflow_id, meta)))
        # node items the chain, the META or (for workflows recorded before META named its nodes) the
        # execution's definition names
        expected_nodes = {g.node_id for g in check.gaps if g.code == "node.status_missing" and g.node_id}
        if history is not None and not meta.get("node_ids"):
            expected_nodes |= set(node_ids_from_definition(history.definition)) - set(nodes)
        for node_id in sorted(expected_nodes):
            target = audited.get(node_id) or (history.node_outcome(node_id) if history else None)
            if status in WORKFLOW_ACTIVE and target is None:
                target = "PENDING"
            target = target or ("SKIPPED" if status in WORKFLOW_TERMINAL else "PENDING")
            self.add(Finding("node.status_missing", f"{workflow_id}/{node_id}",
                             f"node {node_id} has no status item (chain says {audited.get(node_id) or '-'})",
                             f"recreate the node item with status {target}",
                             action=lambda n=node_id, t=target: self._restore_node(workflow_id, meta, n, t, records)))
        for gap in check.gaps:
            if gap.code == "node.orphaned" and gap.node_id:
                current = str(nodes[gap.node_id].get("status"))
                self.add(Finding("node.orphaned", f"{workflow_id}/{gap.node_id}", gap.message,
                                 "settle the node from the execution history (exited → SUCCEEDED, "
                                 "else FAILED; never started → SKIPPED)",
                                 action=lambda n=gap.node_id, c=current: self._orphan(
                                     workflow_id, meta, n, c, audited.get(n))))
        self._plan_milestones(workflow_id, meta, check.missing, history)

    @staticmethod
    def _gap_code(milestone: Milestone) -> str:
        return GAP_FOR_KIND.get(milestone.kind, "node.no_outcome")

    def _plan_milestones(self, workflow_id: str, meta: dict[str, Any], missing: list[Milestone],
                         history: History | None) -> None:
        chain = workflow_chain(workflow_id)
        for milestone in missing:
            if not milestone.source:
                self.add(Finding("audit.missing", chain, f"{milestone.describe()} ({self._gap_code(milestone)})",
                                 "none: nothing is left to rebuild it from; the event can be replayed "
                                 "(powerx-agent replay) from the bus archive", fixable=False))
                continue
            self.add(Finding("audit.missing", chain, f"{milestone.describe()} ({self._gap_code(milestone)})",
                             f"append audit.repaired reconstructing {milestone.kind} from {milestone.source}",
                             action=lambda m=milestone: self._append_milestone(workflow_id, meta, m, history)))

    def _restore_node(self, workflow_id: str, meta: dict[str, Any], node_id: str, status: str,
                      records: list[dict[str, Any]]) -> None:
        self.deps.workflows.ensure_node(workflow_id, node_id)
        last = next((r for r in sorted(records, key=lambda r: -int(r["seq"])) if r.get("node_id") == node_id), None)
        attempts = max([int((r.get("data") or {}).get("attempt") or 0) for r in records
                        if r.get("node_id") == node_id] or [0])
        fields: dict[str, Any] = {"attempts": attempts or None, "restored_by": self.run_id,
                                  "duration": (last or {}).get("duration")}
        if status == "ESCALATED":
            self.deps.workflows.transition_node(workflow_id, node_id, "FAILED", **fields)
        if status != "PENDING":
            self.deps.workflows.transition_node(workflow_id, node_id, status, **fields)
        self._repaired(workflow_id, meta, None, "audit chain + execution history", node_id=node_id, status=status,
                       data={"action": "node_item_restored"})

    def _orphan(self, workflow_id: str, meta: dict[str, Any], node_id: str, current: str,
                audited: str | None, **data: Any) -> None:
        """Settle one node from the execution history and audit it (``data`` defaults to an orphan's)."""
        outcome = self._settle_node(workflow_id, node_id, current,
                                    self.history(meta.get("execution_arn"), meta.get("created_at")))
        # reconstruct the node's outcome record only when the chain does not already hold it
        reconstructs = None if audited == outcome else NODE_KIND[outcome]
        self._repaired(workflow_id, meta, reconstructs, "execution history", node_id=node_id,
                       status=outcome, data={"action": "orphaned_node_settled", **data, "was": current})

    @staticmethod
    def _gone_recently(meta: dict[str, Any]) -> bool:
        if meta.get("execution_missing_noted"):
            return False
        ended = float(meta.get("finished_at") or meta.get("updated_at") or meta.get("created_at") or 0)
        return time.time() - ended < EXECUTION_RETENTION_DAYS * 86400

    def _note_execution_missing(self, workflow_id: str, meta: dict[str, Any]) -> None:
        self.deps.workflows.update_meta(workflow_id, execution_missing_noted=round(time.time(), 3),
                                        execution_missing_noted_by=self.run_id)
        self._repaired(workflow_id, meta, None, "Step Functions DescribeExecution", status=meta.get("status"),
                       data={"action": "execution_missing_noted", "execution_arn": meta.get("execution_arn"),
                             "reason": "execution_missing"})

    def _execution_missing(self, workflow_id: str, meta: dict[str, Any]) -> None:
        """A workflow still PENDING/RUNNING whose execution is gone: nothing will ever finish it, so
        a person must. Escalate first (idempotent: a re-run finds the review and only completes what
        is missing), then settle the nodes and the workflow, then audit what was done."""
        from powerx_agent.escalation.service import escalate

        tenant_id = str(meta.get("tenant_id"))
        tenant = self.deps.tenants.get(tenant_id) or {}
        metrics = self.deps.metrics()
        result = escalate(self.deps, metrics, workflow_id=workflow_id, tenant_id=tenant_id,
                          event_id=meta.get("event_id"), reason="execution_missing", queue="ops",
                          notify_to=[t for t in (tenant.get("notify") or [tenant.get("owner")]) if t],
                          details={"execution_arn": meta.get("execution_arn"), "was": meta.get("status"),
                                   "repair_run": self.run_id},
                          strategy_id=meta.get("strategy_id"), traceparent=str(meta.get("traceparent") or ""))
        metrics.flush()
        settled: dict[str, str] = {}
        for node_id, item in sorted((meta.get("nodes") or {}).items()):
            current = str(item.get("status"))
            if current in NODE_TERMINAL:
                continue
            outcome = "SKIPPED" if current == "PENDING" else "FAILED"
            self.deps.workflows.transition_node(workflow_id, node_id, outcome, repaired_by=self.run_id,
                                                **({"error": {"message": "execution_missing"}}
                                                   if outcome == "FAILED" else {}))
            settled[node_id] = outcome
        closed = []
        for review in self.deps.workflows.open_reviews_for(workflow_id):
            if review.get("task_token") and self.deps.workflows.close_review(
                    review["review_id"], "cancelled", self.by, "execution_missing: the task token died with it"):
                closed.append(review["review_id"])
                self.deps.audit.append(AuditEntry(
                    AuditKind.REVIEW_CANCELLED, workflow_chain(workflow_id), tenant_id=tenant_id,
                    event_id=meta.get("event_id"), workflow_id=workflow_id, strategy_id=meta.get("strategy_id"),
                    node_id=review.get("node_id"), status="CANCELLED", escalation_reason="execution_missing",
                    data={"review_id": review["review_id"], "by": self.by, "repair_run": self.run_id,
                          "reason": "the execution holding its task token is gone"}))
        if closed:
            from powerx_agent.escalation.backlog import emit_backlog

            metrics = self.deps.metrics()
            emit_backlog(self.deps, metrics)
            metrics.flush()
        now = round(time.time(), 3)
        self.deps.workflows.transition_workflow(workflow_id, "ESCALATED", finished_at=now,
                                                escalation_reason="execution_missing",
                                                execution_missing_noted=now, execution_missing_noted_by=self.run_id)
        for node_id, outcome in settled.items():
            self._repaired(workflow_id, meta, NODE_KIND[outcome], "repair (execution missing)", node_id=node_id,
                           status=outcome, data={"action": "node_settled", "reason": "execution_missing"})
        self._meter(meta, [NODE_KIND[outcome] for outcome in settled.values()])
        kinds = set(effective_kinds(self.deps.audit.chain(workflow_chain(workflow_id))))
        self._repaired(workflow_id, meta, None if kinds & WF_TERMINAL_FOR_STATUS["ESCALATED"] else AuditKind.WORKFLOW_ESCALATED,
                       "repair (execution missing)", status="ESCALATED", escalation_reason="execution_missing",
                       data={"action": "workflow_escalated", "reason": "execution_missing",
                             "execution_arn": meta.get("execution_arn"), "review_id": result.get("review_id"),
                             "nodes": settled, "reviews_closed": closed})

    def _end(self, workflow_id: str, meta: dict[str, Any], status: str, reason: str) -> None:
        audited = node_states(self.deps.audit.chain(workflow_chain(workflow_id)))
        for node_id, item in sorted((meta.get("nodes") or {}).items()):
            if item.get("status") not in NODE_TERMINAL:  # every node it settles is audited
                self._orphan(workflow_id, meta, node_id, str(item.get("status")), audited.get(node_id),
                             action="node_settled", reason=reason)
        self.deps.workflows.transition_workflow(workflow_id, status, finished_at=round(time.time(), 3),
                                                **({"escalation_reason": reason} if status == "FAILED" else {}))
        self._repaired(workflow_id, meta, WF_KIND[status], "execution status", status=status,
                       data={"action": "workflow_settled", "reason": reason})

    def _append_milestone(self, workflow_id: str, meta: dict[str, Any], milestone: Milestone,
                          history: History | None = None) -> None:
        data = dict(milestone.data)
        if milestone.kind == "workflow.started" and history is not None:
            data["started_at"] = history.started_at()
        self._repaired(workflow_id, meta, milestone.kind, milestone.source, status=milestone.status,
                       node_id=milestone.node_id, data={k: v for k, v in data.items() if v is not None})

    def plan_chain(self, chain: str, records: list[dict[str, Any]]) -> None:
        gaps, _ = check_chain(chain, records)
        holes = [g for g in gaps if g.code == "chain.missing"]
        for gap in gaps:
            if gap.code != "chain.missing":
                self.add(Finding(gap.code, chain, str(gap), "none: an altered record is evidence; investigate "
                                 "(restore the table from point-in-time recovery to compare)", fixable=False))
        if holes:
            self.add(Finding("chain.missing", chain, "; ".join(g.message for g in holes),
                             "append chain.rebased naming the lost sequence numbers (after any reconstruction)",
                             action=lambda: self._rebase(chain)))

    def plan_escalations(self, since_epoch: float | None = None) -> None:
        """Open reviews whose work order or notification was never delivered (the downstream service stayed
        down past the Escalate state's retries): resend what is missing, with the same idempotency key."""
        from powerx_agent.escalation.service import resend, unsent

        for listed in self.deps.workflows.open_reviews(limit=10**6):
            if self.tenant and listed.get("tenant_id") != self.tenant:
                continue
            if since_epoch is not None and float(listed.get("created_at") or 0) < since_epoch:
                continue
            review = self.deps.workflows.get_review(listed["review_id"]) or listed
            missing = unsent(review)
            if review.get("status") != "OPEN" or not missing:
                continue
            self.add(Finding("escalation.unsent", review["review_id"],
                             f"review {review['review_id']} ({review.get('reason')}, workflow {review.get('workflow_id')}):"
                             f" {' and '.join(missing)} never delivered",
                             f"send the {' and the '.join(missing)} again with Idempotency-Key {review['review_id']}",
                             action=lambda r=review: resend(self.deps, r)))

    def _rebase(self, chain: str) -> None:
        records = sorted(self.deps.audit.chain(chain), key=lambda r: int(r["seq"]))
        gaps, _ = check_chain(chain, records)
        holes = [g for g in gaps if g.code == "chain.missing"]
        if not holes:
            return
        by_seq = {int(r["seq"]): r for r in records}
        missing: list[int] = []
        resumes = []
        expected = 1
        for seq in sorted(by_seq):
            if seq > expected:
                missing += list(range(expected, seq))
                resumes.append({"seq": seq, "prev_hash": by_seq[seq].get("prev_hash"),
                                "last_good_seq": expected - 1 if expected > 1 else None,
                                "last_good_hash": by_seq[expected - 1]["hash"] if expected - 1 in by_seq else None})
            expected = seq + 1
        repaired = [int(r["seq"]) for r in records if r.get("kind") == AuditKind.AUDIT_REPAIRED
                    and (r.get("data") or {}).get("repair_run") == self.run_id]
        first = records[0]
        self.deps.audit.append(AuditEntry(
            AuditKind.CHAIN_REBASED, chain, tenant_id=first.get("tenant_id"), workflow_id=first.get("workflow_id"),
            event_id=first.get("event_id"),
            data={"missing_seqs": missing, "resumes": resumes, "repair_run": self.run_id, "by": self.by,
                  "reconstructed_seqs": repaired,
                  "note": "these records were lost; what could be rebuilt is in the audit.repaired records named"}))

    # -- run ------------------------------------------------------------------------------------
    def plan(self, since: str | None = None) -> list[Finding]:
        scope = gather(self.deps, self.tenant, since)
        since_iso = normalise_since(since)
        self.plan_orphan_executions(set(scope.workflows), _epoch(since_iso) if since_iso else None)
        events_by_wf = {e.get("workflow_id"): e for e in scope.events if e.get("workflow_id")}
        now = time.time()
        for event in scope.events:
            if not scope.chains.get(workflow_chain(str(event.get("workflow_id")))) and \
                    event.get("workflow_id") not in scope.workflows:
                check = check_workflow(str(event.get("workflow_id")), [], None, event, NO_EXECUTION, now=now,
                                       stale_after=self.stale_after)
                if not check.in_flight:
                    self.add(Finding("event.no_chain", f"EVENT#{event['pk']}", f"agent_events record "
                                     f"({event.get('status')}) has no audit chain", UNFIXABLE["event.no_chain"],
                                     fixable=False))
        recreated = {f.subject for f in self.findings if f.code == "execution.orphan"}  # their fix covers the chain
        workflow_ids = ({c[3:] for c in scope.chains if c.startswith("WF#")} | set(scope.workflows)) - recreated
        for workflow_id in sorted(workflow_ids):
            self.plan_workflow(workflow_id, scope.workflows.get(workflow_id),
                               scope.chains.get(workflow_chain(workflow_id), []), events_by_wf.get(workflow_id), now)
        for chain, records in sorted(scope.chains.items()):
            self.plan_chain(chain, records)
        self.plan_escalations(_epoch(since_iso) if since_iso else None)
        # chain rebases last: they pin the state after every reconstruction
        self.findings.sort(key=lambda f: f.code == "chain.missing")
        return self.findings

    def apply(self) -> list[Finding]:
        for finding in self.findings:
            if not finding.fixable or finding.action is None:
                continue
            try:
                finding.action()
                finding.applied = True
            except Exception as exc:  # noqa: BLE001 - reported per finding, the run goes on
                finding.error = f"{type(exc).__name__}: {exc}"
            self.deps.audit.append(AuditEntry(
                AuditKind.REPAIR_APPLIED if finding.applied else AuditKind.REPAIR_FAILED, OPS_CHAIN,
                status="APPLIED" if finding.applied else "FAILED",
                data={"repair_run": self.run_id, "by": self.by, **finding.to_dict()}))
        return self.findings


def repair(deps: Deps, apply: bool = False, by: str = "repair", tenant: str | None = None,
           since: str | None = None) -> list[Finding]:
    job = Repair(deps, by=by, tenant=tenant)
    job.plan(since)
    if apply:
        job.apply()
    return job.findings
