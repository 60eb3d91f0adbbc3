"""ops.change.Change: steps made are undone in reverse when a later step fails; a refusal before any step
was made passes through as it is (nothing to undo, nothing to report as a failed change)."""

from __future__ import annotations

import pytest

from powerx_agent.errors import AgentError
from powerx_agent.ops.change import Change, ChangeFailed


class Refused(AgentError):
    code = "thing.refused"


def test_given_two_steps_made_when_the_third_fails_then_both_are_undone_in_reverse_and_the_failure_is_recorded():
    log: list[str] = []
    recorded: list[dict] = []
    with pytest.raises(ChangeFailed) as caught:
        with Change("move", "move.failed", on_failure=recorded.append) as change:
            change.step("a", lambda: log.append("a"), lambda _: log.append("undo a"))
            change.step("b", lambda: log.append("b"), lambda _: log.append("undo b"))
            change.step("c", lambda: (_ for _ in ()).throw(RuntimeError("broken")))
    assert log == ["a", "b", "undo b", "undo a"]
    assert caught.value.details["failed_step"] == "c"
    assert caught.value.details["undone"] == ["b", "a"]
    assert recorded and recorded[0]["failed_step"] == "c"
    assert "undone: b, a" in caught.value.message


def test_given_a_refusal_before_any_step_when_the_change_exits_then_the_refusal_passes_through_unrecorded():
    recorded: list[dict] = []
    with pytest.raises(Refused):
        with Change("move", "move.failed", on_failure=recorded.append):
            raise Refused("not allowed")
    assert recorded == []


def test_given_a_step_without_undo_was_made_when_a_refusal_follows_then_it_is_reported_as_a_failed_change():
    recorded: list[dict] = []
    with pytest.raises(ChangeFailed) as caught:
        with Change("move", "move.failed", on_failure=recorded.append) as change:
            change.step("irreversible", lambda: None)
            raise Refused("later check failed")
    assert caught.value.details["failed_step"] == "irreversible"
    assert recorded


def test_given_a_settled_change_when_a_later_step_fails_then_the_error_says_how_to_finish():
    with pytest.raises(ChangeFailed) as caught:
        with Change("retry", "retry.failed") as change:
            change.step("start", lambda: None, lambda _: None)
            change.settled("run `workflow retry` again")
            change.step("audit", lambda: (_ for _ in ()).throw(RuntimeError("audit down")))
    assert caught.value.details["undone"] == []
    assert "to finish it: run `workflow retry` again" in caught.value.message


def _chain(*kinds: tuple[str, str | None]) -> list[dict]:
    return [{"seq": i, "kind": kind, "node_id": node} for i, (kind, node) in enumerate(kinds, 1)]


def test_given_a_retry_whose_start_failed_when_the_chain_is_read_then_the_nodes_keep_their_outcomes():
    from powerx_agent.audit.chain import node_states
    from powerx_agent.audit.completeness import current_generation

    records = _chain(("workflow.started", None), ("node.failed", "a"), ("workflow.escalated", None),
                     ("node.reset", "a"), ("workflow.retried", None), ("workflow.retry_failed", None))
    assert node_states(records) == {"a": "FAILED"}
    assert [r["kind"] for r in current_generation(records)][:3] == ["workflow.started", "node.failed",
                                                                   "workflow.escalated"]


def test_given_a_retry_that_started_when_the_chain_is_read_then_its_generation_begins_after_it():
    from powerx_agent.audit.chain import node_states
    from powerx_agent.audit.completeness import current_generation

    records = _chain(("node.failed", "a"), ("node.reset", "a"), ("workflow.retried", None),
                     ("node.succeeded", "a"), ("workflow.succeeded", None))
    assert node_states(records) == {"a": "SUCCEEDED"}
    assert [r["kind"] for r in current_generation(records)] == ["node.succeeded", "workflow.succeeded"]
