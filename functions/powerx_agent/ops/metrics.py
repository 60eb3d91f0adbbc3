"""``powerx-agent metrics``: the spec's figures computed from the audit trail (docs/operations.md).

The audit trail is the source of truth, so the figures can be checked without CloudWatch. Each
figure is defined so that it equals what the EMF metric of the same name adds up to:

- hit rate: decisions that selected a strategy / all decisions (``agent.strategy.hit_rate`` is 1
  or 0 per decision, its average is the hit rate);
- generated: ``workflow.started`` records (``agent.workflow.generated_total``);
- node success / failures: ``node.succeeded`` / ``node.failed`` (``agent.node.success_total`` /
  ``agent.node.failure_total``); automated failure rate = failures / (successes + failures);
- escalations: ``escalation.opened`` (``agent.manual_escalation_total``); manual intervention rate =
  escalations / decisions (the alarm's metric math: escalations ÷ SampleCount of the hit rate);
- automated success per workflow: ``workflow.succeeded`` records with ``data.automated`` (no
  person approved, filled or retried anything) / every terminal workflow record (succeeded,
  escalated, failed, stopped) (``agent.workflow.automated_success_total`` /
  ``agent.workflow.finished_total``); the node figure beside it;
- latency p95: 95th percentile (nearest rank) of ``workflow.started.duration``, the generation
  latency from ``event.accepted`` to StartExecution returned, queue wait included
  (``agent.workflow.latency_p95``);
- rejected / duplicates: ``event.rejected`` / ``event.duplicate``;
- backlog: review work orders opened (``escalation.opened`` / ``review.requested``) and not yet
  closed (a ``review.*`` record naming the review id), cross-checked with the open REVIEW items.

When EMF totals are available (the embedded runtime writes EMF documents to a log group), each
count is compared with the sum of its metric; ``mismatches`` lists the differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from powerx_agent import spec
from powerx_agent.audit.kinds import AuditKind

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

CLOSING = (AuditKind.REVIEW_CLOSED, "review.approved", "review.rejected", AuditKind.REVIEW_CANCELLED)
TERMINAL = (AuditKind.WORKFLOW_SUCCEEDED, AuditKind.WORKFLOW_ESCALATED, AuditKind.WORKFLOW_FAILED,
            AuditKind.WORKFLOW_STOPPED)


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Figures:
    decisions: int = 0
    matched: int = 0
    generated: int = 0
    node_success: int = 0
    node_failure: int = 0
    escalations: int = 0
    finished: int = 0
    automated: int = 0
    latencies: list[float] = field(default_factory=list)
    rejected: int = 0
    duplicates: int = 0
    backlog: int = 0
    backlog_items: int | None = None
    emf: dict[str, float] | None = None
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def hit_rate(self) -> float | None:
        return round(self.matched / self.decisions, 4) if self.decisions else None

    @property
    def failure_rate(self) -> float | None:
        total = self.node_success + self.node_failure
        return round(self.node_failure / total, 4) if total else None

    @property
    def manual_rate(self) -> float | None:
        return round(self.escalations / self.decisions, 4) if self.decisions else None

    @property
    def automated_rate(self) -> float | None:
        return round(self.automated / self.finished, 4) if self.finished else None

    @property
    def node_success_rate(self) -> float | None:
        total = self.node_success + self.node_failure
        return round(self.node_success / total, 4) if total else None

    @property
    def latency_p95(self) -> float | None:
        value = p95(self.latencies)
        return round(value, 3) if value is not None else None

    def rows(self) -> list[tuple[str, str, Any]]:
        m = spec.METRICS
        return [
            ("hit rate (target ≥ 80 %)", m["hit_rate"], self.hit_rate),
            ("generation latency p95 (ms, target ≤ 10 s)", m["latency"], self.latency_p95),
            ("automated success rate per workflow (target ≥ 95 %)", f"{m['workflow_automated']} ÷ {m['workflow_finished']}",
             self.automated_rate),
            ("automated success rate per node", f"{m['node_success']} ÷ (+ {m['node_failure']})", self.node_success_rate),
            ("manual intervention rate (target < 10 %)", f"{m['escalations']} ÷ decisions", self.manual_rate),
            ("workflows generated", m["generated"], self.generated),
            ("workflows finished", m["workflow_finished"], self.finished),
            ("finished without a person", m["workflow_automated"], self.automated),
            ("node successes", m["node_success"], self.node_success),
            ("manual escalations", m["escalations"], self.escalations),
            ("node failures", m["node_failure"], self.node_failure),
            ("automated failure rate", "failures / (successes + failures)", self.failure_rate),
            ("rejected events", m["rejected"], self.rejected),
            ("duplicate events", m["duplicates"], self.duplicates),
            ("manual review backlog", m["review_backlog"], self.backlog),
        ]

    def to_dict(self) -> dict[str, Any]:
        return {"decisions": self.decisions, "matched": self.matched, "hit_rate": self.hit_rate,
                "generated": self.generated, "node_success": self.node_success, "node_failure": self.node_failure,
                "failure_rate": self.failure_rate, "node_success_rate": self.node_success_rate,
                "escalations": self.escalations, "manual_rate": self.manual_rate, "finished": self.finished,
                "automated": self.automated, "automated_rate": self.automated_rate,
                "latency_p95_ms": self.latency_p95, "latency_samples": len(self.latencies),
                "rejected": self.rejected, "duplicates": self.duplicates, "backlog": self.backlog,
                "backlog_open_items": self.backlog_items, "emf": self.emf, "mismatches": self.mismatches}


def from_records(records: list[dict[str, Any]]) -> Figures:
    figures = Figures()
    opened: set[str] = set()
    closed: set[str] = set()
    for record in records:
        kind = record.get("kind")
        data = record.get("data") or {}
        if kind == AuditKind.AUDIT_REPAIRED and data.get("reconstructs"):
            kind = data["reconstructs"]  # a reconstructed record counts as the record it stands for
        if kind == AuditKind.DECISION:
            figures.decisions += 1
            figures.matched += 1 if record.get("status") == "MATCHED" else 0
        elif kind == AuditKind.WORKFLOW_STARTED:
            figures.generated += 1
            if record.get("duration") is not None:
                figures.latencies.append(float(record["duration"]))
        elif kind == AuditKind.NODE_SUCCEEDED:
            figures.node_success += 1
        elif kind == AuditKind.NODE_FAILED:
            figures.node_failure += 1
        elif kind == AuditKind.ESCALATION_OPENED:
            figures.escalations += 1
        elif kind in TERMINAL:
            figures.finished += 1
            figures.automated += 1 if kind == AuditKind.WORKFLOW_SUCCEEDED and data.get("automated") else 0
        elif kind == AuditKind.EVENT_REJECTED:
            figures.rejected += 1
        elif kind == AuditKind.EVENT_DUPLICATE:
            figures.duplicates += 1
        if kind in (AuditKind.ESCALATION_OPENED, AuditKind.REVIEW_REQUESTED) and data.get("review_id"):
            opened.add(str(data["review_id"]))
        elif kind in CLOSING or (isinstance(kind, str) and kind.startswith("review.") and kind != AuditKind.REVIEW_REQUESTED):
            review_id = data.get("review_id") or data.get("id")
            if review_id:
                closed.add(str(review_id))
    figures.backlog = len(opened - closed)
    return figures


# EMF metric -> Figures attribute it must equal (sums over every dimension set)
EMF_COUNTS = {"hit_rate": "matched", "generated": "generated", "node_success": "node_success",
              "node_failure": "node_failure", "escalations": "escalations", "rejected": "rejected",
              "duplicates": "duplicates"}


def cross_check(figures: Figures, totals: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> None:
    by_name: dict[str, float] = {}
    for (name, _dims), value in totals.items():
        by_name[name] = by_name.get(name, 0.0) + value
    figures.emf = {key: by_name.get(spec.METRICS[key], 0.0) for key in EMF_COUNTS}
    figures.emf["latency_sum_ms"] = by_name.get(spec.METRICS["latency"], 0.0)
    for key, attr in EMF_COUNTS.items():
        audit_value = getattr(figures, attr)
        emf_value = figures.emf[key]
        if abs(audit_value - emf_value) > 1e-6:
            figures.mismatches.append({"metric": spec.METRICS[key], "audit": audit_value, "emf": emf_value})


def compute(deps: Deps, emf_log_group: str | None = None) -> Figures:
    """Figures over the whole audit trail; cross-checked with EMF totals when the log group exists."""
    figures = from_records(deps.audit.scan_all())
    figures.backlog_items = len(deps.workflows.open_reviews(limit=10**6))
    group = emf_log_group if emf_log_group is not None else deps.settings.metrics_log_group
    if group:
        totals = deps.emf.totals(group)
        if totals is not None:
            cross_check(figures, totals)
    return figures

