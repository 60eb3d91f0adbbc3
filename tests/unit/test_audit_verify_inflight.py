"""audit verify over fake stores: running work is "in flight", not a gap; stale work is a gap."""

from __future__ import annotations

import time
from types import SimpleNamespace

from powerx_agent.audit.records import GENESIS, AuditEntry, seal
from powerx_agent.clock import SYSTEM_CLOCK
from powerx_agent.ops.audit import verify


class FakeAudit:
    def __init__(self, chains: dict[str, list[str]]) -> None:
        self.records = []
        for chain, kinds in chains.items():
            prev = GENESIS
            for seq, kind in enumerate(kinds, start=1):
                record = seal(AuditEntry(kind, chain, tenant_id="acme", workflow_id=chain[3:],
                                         status="MATCHED" if kind == "decision" else None), seq, prev)
                self.records.append(record)
                prev = record["hash"]

    def scan_all(self):
        return list(self.records)

    def chain(self, pk):
        return [r for r in self.records if r["pk"] == pk]


class FakeWorkflows:
    def __init__(self, metas: dict[str, dict]) -> None:
        self.metas = metas

    def list_workflows(self, limit):
        return [{"workflow_id": k, **{f: v for f, v in m.items() if f != "nodes"}} for k, m in self.metas.items()]

    def get(self, workflow_id):
        meta = self.metas.get(workflow_id)
        return {"workflow_id": workflow_id, "nodes": {}, **meta} if meta else None


class FakeStateMachines:
    """The ``StateMachines`` port: an execution's status, None for one that does not exist."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses

    def status(self, execution_arn, started_after=None):
        return self.statuses.get(execution_arn) if execution_arn else None


def deps(chains, metas=None, events=None, executions=None):
    return SimpleNamespace(audit=FakeAudit(chains), workflows=FakeWorkflows(metas or {}),
                           events=SimpleNamespace(scan=lambda: list(events or [])),
                           state_machines=FakeStateMachines(executions or {}), clock=SYSTEM_CLOCK)


def test_given_running_execution_when_verified_then_in_flight_not_gap():
    d = deps({"WF#w1": ["event.accepted", "decision", "workflow.started", "node.running"]},
             metas={"w1": {"tenant_id": "acme", "status": "RUNNING", "execution_arn": "arn:x:w1", "created_at": 1}},
             executions={"arn:x:w1": "RUNNING"})
    report = verify(d)
    assert report.ok and report.completeness == 100.0
    assert [i["workflow_id"] for i in report.in_flight] == ["w1"]


def test_given_execution_ended_but_workflow_running_when_verified_then_gap():
    d = deps({"WF#w1": ["event.accepted", "decision", "workflow.started"]},
             metas={"w1": {"tenant_id": "acme", "status": "RUNNING", "execution_arn": "arn:x:w1", "created_at": 1}},
             executions={"arn:x:w1": "FAILED"})
    report = verify(d)
    codes = {g.code for g in report.gaps}
    assert "workflow.not_terminal" in codes and report.completeness == 0.0


def test_given_fresh_in_progress_event_when_verified_then_in_flight_and_stale_one_is_a_gap():
    now = time.time()
    fresh = {"pk": "acme#k1", "tenant_id": "acme", "workflow_id": "w1", "status": "IN_PROGRESS",
             "first_seen": now - 5, "lease_until": now + 5}
    stale = {"pk": "acme#k2", "tenant_id": "acme", "workflow_id": "w2", "status": "IN_PROGRESS",
             "first_seen": now - 3600, "lease_until": now - 3000}
    report = verify(deps({"WF#w1": ["event.accepted"], "WF#w2": ["event.accepted"]}, events=[fresh, stale]), now=now)
    assert [i["workflow_id"] for i in report.in_flight] == ["w1"]
    assert [(g.workflow_id, g.code) for g in report.gaps] == [("w2", "event.no_decision")]
    assert report.completeness == 0.0 and report.units == 2


def test_given_deferred_duplicate_and_complete_chains_when_verified_then_all_complete():
    report = verify(deps({"WF#a": ["event.deferred"], "WF#b": ["event.accepted", "decision", "escalation.opened",
                                                               "event.duplicate"],
                          "REJ#x": ["event.rejected"], "OPS#flags": ["flag.changed"]}))
    assert report.ok and report.complete == 4 and report.completeness == 100.0


def test_given_event_record_without_chain_when_verified_then_gap_names_it():
    event = {"pk": "acme#k9", "tenant_id": "acme", "workflow_id": "w9", "status": "COMPLETED", "first_seen": 1}
    report = verify(deps({}, events=[event]))
    assert [g.code for g in report.gaps] == ["event.no_chain"] and report.gaps[0].unit == "EVENT#acme#k9"
