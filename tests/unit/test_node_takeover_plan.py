"""Which nodes a ``workflow retry`` runs again and which it reuses (pure planning)."""

from __future__ import annotations

import pytest

from powerx_agent.escalation.service import review_id_for
from powerx_agent.nodes.runner import callback_id_for, idempotency_key
from powerx_agent.ops.takeover import TakeoverError
from powerx_agent.ops.workflow import descendants, plan_retry

# report-on-job-completed: render → (archive ∥ tell-owner) → approve
EDGES = {"render": (), "archive": ("render",), "tell-owner": ("render",), "approve": ("archive", "tell-owner")}


def test_given_failed_node_when_retry_planned_then_failed_and_unfinished_run_again_and_succeeded_reused():
    statuses = {"render": "SUCCEEDED", "archive": "ESCALATED", "tell-owner": "SUCCEEDED", "approve": "SKIPPED"}
    assert plan_retry(statuses, EDGES) == (["approve", "archive"], ["render", "tell-owner"])


def test_given_from_node_when_retry_planned_then_node_and_everything_after_it_run_again():
    statuses = dict.fromkeys(EDGES, "SUCCEEDED")
    assert plan_retry(statuses, EDGES, "archive") == (["approve", "archive"], ["render", "tell-owner"])
    assert plan_retry(statuses, EDGES, "render") == (sorted(EDGES), [])


def test_given_unknown_from_node_when_retry_planned_then_refused():
    with pytest.raises(TakeoverError) as caught:
        plan_retry(dict.fromkeys(EDGES, "SUCCEEDED"), EDGES, "nope")
    assert caught.value.code == "takeover.unknown_node"


def test_given_diamond_when_descendants_taken_then_transitive_and_includes_start():
    assert descendants(EDGES, "tell-owner") == {"tell-owner", "approve"}
    assert descendants(EDGES, "approve") == {"approve"}


def test_given_retry_generation_when_ids_derived_then_generation_one_unchanged_and_later_ones_new():
    assert idempotency_key("wf-1", "render") == "wf-1:render"
    assert idempotency_key("wf-1", "render", 2) == "wf-1:render:g2"
    assert review_id_for("wf-1", "node_failed", "render", 1) == review_id_for("wf-1", "node_failed", "render")
    assert review_id_for("wf-1", "node_failed", "render", 2) != review_id_for("wf-1", "node_failed", "render")
    assert callback_id_for("wf-1", "render", 2) != callback_id_for("wf-1", "render")
