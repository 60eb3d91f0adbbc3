"""``powerx-agent smoke``: prove a deployed engine works, right after ``cdk deploy``.

It sends a C-1-shaped event (``plugin.job.completed``, a report job: report-on-job-completed renders,
then archives and notifies) and a C-2-shaped one (``tenant.request.pending``, which no strategy
matches: a manual review is opened) for a test tenant onto the stack's bus, then checks their outcomes
the way the demo does, through what AWS keeps: the idempotency record, the decision and the audit
trail, the workflow and its nodes, the Step Functions execution, the review work order. One
:class:`Check` per line, PASS or FAIL.

Each run uses fresh idempotency keys (``smoke-<run>-c1``), so it can be run again at any time; the
events go to the real downstream services as tenant ``--tenant`` (a tenant reserved for this).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from powerx_agent.escalation.service import review_id_for
from powerx_agent.ingest.service import workflow_id_for

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

C1_STRATEGY = "report-on-job-completed"
C1_NODES = {"render": "SUCCEEDED", "archive": "SUCCEEDED", "tell-owner": "SUCCEEDED", "approve": "SKIPPED"}
C1_PLUGINS = ("report-renderer", "s3-archiver")
EVENT_TYPES = ("plugin.job.completed", "tenant.request.pending")


@dataclass
class Check:
    scenario: str
    what: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.scenario}  {self.what}" + (f": {self.detail}" if self.detail
                                                                                 else "")


@dataclass
class Smoke:
    deps: Deps
    tenant_id: str
    timeout: float = 120.0
    poll: float = 1.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    checks: list[Check] = field(default_factory=list)
    report: Callable[[Check], None] = lambda check: None

    def check(self, scenario: str, what: str, ok: bool, detail: str = "") -> bool:
        found = Check(scenario, what, bool(ok), detail)
        self.checks.append(found)
        self.report(found)
        return found.ok

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    # -- sending and waiting -------------------------------------------------------------------

    def _envelope(self, scenario: str, payload: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "event_id": f"smoke-{self.run_id}-{scenario}",
                "idempotency_key": f"smoke-{self.run_id}-{scenario}",
                "occurred_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "context": {"actor": "powerx-agent smoke", **context}, "payload": payload}

    def _put(self, event_type: str, source: str, detail: dict[str, Any]) -> str:
        (outcome,) = self.deps.bus.put([{"Source": source, "DetailType": event_type, "Detail": json.dumps(detail)}])
        return "" if outcome.ok else f"{outcome.error_code}: {outcome.error_message}"

    def _until(self, probe: Callable[[], Any]) -> Any:
        deadline = self.clock() + self.timeout
        while True:
            found = probe()
            if found or self.clock() >= deadline:
                return found
            self.sleep(self.poll)

    def _kinds(self, workflow_id: str) -> list[str]:
        return [r["kind"] for r in sorted(self.deps.audit.chain(f"WF#{workflow_id}"), key=lambda r: r["seq"])]

    def _outcome(self, key: str, workflow_id: str) -> dict[str, Any] | None:
        """The event's record once ingest and the matcher are done with it (or its rejection)."""
        record = self.deps.events.get(self.tenant_id, key)
        if record and record.get("status") not in (None, "IN_PROGRESS"):
            return record
        rejected = [r for r in self.deps.audit.chain(f"WF#{workflow_id}") if r["kind"] == "event.rejected"]
        return {"status": "REJECTED", "code": rejected[0]["data"].get("code")} if rejected else None

    def _decision(self, workflow_id: str) -> dict[str, Any] | None:
        found = [r for r in self.deps.audit.chain(f"WF#{workflow_id}") if r["kind"] == "decision"]
        return found[0]["data"]["decision"] if found else None

    # -- the checks ----------------------------------------------------------------------------

    def tenant(self) -> bool:
        tenant = self.deps.tenants.read(self.tenant_id)
        problems = []
        if tenant is None:
            problems.append("not registered (powerx-agent tenants apply FILE)")
        else:
            if tenant.get("status") != "active":
                problems.append(f"status {tenant.get('status')}")
            allowed = tenant.get("allowed_event_types") or []
            problems += [f"event type {t} not allowed" for t in EVENT_TYPES if "*" not in allowed and t not in allowed]
            plugins = tenant.get("allowed_plugins") or []
            problems += [f"plugin {p} not allowed" for p in C1_PLUGINS if "*" not in plugins and p not in plugins]
        return self.check("setup", f"tenant {self.tenant_id} registered, active, allowed C-1 and C-2",
                          not problems, "; ".join(problems))

    def _accepted(self, name: str, event_type: str, source: str,
                  detail: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """Put the event and wait until it is done with (two checks): its workflow id and event record
        once accepted, None when it was not."""
        key = detail["idempotency_key"]
        workflow_id = workflow_id_for(self.tenant_id, key)
        failed = self._put(event_type, source, detail)
        if not self.check(name, "PutEvents onto the bus", not failed, failed):
            return None
        record = self._until(lambda: self._outcome(key, workflow_id))
        if not self.check(name, "ingest accepted the event", record and record.get("status") != "REJECTED",
                          _describe(record)):
            return None
        return workflow_id, record

    def c1(self) -> None:
        name = "C-1"
        detail = self._envelope("c1", {"job": {"id": f"smoke-{self.run_id}", "type": "report", "rows": 1200}},
                                {"region": "eu-west-1"})
        accepted = self._accepted(name, "plugin.job.completed", "powerx.plugins", detail)
        if accepted is None:
            return
        workflow_id, _ = accepted
        decision = self._decision(workflow_id) or {}
        selected = (decision.get("selected") or {}).get("strategy_id")
        if not self.check(name, f"strategy {C1_STRATEGY} selected", selected == C1_STRATEGY,
                          f"selected {selected}; the library's active strategies: "
                          f"{sorted(self.deps.strategies.revision().get('active', {}))} (publish and approve first)"):
            return
        workflow = self._until(lambda: _terminal(self.deps.workflows.get(workflow_id)))
        execution = (workflow or {}).get("execution_arn")
        status = self.deps.state_machines.status(execution)
        self.check(name, "execution SUCCEEDED", status == "SUCCEEDED", f"{status or 'no execution'}")
        nodes = {n: (workflow or {}).get("nodes", {}).get(n, {}).get("status") for n in C1_NODES}
        self.check(name, "workflow SUCCEEDED; render, archive, tell-owner SUCCEEDED, approve SKIPPED",
                   (workflow or {}).get("status") == "SUCCEEDED" and nodes == C1_NODES,
                   f"workflow {(workflow or {}).get('status')}, nodes {nodes}")
        again = self._put("plugin.job.completed", "powerx.plugins", {**detail, "event_id": detail["event_id"] + "-again"})
        duplicate = not again and self._until(lambda: "event.duplicate" in self._kinds(workflow_id))
        kinds = self._kinds(workflow_id)
        self.check(name, "second delivery absorbed as a duplicate (one workflow)",
                   bool(duplicate) and kinds.count("workflow.started") == 1, again or f"audit {kinds}")
        needed = {"event.accepted", "decision", "workflow.started", "node.succeeded", "node.skipped",
                  "workflow.succeeded"}
        self.check(name, "audit trail: accepted, decision, started, every node, succeeded",
                   needed <= set(kinds), f"missing {sorted(needed - set(kinds))}" if needed - set(kinds) else "")

    def c2(self) -> None:
        name = "C-2"
        detail = self._envelope("c2", {"request": {"id": f"smoke-{self.run_id}", "kind": "smoke-check"}}, {})
        accepted = self._accepted(name, "tenant.request.pending", "powerx.tenants", detail)
        if accepted is None:
            return
        workflow_id, record = accepted
        decision = self._decision(workflow_id)
        self.check(name, "no strategy matched", decision is not None and decision.get("selected") is None,
                   "no decision recorded" if decision is None else f"selected {decision.get('selected')}")
        review = self.deps.workflows.get_review(review_id_for(workflow_id, "no_strategy_matched"))
        self.check(name, "manual review work order opened, reason no_strategy_matched",
                   review is not None and review.get("reason") == "no_strategy_matched",
                   "" if review else "no review item")
        escalations = [r for r in self.deps.audit.chain(f"WF#{workflow_id}") if r["kind"] == "escalation.opened"]
        self.check(name, "escalation audited with reason no_strategy_matched",
                   len(escalations) == 1 and escalations[0].get("escalation_reason") == "no_strategy_matched",
                   f"{len(escalations)} escalation record(s)")
        self.check(name, "event recorded COMPLETED / escalated",
                   record.get("status") == "COMPLETED" and record.get("outcome") == "escalated", _describe(record))

    def run(self) -> bool:
        if self.tenant():
            self.c1()
            self.c2()
        return self.ok


def _terminal(workflow: dict[str, Any] | None) -> dict[str, Any] | None:
    return workflow if workflow and workflow.get("status") in ("SUCCEEDED", "FAILED", "ESCALATED", "STOPPED") \
        else None


def _describe(record: dict[str, Any] | None) -> str:
    if not record:
        return "no record within the timeout (is the ingest rule routing to the function?)"
    if record.get("status") == "REJECTED":
        return f"rejected {record.get('code')}"
    return f"{record.get('status')} / {record.get('outcome')}"
