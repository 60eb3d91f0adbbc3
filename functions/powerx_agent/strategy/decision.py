"""The decision record: why an event did or did not get a strategy (explainable matching).

The record the matcher writes (audit record ``decision``, workflow META ``decision``) is bounded,
whatever the size of the library: the selected strategy, at most :data:`NEAR_MISSES` nearest
misses with their first failing condition, and the other candidates counted by reason
(:data:`REASONS`), with ``candidates_total``. Its compact JSON stays within :data:`RECORD_BUDGET`
bytes. Every candidate with its first failing condition (:attr:`Decision.candidates`,
:meth:`Decision.explained`) is produced only when a person asks for it: ``strategy test`` and the
console's strategy test page evaluate the event again, through the same
:func:`~powerx_agent.strategy.evaluate.evaluate`.

Records written before the record was bounded hold ``candidates`` (every candidate) instead of
``near_misses``/``others``; :func:`candidates_total` and :func:`listed` read both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from powerx_agent.redaction import DEFAULT_POLICY, RedactionPolicy, redact
from powerx_agent.strategy.paths import MISSING

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")

NEAR_MISSES = 3
"""At most this many candidates are listed in the record (the nearest misses)."""
RECORD_BUDGET = 1024
"""Bytes of the record as compact UTF-8 JSON."""
VALUE_CHARS = 40
"""An expected or actual value longer than this (as JSON) is cut to this many characters."""
PATH_CHARS = 80

KEY_MISMATCH = "key_mismatch"
CONDITION_FAILED = "condition_failed"
RANKED_BELOW = "ranked_below"
REASONS = {
    KEY_MISMATCH: "an equality (equals/in) condition the index keys on does not hold: pruned without evaluation",
    CONDITION_FAILED: "evaluated: a condition does not hold",
    RANKED_BELOW: "ranked below the selected strategy (weight, then id): selection stops at the first match",
}


def redact_actual(path: str, value: Any, policy: RedactionPolicy | None = None) -> Any:
    """Redact the value found at JSONPath ``path`` for a decision record.

    If any name in the path is sensitive (``$.payload.credentials.user``), the value is masked;
    otherwise it is :func:`redact`-ed. :data:`~powerx_agent.strategy.paths.MISSING` and the
    ``"<missing>"`` marker are kept as ``"<missing>"``.
    """
    policy = policy or DEFAULT_POLICY
    if value is MISSING or value == "<missing>":
        return "<missing>"
    if (_path_sensitive(path or "") if policy is DEFAULT_POLICY
            else any(policy.sensitive(segment) for segment in _SEGMENT.findall(path or ""))):
        return policy.mask
    if type(value) in (int, float, bool) or (type(value) is str and len(value) <= policy.max_string):
        return value  # what redact returns for them, without the walk
    return redact(value, policy)


@lru_cache(maxsize=4096)  # paths come from the library's strategies: few, and read for every record
def _path_sensitive(path: str) -> bool:
    return any(DEFAULT_POLICY.sensitive(segment) for segment in _SEGMENT.findall(path))


def clip(value: Any, limit: int = VALUE_CHARS) -> Any:
    """``value`` when its JSON is at most ``limit`` characters; otherwise that JSON cut to ``limit``
    characters, ending with ``…`` (a string: the record says what the value starts with)."""
    kind = type(value)
    if kind is str:
        return value if len(value) <= limit else value[: limit - 1] + "…"
    if value is None or kind is bool or (kind in (int, float) and len(repr(value)) <= limit):
        return value
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 1] + "…"
    text = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    if len(text) <= limit and isinstance(value, list | dict):
        return value
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class FailedCondition:
    path: str
    op: str
    expected: Any
    actual: Any

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "expected": self.expected,
                "actual": redact_actual(self.path, self.actual)}


@dataclass(frozen=True)
class Candidate:
    strategy_id: str
    version: int
    weight: int
    matched: bool
    failed: FailedCondition | None

    def to_dict(self) -> dict[str, Any]:
        return {"strategy_id": self.strategy_id, "version": self.version, "weight": self.weight,
                "matched": self.matched, "failed": self.failed.to_dict() if self.failed else None}


class MissTemplate:
    """A nearest miss without its actual value: what a candidate failing one given condition always
    shows (the index keeps one per strategy and explaining condition, so a record pays only for the
    event's value)."""

    __slots__ = ("strategy_id", "version", "weight", "reason", "path", "op", "shown_path", "shown_expected",
                 "size", "masked")

    def __init__(self, strategy_id: str, version: int, weight: int, reason: str, path: str, op: str,
                 expected: Any) -> None:
        self.strategy_id, self.version, self.weight, self.reason = strategy_id, version, weight, reason
        self.path, self.op = path, op
        self.shown_path, self.shown_expected = clip(path, PATH_CHARS), clip(expected)
        self.masked = _path_sensitive(path)
        # ids match ID_RE and reasons are names: plain ASCII, their JSON is their length and 2 quotes
        self.size = (_MISS_OVERHEAD + len(strategy_id) + len(str(version)) + len(str(weight)) + len(reason) + 2
                     + _text_bound(self.shown_path) + _text_bound(op) + _text_bound(self.shown_expected))

    def with_actual(self, actual: Any) -> tuple[dict[str, Any], int]:
        """The miss as the record lists it (``actual`` redacted and cut), and an upper bound of its bytes."""
        kind = type(actual)
        if kind is int and not self.masked and (digits := len(repr(actual))) <= VALUE_CHARS:
            shown, size = actual, digits  # the common case, without the general path below
        else:
            shown = DEFAULT_POLICY.mask if self.masked else clip(redact_actual(self.path, actual))
            size = _text_bound(shown)
        return ({"strategy_id": self.strategy_id, "version": self.version, "weight": self.weight,
                 "reason": self.reason, "failed": {"path": self.shown_path, "op": self.op,
                                                   "expected": self.shown_expected, "actual": shown}},
                self.size + size)


def near_miss(strategy_id: str, version: int, weight: int, reason: str, path: str, op: str, expected: Any,
              actual: Any) -> tuple[dict[str, Any], int]:
    """A nearest miss as the record lists it (values cut, ``actual`` redacted), and an upper bound of
    the bytes it takes in the record's JSON."""
    return MissTemplate(strategy_id, version, weight, reason, path, op, expected).with_actual(actual)


class Summary(NamedTuple):
    """The bounded part of a decision: the nearest misses (from :func:`near_miss`) and the rest
    counted by reason."""

    near_misses: tuple[tuple[dict[str, Any], int], ...]   # (as the record lists it, its size bound)
    others: Mapping[str, int]   # reason → count, zero counts left out


class Decision:
    """One decision over ``candidates_total`` candidates (the approved strategies of the event type
    and tenant). Nothing is explained while selecting (see :mod:`powerx_agent.strategy.index`):
    ``summary``, the nearest misses and counts the record holds, is produced by ``summarise`` when
    first read; ``candidates``, every candidate explained, by ``resolve`` when first read."""

    __slots__ = ("event_id", "tenant_id", "event_type", "library_revision", "selected", "candidates_total",
                 "_summary", "_summarise", "_candidates", "_resolve", "arm")

    def __init__(self, *, event_id: str, tenant_id: str, event_type: str, library_revision: str,
                 selected: dict[str, Any] | None, candidates_total: int,
                 summarise: Callable[[], Summary],
                 resolve: Callable[[], tuple[Candidate, ...]]) -> None:
        self.event_id = event_id
        self.tenant_id = tenant_id
        self.event_type = event_type
        self.library_revision = library_revision
        self.selected = selected
        self.candidates_total = candidates_total
        self._summary: Summary | None = None
        self._summarise: Callable[[], Summary] | None = summarise
        self._candidates: tuple[Candidate, ...] | None = None
        self._resolve: Callable[[], tuple[Candidate, ...]] | None = resolve
        self.arm: dict[str, Any] | None = None
        """When a canary covers the event type: which arm decided and why
        (:func:`powerx_agent.strategy.canary.arm_of`)."""

    @property
    def summary(self) -> Summary:
        if self._summary is None:
            assert self._summarise is not None
            self._summary = self._summarise()
            self._summarise = None
        return self._summary

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        """Every candidate in selection order with why it did or did not match (an evaluation of each:
        for people, not for the record)."""
        if self._candidates is None:
            assert self._resolve is not None
            self._candidates = tuple(self._resolve())
            self._resolve = None
        return self._candidates

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decision) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Decision({self.to_dict()!r})"

    @property
    def matched(self) -> bool:
        return self.selected is not None

    def to_dict(self) -> dict[str, Any]:
        """The bounded record (what the matcher writes): at most :data:`RECORD_BUDGET` bytes, listing fewer
        misses when long values need it (unless its other fields alone are longer, which the
        envelope's limits on ids and event types keep from happening without a canary ``arm``)."""
        summary = self.summary
        near = [m for m, _ in summary.near_misses]
        others = dict(summary.others)
        record: dict[str, Any] = {
            "event_id": self.event_id, "tenant_id": self.tenant_id, "event_type": self.event_type,
            "library_revision": self.library_revision, "selected": self.selected,
            "candidates_total": self.candidates_total, "near_misses": near, "others": others}
        bound = self._bound(summary)
        if self.arm is not None:
            record["arm"] = self.arm
            bound += _flat_bound(self.arm)
        if bound <= RECORD_BUDGET:  # the common case: no serialising to find out
            return record
        while near and record_size(record) > RECORD_BUDGET:  # long values: list fewer, count the rest
            dropped = near.pop()
            others[dropped["reason"]] = others.get(dropped["reason"], 0) + 1
        return record

    def _bound(self, summary: Summary) -> int:
        """An upper bound of the record's size without ``arm``."""
        selected = self.selected
        return (_RECORD_OVERHEAD + _text_bound(self.event_id) + _text_bound(self.tenant_id)
                + _text_bound(self.event_type) + _text_bound(self.library_revision)
                + _text_bound(self.candidates_total)
                + (4 if selected is None else _SELECTED_OVERHEAD + _text_bound(selected["strategy_id"])
                   + _text_bound(selected["version"]) + _text_bound(selected["weight"]))
                + _OTHER_OVERHEAD * len(summary.others) + sum(len(str(n)) for n in summary.others.values())
                + sum(size for _, size in summary.near_misses))

    def explained(self) -> dict[str, Any]:
        """The record plus ``candidates``: every candidate explained (``strategy test``, the console)."""
        return {**self.to_dict(), "candidates": [c.to_dict() for c in self.candidates]}

    def reason(self) -> str:
        """One line, bounded like the record."""
        summary = self.summary
        counted = ", ".join(f"{count} {reason}" for reason, count in sorted(summary.others.items()))
        misses = "; ".join(f"{m['strategy_id']}: {m['failed']['path']} {m['failed']['op']} "
                           f"{m['failed']['expected']!r}" for m, _ in summary.near_misses)
        if self.selected:
            arm = f" ({self.arm['arm']} arm of {self.arm['strategy_id']}'s canary)" if self.arm else ""
            above = f"; ranked above it but missed: {misses}" if misses else ""
            return (f"{self.selected['strategy_id']} v{self.selected['version']} matched with weight "
                    f"{self.selected['weight']}{above}{arm}")
        if not self.candidates_total:
            return f"no approved strategy handles {self.event_type} for tenant {self.tenant_id}"
        rest = f"; others: {counted}" if counted else ""
        return f"{self.candidates_total} candidate(s), none matched ({misses}{rest})"


