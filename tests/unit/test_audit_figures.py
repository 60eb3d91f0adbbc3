"""powerx-agent metrics: figures from audit records, and the EMF cross-check."""

from __future__ import annotations

from powerx_agent import spec
from powerx_agent.ops.metrics import cross_check, from_records, p95


def r(kind: str, **fields) -> dict:
    return {"kind": kind, **fields}


RECORDS = [
    r("decision", status="MATCHED"), r("decision", status="MATCHED"), r("decision", status="MATCHED"),
    r("decision", status="UNMATCHED"),
    r("workflow.started", duration=10.0), r("workflow.started", duration=30.0),
    r("audit.repaired", data={"reconstructs": "workflow.started"}),
    r("node.succeeded"), r("node.succeeded"), r("node.succeeded"), r("node.failed"),
    r("escalation.opened", data={"review_id": "rv-1"}), r("review.requested", data={"review_id": "rv-2"}),
    r("review.closed", data={"id": "rv-2"}),
    r("event.rejected"), r("event.duplicate"), r("event.duplicate"),
]


def test_given_records_when_figures_computed_then_each_spec_figure_follows_its_definition():
    f = from_records(RECORDS)
    assert (f.decisions, f.matched, f.hit_rate) == (4, 3, 0.75)
    assert f.generated == 3 and f.latency_p95 == 30.0
    assert (f.node_success, f.node_failure, f.failure_rate) == (3, 1, 0.25)
    assert (f.escalations, f.rejected, f.duplicates, f.backlog) == (1, 1, 2, 1)


def test_given_values_when_p95_taken_then_nearest_rank():
    assert p95(list(range(1, 101))) == 95
    assert p95([5.0]) == 5.0 and p95([]) is None


def test_given_emf_totals_equal_when_cross_checked_then_no_mismatch():
    f = from_records(RECORDS)
    m = spec.METRICS
    totals = {(m["hit_rate"], (("tenant", "acme"),)): 3.0, (m["generated"], (("strategy", "s"),)): 2.0,
              (m["generated"], (("strategy", "t"),)): 1.0, (m["node_success"], ()): 3.0,
              (m["node_failure"], ()): 1.0, (m["escalations"], ()): 1.0, (m["rejected"], ()): 1.0,
              (m["duplicates"], ()): 2.0}
    cross_check(f, totals)
    assert f.mismatches == [] and f.emf["generated"] == 3.0


def test_given_emf_missing_a_count_when_cross_checked_then_mismatch_named():
    f = from_records(RECORDS)
    cross_check(f, {(spec.METRICS["hit_rate"], ()): 3.0})
    assert {"metric": spec.METRICS["generated"], "audit": 3, "emf": 0.0} in f.mismatches


def test_given_terminal_workflows_and_escalations_when_computed_then_automated_and_manual_rates():
    from powerx_agent.ops.metrics import from_records

    records = [{"kind": "decision", "status": "MATCHED"}] * 4 + [{"kind": "decision", "status": "UNMATCHED"}] + [
        {"kind": "workflow.succeeded", "data": {"automated": True}},
        {"kind": "workflow.succeeded", "data": {"automated": False, "people": ["approve: approved by a person"]}},
        {"kind": "workflow.escalated"}, {"kind": "workflow.stopped"},
        {"kind": "escalation.opened", "data": {"review_id": "rv-1"}},
        {"kind": "escalation.opened", "data": {"review_id": "rv-2"}},
        {"kind": "audit.repaired", "data": {"reconstructs": "workflow.succeeded"}}]  # not known to be automated
    f = from_records(records)
    assert (f.finished, f.automated, f.automated_rate) == (5, 1, 0.2)
    assert (f.decisions, f.escalations, f.manual_rate) == (5, 2, 0.4)
