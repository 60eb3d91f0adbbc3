"""The audit hash chain detects missing, reordered and edited records."""

from __future__ import annotations

from powerx_agent.audit.chain import check_chain
from powerx_agent.audit.records import GENESIS, AuditEntry, seal


def chain(n: int) -> list[dict]:
    records, prev = [], GENESIS
    for seq in range(1, n + 1):
        record = seal(AuditEntry("node.running", "WF#w", tenant_id="acme", node_id=f"n{seq}"), seq, prev)
        records.append(record)
        prev = record["hash"]
    return records


def test_given_intact_chain_when_verified_then_no_gaps():
    assert check_chain("WF#w", chain(5)) == ([], [])


def test_given_deleted_record_when_verified_then_gap_reported():
    records = chain(5)
    del records[2]
    problems = [str(g) for g in check_chain("WF#w", records)[0]]
    assert any("record(s) 3 missing" in p for p in problems)


def test_given_edited_record_when_verified_then_alteration_reported():
    records = chain(3)
    records[1]["status"] = "SUCCEEDED"
    problems = [str(g) for g in check_chain("WF#w", records)[0]]
    assert any("altered" in p for p in problems)