def _text_bound(value: Any) -> int:
    """An upper bound of the bytes ``value`` takes in compact UTF-8 JSON: exact for a plain string or a
    number; ``value`` here is a field of the record or a clipped value."""
    kind = type(value)
    if kind is str:
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return len(value) + 2
        return 6 * len(value) + 2  # every character escaped as \uXXXX (the most JSON spends on one)
    if value is None or kind is bool:
        return 5
    if kind is int or kind is float:
        return len(repr(value)) + 6  # repr and JSON agree on ints; on floats nearly ("-inf" is "-Infinity")
    return 6 * VALUE_CHARS + 2  # a list or an object kept by clip: its JSON is at most VALUE_CHARS characters


def _flat_bound(mapping: Mapping[str, Any]) -> int:
    """An upper bound of the bytes ``"arm":{...},`` takes, for a mapping of plain keys to scalars; the
    budget itself (forcing an exact count) for anything else."""
    size = len('"arm":{},')
    for key, value in mapping.items():
        if type(value) not in (str, int, float, bool) and value is not None:
            return RECORD_BUDGET + 1
        size += _text_bound(key) + 2 + _text_bound(value)
    return size


def _punctuation(skeleton: Mapping[str, Any]) -> int:
    """Bytes of a skeleton's keys, braces, colons and commas: its compact JSON less its leaf values."""
    def leaves(value: Any) -> int:
        if isinstance(value, Mapping):
            return sum(leaves(v) for v in value.values())
        return 0 if isinstance(value, list) else len(json.dumps(value))
    return len(json.dumps(skeleton, separators=(",", ":"))) - leaves(skeleton)


