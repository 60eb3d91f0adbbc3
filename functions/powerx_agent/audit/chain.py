"""Integrity of one audit chain: the one verifier of the hash chain, and what a chain says.

:func:`check_chain`: sequence 1..n without holes, each ``prev_hash`` equal to the hash of the
record before, each record's hash equal to the hash of its body. A hole is accepted only when a
later ``chain.rebased`` record of the same chain (written by ``repair --apply``) names exactly
those sequence numbers and pins the ``prev_hash`` of the record after the hole; such holes are
returned as *rebased*, never hidden. Altered records are never accepted.

:func:`effective_kinds` and :func:`node_states` read a chain as ``audit verify`` and ``repair``
do: a record ``audit.repaired`` that reconstructs a kind (``data.reconstructs``) counts as that kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from powerx_agent.audit.kinds import AuditKind
from powerx_agent.audit.records import GENESIS, record_hash

# the node outcome each record kind states; node.stopped: ended by an operator's stop or a failing
# sibling (not a failure of its own); node.filled: done by hand, SUCCEEDED from then on
NODE_KIND_STATUS = {"node.succeeded": "SUCCEEDED", "node.failed": "FAILED", "node.skipped": "SKIPPED",
                    "node.stopped": "FAILED", "node.filled": "SUCCEEDED"}


@dataclass(frozen=True)
class Gap:
    unit: str  # the chain (or record) the gap belongs to
    code: str
    message: str
    seq: int | None = None
    workflow_id: str | None = None
    node_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def __str__(self) -> str:
        at = f" seq {self.seq}" if self.seq is not None else ""
        return f"{self.unit}{at}: [{self.code}] {self.message}"


def rebase_cover(records: list[dict[str, Any]]) -> tuple[set[int], dict[int, str], dict[int, int]]:
    """Sequence numbers declared lost by intact ``chain.rebased`` records, the pinned ``prev_hash``
    of the record after each hole, and which rebase record covers each lost seq."""
    covered: set[int] = set()
    pins: dict[int, str] = {}
    by: dict[int, int] = {}
    for record in records:
        if record.get("kind") != AuditKind.CHAIN_REBASED or record_hash(record) != record.get("hash"):
            continue
        data = record.get("data") or {}
        for seq in data.get("missing_seqs") or []:
            if int(seq) < int(record["seq"]):
                covered.add(int(seq))
                by[int(seq)] = int(record["seq"])
        for pin in data.get("resumes") or []:
            pins[int(pin["seq"])] = str(pin["prev_hash"])
    return covered, pins, by


def check_chain(chain: str, records: list[dict[str, Any]]) -> tuple[list[Gap], list[dict[str, Any]]]:
    """Integrity of one chain: (gaps, rebased holes)."""
    gaps: list[Gap] = []
    rebased: list[dict[str, Any]] = []
    covered, pins, by = rebase_cover(records)
    prev = GENESIS
    expected = 1
    for record in sorted(records, key=lambda r: int(r["seq"])):
        seq = int(record["seq"])
        hole = list(range(expected, seq))
        if hole:
            if set(hole) <= covered and pins.get(seq) == record.get("prev_hash"):
                rebased.append({"chain": chain, "missing_seqs": hole, "rebased_by_seq": by[hole[0]]})
            else:
                span = f"{hole[0]}" if len(hole) == 1 else f"{hole[0]}..{hole[-1]}"
                gaps.append(Gap(chain, "chain.missing", f"record(s) {span} missing (hash chain broken)", hole[0]))
        elif record.get("prev_hash") != prev:
            gaps.append(Gap(chain, "chain.link", "prev_hash does not match the previous record", seq))
        if record_hash(record) != record.get("hash"):
            gaps.append(Gap(chain, "chain.altered", "record was altered (hash mismatch)", seq))
        prev = str(record.get("hash", ""))
        expected = seq + 1
    return gaps, rebased


def effective_kinds(records: list[dict[str, Any]]) -> list[str]:
    kinds = []
    for record in sorted(records, key=lambda r: int(r["seq"])):
        kind = record.get("kind", "")
        if kind == AuditKind.AUDIT_REPAIRED and (record.get("data") or {}).get("reconstructs"):
            kind = record["data"]["reconstructs"]
        kinds.append(kind)
    return kinds


def node_states(records: list[dict[str, Any]]) -> dict[str, str]:
    """node id -> the last terminal status the chain records for it (repaired records included); a
    ``node.reset`` (a retry runs the node again) forgets what came before it, unless the retry's start
    failed (``workflow.retry_failed``: the nodes were put back)."""
    states: dict[str, str] = {}
    pending: dict[str, str] = {}  # what the resets of a retry being written forgot
    latest: dict[str, str] = {}  # what the resets of the latest retry forgot
    for record in sorted(records, key=lambda r: int(r["seq"])):
        kind = record.get("kind", "")
        data = record.get("data") or {}
        if kind == AuditKind.AUDIT_REPAIRED and data.get("reconstructs") in NODE_KIND_STATUS:
            kind = data["reconstructs"]
        if kind == "workflow.retried":
            latest, pending = pending, {}
        elif kind == "workflow.retry_failed":
            states.update({n: s for n, s in {**latest, **pending}.items() if n not in states})
            latest, pending = {}, {}
        elif kind == "node.reset" and record.get("node_id"):
            if record["node_id"] in states:
                pending[record["node_id"]] = states.pop(record["node_id"])
        elif kind in NODE_KIND_STATUS and record.get("node_id"):
            states[record["node_id"]] = NODE_KIND_STATUS[kind]
    return states
