"""Feature flags on the embedded runtime: flags show|set (audited), audit-streaming pause and
catch-up, agent-strategy-library off → baseline directory, agent-orchestrator off → DEFERRED."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from powerx_agent.adapters.audit_store import StreamCursor
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for
from tests.integration.helpers import chain_kinds, detail, send

runner = CliRunner()


def set_flag(name: str, value: str, by: str = "tests"):
    out = runner.invoke(app, ["flags", "set", name, value, "--by", by])
    assert out.exit_code == 0, out.output
    return out


@pytest.fixture()
def flags_restored(rt) -> Iterator[None]:
    yield
    for name in ("agent-orchestrator", "agent-strategy-library", "audit-streaming"):
        set_flag(name, "on", "tests-cleanup")
    send(rt, "plugin.job.completed", detail("flush"))  # one more stream batch: catch up anything held


def forwarded(rt) -> set[tuple[str, int]]:
    """``(chain, seq)`` of every audit log line."""
    logs = rt.client("logs")
    lines = set()
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=get_deps().settings.audit_log_group):
        for event in page["events"]:
            line = json.loads(event["message"])
            lines.add((line["chain"], line["seq"]))
    return lines


def forwarded_chains(rt) -> set[str]:
    return {chain for chain, _ in forwarded(rt)}


def test_given_flag_set_when_shown_then_state_changes_and_change_is_audited(flags_restored, uid):
    set_flag("agent-strategy-library", "off", f"alice-{uid}")
    shown = json.loads(runner.invoke(app, ["flags", "show", "--format", "json"]).output)
    assert {r["name"]: r["on"] for r in shown}["agent-strategy-library"] is False
    last = max(get_deps().audit.chain("OPS#flags"), key=lambda r: r["seq"])
    assert last["kind"] == "flag.changed" and last["data"]["by"] == f"alice-{uid}"
    assert (last["data"]["flag"], last["data"]["from"], last["data"]["to"]) == ("agent-strategy-library", "on", "off")


def test_given_unknown_flag_when_set_then_usage_error():
    out = runner.invoke(app, ["flags", "set", "no-such-flag", "on"])
    assert out.exit_code == 2


def test_given_audit_streaming_off_when_events_flow_then_records_kept_and_caught_up_when_on(rt, uid, flags_restored):
    set_flag("audit-streaming", "off")
    paused = detail(f"{uid}-paused")
    send(rt, "plugin.job.completed", paused)
    paused_chain = f"WF#{workflow_id_for('acme', paused['idempotency_key'])}"
    assert "workflow.succeeded" in chain_kinds(paused_chain[3:])  # written to agent_audit all the same
    assert paused_chain not in forwarded_chains(rt)
    deps = get_deps()
    assert StreamCursor(deps.ddb, deps.settings.strategies_table).get() is not None

    set_flag("audit-streaming", "on")
    resumed = detail(f"{uid}-resumed")
    send(rt, "plugin.job.completed", resumed)
    chains = forwarded_chains(rt)
    assert paused_chain in chains and f"WF#{workflow_id_for('acme', resumed['idempotency_key'])}" in chains
    # every paused record, those the sparse time index leaves out (all but the first of a minute) included
    paused_records = deps.audit.chain(paused_chain)
    assert {(paused_chain, r["seq"]) for r in paused_records} <= forwarded(rt)
    assert any("day" not in r for r in paused_records)
    assert StreamCursor(deps.ddb, deps.settings.strategies_table).get() is None


def test_given_strategy_library_off_when_event_matched_then_baseline_directory_decides(rt, uid, flags_restored):
    set_flag("agent-strategy-library", "off")
    body = detail(uid)
    send(rt, "plugin.job.completed", body)
    workflow_id = workflow_id_for("acme", body["idempotency_key"])
    decision = next(r for r in get_deps().audit.chain(f"WF#{workflow_id}") if r["kind"] == "decision")
    assert decision["data"]["decision"]["library_revision"].startswith("dir:")
    assert decision["status"] == "MATCHED"


def test_given_orchestrator_off_when_event_arrives_then_deferred_and_verify_counts_it_complete(rt, uid,
                                                                                              flags_restored):
    set_flag("agent-orchestrator", "off")
    body = detail(uid)
    send(rt, "plugin.job.completed", body)
    workflow_id = workflow_id_for("acme", body["idempotency_key"])
    assert chain_kinds(workflow_id) == ["event.deferred"]
    from powerx_agent.ops.audit import verify

    report = verify(get_deps(), tenant="acme")
    assert not [g for g in report.gaps if g.workflow_id == workflow_id]
