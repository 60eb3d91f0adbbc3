"""The matcher's index: strategies by event type and tenant, then by the value of an equality
condition; selection by weight; explainable decisions.

Built once per library revision. Looking up an event costs:

1. a dict access for its (event type, tenant) view (built on first use, then cached);
2. for each *key path* of that view, one path lookup in the event and one dict access: the
   strategies whose equality (``equals`` a scalar / ``in``) conjunct on that path cannot hold are
   pruned without being evaluated;
3. the evaluation, in selection order (highest weight, then lowest id), of the strategies that
   survive, until the first match: that is the selection.

So the cost per event depends on the strategies that can match it, not on the size of the library.

The decision record (:class:`~powerx_agent.strategy.decision.Decision`) is produced when it is
first read, and bounded: the selection, at most ``NEAR_MISSES`` nearest misses, the other candidates
counted by reason. The misses are the ones the hot path already met (the first that passed the index
and failed), then the first the index pruned; each is explained without evaluating it when its
failing condition is known (its *leading* key, or the one numeric comparison of a range bucket),
from a template made once per strategy. Every candidate in selection order, each with its first
failing condition, is produced only on request (``Decision.candidates``). ``tests/unit/
test_strategy_index.py`` checks both against a linear scan with hypothesis.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from powerx_agent.strategy.conditions import All, Leaf, is_number, type_key
from powerx_agent.strategy.decision import (
    CONDITION_FAILED,
    KEY_MISMATCH,
    NEAR_MISSES,
    RANKED_BELOW,
    Candidate,
    Decision,
    FailedCondition,
    MissTemplate,
    Summary,
    near_miss,
)
from powerx_agent.strategy.loader import CompiledStrategy, Identity
from powerx_agent.strategy.paths import MISSING


class Member(Identity, Protocol):
    """A strategy as the index sees it. A :class:`CompiledStrategy` is one; a library artifact's
    members answer the identity fields at once, compile ``condition``/``pattern`` when their event
    type is first seen, and the whole strategy (:meth:`full`) when they are first selected."""

    @property
    def condition(self) -> Any: ...

    @property
    def pattern(self) -> Any: ...

    def full(self) -> CompiledStrategy: ...


@dataclass(frozen=True)
class _Entry:
    member: Member
    wildcard_tenant: bool
    tenants: frozenset[str]
    key_leaf: Leaf | None      # the equality conjunct the index uses, if any
    key_leading: bool          # True when key_leaf is the leading conjunct (explains a prune alone)
    keys: frozenset            # type_key values under which key_leaf holds
    holds: Callable[[dict, dict], bool]  # the hot-path test, given that key_leaf holds
    range_leaf: Leaf | None    # when ``holds`` is exactly one numeric comparison on a simple path
    templates: dict[str, MissTemplate] = field(default_factory=dict, compare=False)
    """reason → how this strategy shows as a nearest miss failing its key (KEY_MISMATCH, when the key
    leads) or its range comparison (CONDITION_FAILED): made once, at most two per strategy."""


NUMERIC_OPS = ("gt", "gte", "lt", "lte")


def _range_leaf(compiled: Member, key_leaf: Leaf | None) -> Leaf | None:
    condition = compiled.condition
    if (compiled.pattern is not None or key_leaf is None or not isinstance(condition, All)
            or len(condition.children) != 2 or condition.children[0] is not key_leaf):
        return None
    leaf = condition.children[1]
    if (isinstance(leaf, Leaf) and leaf.op in NUMERIC_OPS and leaf.path.is_simple
            and math.isfinite(leaf.expected)):
        return leaf
    return None


@dataclass(frozen=True)
class _RangePlan:
    """For a bucket whose strategies each test one numeric comparison on the same path: the first
    passing position for every region of the number line between (and at) their bounds."""

    leaf: Leaf                  # any of the bucket's leaves (for .path.get)
    bounds: tuple[float, ...]   # sorted distinct bounds
    first: tuple[int, ...]      # 2 * len(bounds) + 1 regions → first passing position or -1

    def select(self, value: Any) -> int:
        if type(value) not in (int, float) and not is_number(value):  # the common types first, then subclasses
            return -1
        i = bisect.bisect_left(self.bounds, value)
        return self.first[2 * i + 1 if i < len(self.bounds) and self.bounds[i] == value else 2 * i]


def _range_plan(entries: tuple[_Entry, ...], positions: tuple[int, ...]) -> _RangePlan | None:
    leaves = [entries[pos].range_leaf for pos in positions]
    if any(leaf is None for leaf in leaves) or len({leaf.path.expr for leaf in leaves}) != 1:  # type: ignore[union-attr]
        return None
    bounds = tuple(sorted({leaf.expected for leaf in leaves}))  # type: ignore[union-attr]
    probes: list[float] = [bounds[0] - 1]
    for i, bound in enumerate(bounds):
        probes.append(bound)
        probes.append((bound + bounds[i + 1]) / 2 if i + 1 < len(bounds) else bound + 1)
    first = tuple(next((pos for pos, leaf in zip(positions, leaves, strict=True)
                        if leaf.holds_for(probe)), -1)  # type: ignore[union-attr]
                  for probe in probes)
    return _RangePlan(leaves[0], bounds, first)  # type: ignore[arg-type]


def _always(doc: dict, bus_event: dict) -> bool:
    return True


def _hot_test(compiled: Member, key_leaf: Leaf | None) -> Callable[[dict, dict], bool]:
    """A boolean test for the hot path. The record is explained later by :func:`evaluate`; a
    strategy reached through the index already has its key conjunct holding, so when that key is
    the first child of a top-level ``all`` only the other children are tested."""
    if compiled.pattern is not None:
        pattern = compiled.pattern
        return lambda doc, bus_event: pattern.matches(bus_event)
    condition = compiled.condition
    if condition is None:
        return _always
    if key_leaf is not None and isinstance(condition, All) and condition.children[0] is key_leaf:
        rest = condition.children[1:]
        if not rest:
            return _always
        if len(rest) == 1:
            only = rest[0].matches
            return lambda doc, bus_event: only(doc)
        tests = tuple(child.matches for child in rest)
        return lambda doc, bus_event: all(test(doc) for test in tests)
    if key_leaf is not None and condition is key_leaf:
        return _always
    matches = condition.matches
    return lambda doc, bus_event: matches(doc)


def _key_for(compiled: Member) -> tuple[Leaf | None, bool, frozenset]:
    if compiled.pattern is not None or compiled.condition is None:
        return None, False, frozenset()
    condition = compiled.condition
    leading = condition.leading_leaf()
    if leading is not None:
        keys = leading.index_keys()
        if keys is not None:
            return leading, True, keys
    for leaf in condition.conjunct_leaves():
        keys = leaf.index_keys()
        if keys is not None:
            return leaf, False, keys
    return None, False, frozenset()


@dataclass(frozen=True)
class _Group:
    leaf: Leaf                               # one of the leaves on this path (for .path.get)
    table: dict[Any, tuple[int, ...]]        # type_key → positions (sorted)
    plans: dict[Any, _RangePlan]             # type_key → range plan, for buckets that have one


@dataclass(frozen=True)
class _View:
    entries: tuple[_Entry, ...]              # selection order
    always: tuple[int, ...]                  # positions never pruned (sorted)
    groups: tuple[_Group, ...]
    group_of: tuple[int, ...]                # position → group number, -1 for "always"
    single: bool = False                     # one group and no "always": range plans apply


def _build_view(entries: tuple[_Entry, ...]) -> _View:
    by_path: dict[str, list[int]] = defaultdict(list)
    always: list[int] = []
    group_of = [-1] * len(entries)
    for pos, entry in enumerate(entries):
        if entry.key_leaf is None:
            always.append(pos)
        else:
            by_path[entry.key_leaf.path.expr].append(pos)
    groups = []
    for number, positions in enumerate(by_path.values()):
        table: dict[Any, list[int]] = defaultdict(list)
        for pos in positions:
            group_of[pos] = number
            for key in entries[pos].keys:
                table[key].append(pos)
        frozen = {k: tuple(v) for k, v in table.items()}
        plans = {k: plan for k, v in frozen.items() if len(v) > 1 and (plan := _range_plan(entries, v)) is not None}
        leaf = entries[positions[0]].key_leaf
        assert leaf is not None  # grouped by it above
        groups.append(_Group(leaf, frozen, plans))
    return _View(entries, tuple(always), tuple(groups), tuple(group_of), len(groups) == 1 and not always)


class StrategyIndex:
    def __init__(self, strategies: Sequence[Member], revision: str, only_approved: bool = True,
                 order: Mapping[str, Sequence[int]] | None = None) -> None:
        """``only_approved=False`` when the approval lives outside the YAML (published versions whose
        approval is recorded in ``agent_strategies``). ``order``: for each event type, the positions
        in ``strategies`` of its members in selection order, when already known (a library
        artifact holds it); computed otherwise. Nothing is compiled here: a member's conditions
        are read when its event type is first looked up."""
        self.revision = revision
        self._members = strategies
        self._entries: list[_Entry | None] = [None] * len(strategies)
        if order is None:
            by_type: dict[str, list[int]] = defaultdict(list)
            for pos, member in enumerate(strategies):
                for event_type in member.event_types:
                    by_type[event_type].append(pos)
            # highest weight first, then lowest id: the first match in this order is the selection
            order = {t: sorted(ps, key=lambda p: (-strategies[p].weight, strategies[p].id))
                     for t, ps in by_type.items()}
        self._by_type = {t: tuple(p for p in ps if strategies[p].status != "retired"
                                  and (not only_approved or strategies[p].status == "approved"))
                         for t, ps in order.items()}
        self._views: dict[tuple[str, str], _View] = {}
        self.size = len(strategies)

    def _entry(self, pos: int) -> _Entry:
        entry = self._entries[pos]
        if entry is None:
            member = self._members[pos]
            key_leaf, leading, keys = _key_for(member)
            entry = _Entry(member, "*" in member.tenants, frozenset(member.tenants), key_leaf, leading, keys,
                           _hot_test(member, key_leaf), _range_leaf(member, key_leaf))
            self._entries[pos] = entry
        return entry

    def _view(self, event_type: str, tenant_id: str) -> _View:
        view = self._views.get((event_type, tenant_id))
        if view is None:
            members = self._members
            entries = tuple(self._entry(p) for p in self._by_type.get(event_type, ())
                            if "*" in members[p].tenants or tenant_id in members[p].tenants)
            view = _build_view(entries)
            if len(self._views) < 100_000:  # bounded: (event type, tenant) pairs actually seen
                self._views[(event_type, tenant_id)] = view
        return view

    def candidates(self, event_type: str, tenant_id: str) -> list[CompiledStrategy]:
        return [e.member.full() for e in self._view(event_type, tenant_id).entries]

    def decide(self, *, event_type: str, tenant_id: str, event_id: str, doc: dict[str, Any],
               bus_event: dict[str, Any], explain_all: bool = True) -> tuple[Decision, CompiledStrategy | None]:
        """Select the first matching candidate in selection order. With ``explain_all`` the record
        lists every candidate with why it did or did not match; without it, the candidates up to and
        including the selected one (all of them when nothing matched)."""
        view = self._view(event_type, tenant_id)
        entries = view.entries
        actuals: list[Any] = []
        live: list[tuple[int, ...]] = [view.always] if view.always else []
        plan: _RangePlan | None = None
        for group in view.groups:
            actual = group.leaf.path.get(doc)
            actuals.append(actual)
            if actual is MISSING:
                continue
            key = type_key(actual)
            hit = group.table.get(key)
            if hit:
                live.append(hit)
                if view.single:
                    plan = group.plans.get(key)
        selected_pos = -1
        failed_live = 0
        near: list[int] = []   # the first NEAR_MISSES evaluated positions that failed, in selection order
        if plan is not None:  # one bucket of "key and one numeric comparison" strategies: a bisection
            selected_pos = plan.select(plan.leaf.path.get(doc))
            failed_live = -1   # the bucket's positions before the selected one: counted if the record is read
        else:
            ordered = live[0] if len(live) == 1 else heapq.merge(*live)
            for pos in ordered:
                if entries[pos].holds(doc, bus_event):
                    selected_pos = pos
                    break
                if failed_live < NEAR_MISSES:
                    near.append(pos)
                failed_live += 1
        selected = entries[selected_pos].member.full() if selected_pos >= 0 else None
        explainer = _Explainer(view, actuals, doc, bus_event, selected_pos, live[0] if plan is not None else (),
                               failed_live, near, len(entries) if explain_all or selected_pos < 0 else selected_pos + 1)
        decision = Decision(
            event_id=event_id, tenant_id=tenant_id, event_type=event_type, library_revision=self.revision,
            selected=None if selected is None else {
                "strategy_id": selected.strategy.id, "version": selected.strategy.version,
                "weight": selected.strategy.weight},
            candidates_total=len(entries), summarise=explainer.summary, resolve=explainer.candidates,
        )
        return decision, selected


def _template(entry: _Entry, leaf: Leaf, reason: str) -> MissTemplate:
    """How ``entry`` shows as a nearest miss failing ``leaf``: made once, kept on the entry."""
    member = entry.member
    template = entry.templates[reason] = MissTemplate(member.id, member.version, member.weight, reason,
                                                      leaf.path.expr, leaf.op, leaf.expected)
    return template


class _Explainer:
    """What one decision needs to explain itself when its record is read: the record's nearest misses
    and counts (:meth:`summary`, at most NEAR_MISSES explanations), or every candidate (:meth:`candidates`)."""

    __slots__ = ("view", "actuals", "doc", "bus_event", "selected_pos", "bucket", "failed_live", "near", "shown")

    def __init__(self, view: _View, actuals: list[Any], doc: dict[str, Any], bus_event: dict[str, Any],
                 selected_pos: int, bucket: tuple[int, ...], failed_live: int, near: list[int], shown: int) -> None:
        self.view, self.actuals, self.doc, self.bus_event = view, actuals, doc, bus_event
        self.selected_pos, self.bucket, self.failed_live, self.near, self.shown = (
            selected_pos, bucket, failed_live, near, shown)

    def pruned(self, pos: int) -> bool:
        view = self.view
        group = view.group_of[pos]
        if group < 0:
            return False
        actual = self.actuals[group]
        return actual is MISSING or type_key(actual) not in view.entries[pos].keys

    def explain(self, pos: int) -> FailedCondition | None:
        view = self.view
        entry = view.entries[pos]
        if entry.key_leading and self.pruned(pos):  # explained by its key alone, never evaluated
            assert entry.key_leaf is not None
            found = entry.key_leaf.failure_for(self.actuals[view.group_of[pos]])
            return FailedCondition(found.path, found.op, found.expected, found.actual)
        return evaluate(entry.member, self.doc, self.bus_event)

    def _evaluated(self, entry: _Entry, reason: str) -> tuple[dict[str, Any], int]:
        failure = evaluate(entry.member, self.doc, self.bus_event)
        assert failure is not None  # ranked above the selection, or nothing selected: it failed
        member = entry.member
        return near_miss(member.id, member.version, member.weight, reason, failure.path, failure.op,
                         failure.expected, failure.actual)

    def candidates(self) -> tuple[Candidate, ...]:
        out = []
        for pos in range(self.shown):
            failure = self.explain(pos)
            member = self.view.entries[pos].member
            out.append(Candidate(member.id, member.version, member.weight, failure is None, failure))
        return tuple(out)

    def summary(self) -> Summary:
        """The nearest misses: those ranked above the selected one (all, when none was) that passed
        the index and failed a condition, then those the index pruned, each in selection order; the
        rest counted by reason. At most NEAR_MISSES explanations, whatever the size of the library."""
        view, selected_pos, near, failed_live = self.view, self.selected_pos, self.near, self.failed_live
        entries = view.entries
        total = len(entries)
        if failed_live < 0:  # decided by a range plan: its bucket's positions before the selected one failed
            bucket = self.bucket
            failed_live = bisect.bisect_left(bucket, selected_pos) if selected_pos >= 0 else len(bucket)
            near = list(bucket[:min(failed_live, NEAR_MISSES)])
        cutoff = selected_pos if selected_pos >= 0 else total
        doc, actuals, group_of = self.doc, self.actuals, view.group_of
        misses = []
        read: tuple[str, Any] = ("", MISSING)  # the range path last read, and its value (a bucket shares one)
        for pos in near:  # passed the index, failed: its one numeric comparison, when that is all it tests
            entry = entries[pos]
            leaf = entry.range_leaf
            if leaf is None:
                misses.append(self._evaluated(entry, CONDITION_FAILED))
                continue
            if read[0] != leaf.path.expr:
                read = (leaf.path.expr, leaf.path.get(doc))
            template = entry.templates.get(CONDITION_FAILED) or _template(entry, leaf, CONDITION_FAILED)
            misses.append(template.with_actual(read[1]))
        keyed = 0
        pos = 0
        while len(misses) < NEAR_MISSES and pos < cutoff:  # few steps: at most NEAR_MISSES live ones skipped
            if self.pruned(pos):
                entry = entries[pos]
                keyed += 1
                if entry.key_leading:  # its key is what failed first
                    assert entry.key_leaf is not None
                    template = entry.templates.get(KEY_MISMATCH) or _template(entry, entry.key_leaf, KEY_MISMATCH)
                    misses.append(template.with_actual(actuals[group_of[pos]]))
                else:
                    misses.append(self._evaluated(entry, KEY_MISMATCH))
            pos += 1
        others = {}
        if n := cutoff - failed_live - keyed:
            others[KEY_MISMATCH] = n
        if n := failed_live - len(near):
            others[CONDITION_FAILED] = n
        if n := total - cutoff - (1 if selected_pos >= 0 else 0):
            others[RANKED_BELOW] = n
        return Summary(tuple(misses), others)


def evaluate(compiled: Member, doc: dict[str, Any], bus_event: dict[str, Any]) -> FailedCondition | None:
    if compiled.pattern is not None:
        failed = compiled.pattern.explain(bus_event)
        if failed is None:
            return None
        return FailedCondition(path=str(failed.get("path")), op=str(failed.get("op")),
                               expected=failed.get("expected"), actual=failed.get("actual"))
    if compiled.condition is None:
        return None
    failure = compiled.condition.evaluate(doc)
    if failure is None:
        return None
    return FailedCondition(path=failure.path, op=failure.op, expected=failure.expected, actual=failure.actual)
