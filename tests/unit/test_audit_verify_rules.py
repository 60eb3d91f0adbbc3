"""audit verify's pure rules: chain integrity with rebased holes, effective kinds, node states, --since."""

from __future__ import annotations

import pytest

from powerx_agent.audit.chain import check_chain, effective_kinds, node_states
from powerx_agent.audit.records import GENESIS, AuditEntry, seal
from powerx_agent.ops.audit import normalise_since


def build(kinds: list[str], chain: str = "WF#w") -> list[dict]:
    records, prev = [], GENESIS
    for seq, kind in enumerate(kinds, start=1):
        record = seal(AuditEntry(kind, chain, tenant_id="acme"), seq, prev)
        records.append(record)
        prev = record["hash"]
    return records


def append(records: list[dict], entry: AuditEntry) -> dict:
    last = max(records, key=lambda r: r["seq"])
    record = seal(entry, last["seq"] + 1, last["hash"])
    records.append(record)
    return record


def rebase(records: list[dict], missing: list[int], resume_seq: int, prev_hash: str) -> None:
    append(records, AuditEntry("chain.rebased", "WF#w", data={"missing_seqs": missing,
                                                              "resumes": [{"seq": resume_seq, "prev_hash": prev_hash}]}))


def test_given_intact_chain_when_checked_then_no_gap_and_nothing_rebased():
    assert check_chain("WF#w", build(["event.accepted", "decision", "workflow.started"])) == ([], [])


def test_given_deleted_record_without_rebase_when_checked_then_missing_gap():
    records = build(["event.accepted", "decision", "workflow.started", "workflow.succeeded"])
    del records[1]
    gaps, rebased = check_chain("WF#w", records)
    assert [(g.code, g.seq) for g in gaps] == [("chain.missing", 2)] and rebased == []


def test_given_deleted_record_covered_by_rebase_when_checked_then_accepted_as_rebased():
    records = build(["event.accepted", "decision", "workflow.started", "workflow.succeeded"])
    lost = records.pop(1)
    rebase(records, [2], 3, lost["hash"])
    gaps, rebased = check_chain("WF#w", records)
    assert gaps == [] and rebased == [{"chain": "WF#w", "missing_seqs": [2], "rebased_by_seq": 5}]


def test_given_rebase_pinned_to_another_hash_when_checked_then_gap_remains():
    records = build(["event.accepted", "decision", "workflow.started"])
    records.pop(1)
    rebase(records, [2], 3, "f" * 64)
    gaps, _ = check_chain("WF#w", records)
    assert [g.code for g in gaps] == ["chain.missing"]


def test_given_rebase_naming_fewer_seqs_than_lost_when_checked_then_gap_remains():
    records = build(["event.accepted", "decision", "workflow.started", "node.running"])
    lost = records[2]
    del records[1:3]
    rebase(records, [3], 4, lost["hash"])
    gaps, _ = check_chain("WF#w", records)
    assert [g.code for g in gaps] == ["chain.missing"]


def test_given_altered_record_and_a_rebase_when_checked_then_alteration_still_reported():
    records = build(["event.accepted", "decision", "workflow.started"])
    records[1]["status"] = "MATCHED"
    rebase(records, [2], 3, records[1]["hash"])
    gaps, _ = check_chain("WF#w", records)
    assert "chain.altered" in [g.code for g in gaps]


def test_given_edited_rebase_record_when_checked_then_it_covers_nothing():
    records = build(["event.accepted", "decision", "workflow.started"])
    lost = records.pop(1)
    rebase(records, [2], 3, lost["hash"])
    records[-1]["data"]["missing_seqs"] = [2, 7]  # tampered after sealing
    codes = [g.code for g in check_chain("WF#w", records)[0]]
    assert "chain.missing" in codes and "chain.altered" in codes


def test_given_repaired_record_when_kinds_taken_then_it_counts_as_the_reconstructed_kind():
    records = build(["event.accepted"])
    append(records, AuditEntry("audit.repaired", "WF#w", data={"reconstructs": "decision"}))
    append(records, AuditEntry("audit.repaired", "WF#w", data={"action": "node_item_restored"}))
    assert effective_kinds(records) == ["event.accepted", "decision", "audit.repaired"]


def test_given_node_records_when_states_taken_then_last_terminal_status_per_node():
    records = build(["event.accepted"])
    append(records, AuditEntry("node.running", "WF#w", node_id="a"))
    append(records, AuditEntry("node.failed", "WF#w", node_id="a"))
    append(records, AuditEntry("node.skipped", "WF#w", node_id="b"))
    append(records, AuditEntry("audit.repaired", "WF#w", node_id="c", data={"reconstructs": "node.succeeded"}))
    assert node_states(records) == {"a": "FAILED", "b": "SKIPPED", "c": "SUCCEEDED"}


def test_given_since_forms_when_normalised_then_utc_iso():
    assert normalise_since("2026-11-28") == "2026-11-28T00:00:00.000Z"
    assert normalise_since("2026-11-28T10:00:00+01:00") == "2026-11-28T09:00:00.000Z"
    assert normalise_since("15m") < normalise_since("1m")
    with pytest.raises(ValueError, match="neither an ISO time"):
        normalise_since("yesterday")
