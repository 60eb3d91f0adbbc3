"""Sandbox scenarios for ``powerx-agent local demo`` (and the e2e tests).

- C-1: ``plugin.job.completed`` for tenant acme, a report job → report-on-job-completed →
  render, then archive ∥ tell-owner, approve skipped → SUCCEEDED; sent twice → one workflow.
- C-2: ``tenant.request.pending`` that no strategy matches → manual review work order and owner
  notification, reason ``no_strategy_matched``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from powerx_agent import spec
from powerx_agent.adapters.metrics import read_emf_totals
from powerx_agent.audit.kinds import AuditKind
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.local.runtime import LocalRuntime
from powerx_agent.settings import Env

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def c1_event(suffix: str = "") -> dict[str, Any]:
    return {"tenant_id": "acme", "event_id": f"evt-c1{suffix}", "idempotency_key": f"job-42:completed{suffix}",
            "occurred_at": "2026-11-28T10:00:00Z",
            "context": {"traceparent": TRACEPARENT, "actor": "svc-reporting", "region": "eu-west-1"},
            "payload": {"job": {"id": "42", "type": "report", "rows": 1200}}}


def c2_event(suffix: str = "") -> dict[str, Any]:
    return {"tenant_id": "acme", "event_id": f"evt-c2{suffix}", "idempotency_key": f"req-7:pending{suffix}",
            "occurred_at": "2026-11-28T10:05:00Z", "context": {"actor": "portal"},
            "payload": {"request": {"id": "7", "kind": "quota-increase", "requested_by": "dana@acme.example"}}}


@dataclass
class ScenarioResult:
    name: str
    title: str
    event_type: str
    event_id: str
    workflow_id: str
    ok: bool = False
    expectations: list[tuple[str, bool]] = field(default_factory=list)
    decision: dict[str, Any] | None = None
    decision_reason: str = ""
    event_record: dict[str, Any] | None = None
    workflow: dict[str, Any] | None = None
    execution_status: str | None = None
    downstream: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def expect(self, what: str, holds: bool) -> None:
        self.expectations.append((what, bool(holds)))


def _collect(rt: LocalRuntime, result: ScenarioResult, tenant_id: str, key: str, since: int) -> None:
    deps = get_deps()
    result.event_record = deps.events.get(tenant_id, key)
    result.workflow = deps.workflows.get(result.workflow_id)
    result.audit = sorted(deps.audit.chain(f"WF#{result.workflow_id}"), key=lambda r: r["seq"])
    decision = next((r for r in result.audit if r["kind"] == AuditKind.DECISION), None)
    if decision:
        result.decision = decision["data"]["decision"]
        result.decision_reason = decision["data"]["reason"]
    if result.workflow and result.workflow.get("execution_arn"):
        result.execution_status = rt.client("stepfunctions").describe_execution(
            executionArn=result.workflow["execution_arn"])["status"]
    result.downstream = [{"path": r.path, "status": r.status, "headers": r.headers, "body": r.body}
                         for r in rt.sandbox.requests[since:]]


def escalation_total(rt: LocalRuntime, tenant_id: str) -> float:
    totals = read_emf_totals(rt.client("logs"), rt.environment[Env.METRICS_LOG_GROUP])
    return sum(v for (name, dims), v in totals.items()
               if name == spec.METRICS["escalations"] and ("tenant", tenant_id) in dims)


def run_c1(rt: LocalRuntime, suffix: str = "") -> ScenarioResult:
    detail = c1_event(suffix)
    key = detail["idempotency_key"]
    result = ScenarioResult("C-1", "report job completed → render, then archive ∥ notify", "plugin.job.completed",
                            detail["event_id"], workflow_id_for("acme", key))
    started = time.monotonic()
    since = len(rt.sandbox.requests)
    rt.put_event("plugin.job.completed", detail)
    rt.wait_idle(timeout=60)
    # the same event delivered again (a producer retry): absorbed, no second workflow
    rt.put_event("plugin.job.completed", {**detail, "event_id": detail["event_id"] + "-redelivered"})
    rt.wait_idle(timeout=60)
    result.seconds = time.monotonic() - started
    _collect(rt, result, "acme", key, since)
    wf = result.workflow or {}
    nodes = wf.get("nodes", {})
    plugin_calls = [c for c in result.downstream if c["path"].startswith("/plugin/runtime/")]
    kinds = [r["kind"] for r in result.audit]
    result.expect("strategy report-on-job-completed selected",
                  (result.decision or {}).get("selected", {}) and
                  result.decision["selected"]["strategy_id"] == "report-on-job-completed")
    result.expect("execution SUCCEEDED", result.execution_status == "SUCCEEDED")
    result.expect("workflow SUCCEEDED in agent_workflows", wf.get("status") == "SUCCEEDED")
    result.expect("render, archive, tell-owner SUCCEEDED; approve SKIPPED (rows ≤ 100000)",
                  [nodes.get(n, {}).get("status") for n in ("render", "archive", "tell-owner", "approve")]
                  == ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "SKIPPED"])
    result.expect("plugin runtime got Idempotency-Key and traceparent of this trace",
                  len(plugin_calls) == 2 and all(c["headers"].get("Idempotency-Key") and
                                                 c["headers"].get("traceparent", "").split("-")[1] ==
                                                 TRACEPARENT.split("-")[1] for c in plugin_calls))
    result.expect("archive started after render finished",
                  [c["path"].split("/")[3] for c in plugin_calls] == ["report-renderer", "s3-archiver"])
    result.expect("second delivery absorbed as a duplicate (one workflow)",
                  kinds.count(AuditKind.WORKFLOW_STARTED) == 1 and AuditKind.EVENT_DUPLICATE in kinds)
    result.expect("audit trail: accepted, decision, started, every node, succeeded",
                  {AuditKind.EVENT_ACCEPTED, "decision", AuditKind.WORKFLOW_STARTED, AuditKind.NODE_SUCCEEDED, AuditKind.NODE_SKIPPED,
                   AuditKind.WORKFLOW_SUCCEEDED} <= set(kinds))
    result.ok = all(holds for _, holds in result.expectations)
    return result


def run_c2(rt: LocalRuntime, suffix: str = "") -> ScenarioResult:
    detail = c2_event(suffix)
    key = detail["idempotency_key"]
    result = ScenarioResult("C-2", "pending tenant request, no strategy → manual review", "tenant.request.pending",
                            detail["event_id"], workflow_id_for("acme", key))
    started = time.monotonic()
    since = len(rt.sandbox.requests)
    before = escalation_total(rt, "acme")
    rt.put_event("tenant.request.pending", detail, source="powerx.tenants")
    rt.wait_idle(timeout=60)
    result.seconds = time.monotonic() - started
    counted = escalation_total(rt, "acme") - before
    _collect(rt, result, "acme", key, since)
    reviews = [c for c in result.downstream if c["path"] == "/ops/manual-review"]
    notes = [c for c in result.downstream if c["path"] == "/notifications/agent-task"]
    escalations = [r for r in result.audit if r["kind"] == AuditKind.ESCALATION_OPENED]
    result.expect("no strategy matched", result.decision is not None and result.decision.get("selected") is None)
    result.expect("manual review work order sent to /ops/manual-review with reason no_strategy_matched",
                  len(reviews) == 1 and reviews[0]["body"]["reason"] == "no_strategy_matched")
    result.expect("tenant owner notified", len(notes) == 1 and "owner@acme.example" in notes[0]["body"]["to"])
    result.expect("escalation audited with reason no_strategy_matched",
                  len(escalations) == 1 and escalations[0].get("escalation_reason") == "no_strategy_matched")
    result.expect("agent.manual_escalation_total counted once (EMF, tenant acme)", counted == 1)
    result.expect("event recorded COMPLETED / escalated",
                  (result.event_record or {}).get("outcome") == "escalated")
    result.ok = all(holds for _, holds in result.expectations)
    return result


def run_all(rt: LocalRuntime | None = None) -> list[ScenarioResult]:
    own = rt is None
    runtime = rt or LocalRuntime.start()
    try:
        suffix = "" if own else f"-{uuid.uuid4().hex[:6]}"
        return [run_c1(runtime, suffix), run_c2(runtime, suffix)]
    finally:
        if own:
            runtime.stop()