_RECORD_OVERHEAD = _punctuation({"event_id": "", "tenant_id": "", "event_type": "", "library_revision": "",
                                 "selected": None, "candidates_total": 0, "near_misses": [], "others": {}})
_SELECTED_OVERHEAD = _punctuation({"strategy_id": "", "version": 0, "weight": 0})
_MISS_OVERHEAD = 1 + _punctuation({"strategy_id": "", "version": 0, "weight": 0, "reason": "",  # 1: a comma
                                   "failed": {"path": "", "op": "", "expected": 0, "actual": 0}})
_OTHER_OVERHEAD = len('"condition_failed":,')  # the longest reason, its colon and a comma


def record_size(record: Mapping[str, Any]) -> int:
    """The size of a record as the budget counts it: compact JSON, UTF-8."""
    return len(json.dumps(record, default=str, ensure_ascii=False, separators=(",", ":")).encode())


def candidates_total(record: Mapping[str, Any]) -> int:
    """How many candidates a stored record covers (bounded records, and earlier full lists)."""
    if "candidates_total" in record:
        return int(record["candidates_total"])
    return len(record.get("candidates") or [])


def listed(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The candidates a stored record lists, each with ``strategy_id``, ``version``, ``weight``,
    ``matched`` and ``failed``: the selected one and the nearest misses (a bounded record), or every
    candidate (a record written before the record was bounded)."""
    if "candidates" in record:
        return list(record.get("candidates") or [])
    selected = record.get("selected")
    rows = [{**selected, "matched": True, "failed": None, "reason": "selected"}] if selected else []
    return rows + [{**m, "matched": False} for m in record.get("near_misses") or []]
