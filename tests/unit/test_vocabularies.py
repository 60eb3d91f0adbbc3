"""One definition of the statuses and audit kinds: the active and terminal sets split each status
set in two, moves only go forward, and an audit record's kind is always one the engine knows."""

from __future__ import annotations

import pytest

from powerx_agent.audit.kinds import WORKFLOW_OUTCOMES, AuditKind
from powerx_agent.audit.records import GENESIS, AuditEntry, record_hash, seal
from powerx_agent.status import (
    NODE_ACTIVE,
    NODE_FROM,
    NODE_TERMINAL,
    WORKFLOW_ACTIVE,
    WORKFLOW_FROM,
    WORKFLOW_TERMINAL,
    NodeStatus,
    WorkflowStatus,
)


@pytest.mark.parametrize(("statuses", "active", "terminal"), [
    (WorkflowStatus, WORKFLOW_ACTIVE, WORKFLOW_TERMINAL), (NodeStatus, NODE_ACTIVE, NODE_TERMINAL)])
def test_given_a_status_set_when_split_then_active_and_terminal_partition_it(statuses, active, terminal):
    assert active | terminal == set(statuses) and not active & terminal
    assert active == {"PENDING", "RUNNING"}


def test_given_the_vocabularies_when_compared_then_only_workflows_stop_and_only_nodes_skip():
    assert "STOPPED" in WORKFLOW_TERMINAL and "STOPPED" not in set(NodeStatus)
    assert "SKIPPED" in NODE_TERMINAL and "SKIPPED" not in set(WorkflowStatus)


@pytest.mark.parametrize("moves", [NODE_FROM, WORKFLOW_FROM])
def test_given_the_forward_moves_when_read_then_no_move_leaves_a_finished_status_except_failed_to_escalated(moves):
    for target, sources in moves.items():
        assert target not in ("PENDING",)
        for source in sources:
            assert source in ("PENDING", "RUNNING") or (source == "FAILED" and target == "ESCALATED"), (source, target)


def test_given_an_unknown_kind_when_recorded_then_refused_where_it_is_written():
    with pytest.raises(ValueError):
        AuditEntry("workflow.strated", "WF#w")


def test_given_a_kind_member_or_its_string_when_sealed_then_the_record_and_its_hash_are_the_same():
    by_member = seal(AuditEntry(AuditKind.WORKFLOW_STARTED, "WF#w", status=WorkflowStatus.RUNNING), 1, GENESIS,
                     ts="2026-01-01T00:00:00.000Z")
    by_string = seal(AuditEntry("workflow.started", "WF#w", status="RUNNING"), 1, GENESIS,
                     ts="2026-01-01T00:00:00.000Z")
    assert by_member == by_string and record_hash(by_member) == by_member["hash"]
    assert type(by_member["kind"]) is str and type(by_member["status"]) is str


def test_given_the_outcome_kinds_when_listed_then_each_ends_a_workflow_or_hands_it_to_people():
    assert {k.value.split(".")[0] for k in WORKFLOW_OUTCOMES} == {"workflow", "escalation"}
    assert AuditKind.WORKFLOW_STARTED not in WORKFLOW_OUTCOMES


def test_given_every_audit_kind_when_the_operations_guide_is_read_then_its_chain_table_names_each_one():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    table = text[text.index("| chain | holds |"):text.index("### Streaming to CloudWatch Logs")]
    assert [kind.value for kind in AuditKind if f"`{kind.value}`" not in table] == []
