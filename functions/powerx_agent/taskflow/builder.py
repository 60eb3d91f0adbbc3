"""Taskflow builder: a strategy's ``flow.nodes`` → a checked DAG (see docs/taskflow.md).

:func:`flow_problems` lists every problem of a flow (duplicate ids, unknown or self ``after``
targets, cycles, nodes that can never start); :func:`build_dag` raises the first one or returns a
:class:`Dag` with a deterministic topological order (Kahn's algorithm, ties broken by the order in
which the nodes are declared).

:func:`series_parallel` turns a DAG into a series-parallel tree (``Leaf`` / ``Seq`` / ``Par``) that
the ASL compiler emits as chained states and ``Parallel`` states. For series-parallel graphs the
tree is exact; for the others it is an over-approximation: it only ever *adds* orderings, never
drops one, so a node still never starts before all its dependencies ended.

Pure domain: no boto3, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from powerx_agent.errors import TaskflowError
from powerx_agent.taskflow.model import FlowSpec, NodeSpec

__all__ = [
    "Dag",
    "Leaf",
    "Par",
    "Seq",
    "SpTree",
    "build_dag",
    "flow_problems",
    "series_parallel",
    "tree_nodes",
]


# --------------------------------------------------------------------------------------- the DAG


@dataclass(frozen=True)
class Dag:
    """A checked taskflow graph.

    ``nodes`` in declaration order; ``deps[n]`` the nodes ``n`` runs after (as declared);
    ``order`` a deterministic topological order; ``succ[n]`` the nodes that run after ``n``;
    ``level[n]`` the longest number of edges from a root to ``n``.
    """

    nodes: dict[str, NodeSpec]
    deps: dict[str, tuple[str, ...]]
    order: tuple[str, ...]
    succ: dict[str, tuple[str, ...]] = field(default_factory=dict)
    level: dict[str, int] = field(default_factory=dict)

    @property
    def roots(self) -> tuple[str, ...]:
        return tuple(n for n in self.order if not self.deps[n])

    @property
    def sinks(self) -> tuple[str, ...]:
        return tuple(n for n in self.order if not self.succ.get(n))

    @property
    def levels(self) -> tuple[tuple[str, ...], ...]:
        """Nodes grouped by :attr:`level` (each group in topological order)."""
        if not self.order:
            return ()
        out: list[list[str]] = [[] for _ in range(max(self.level.values()) + 1)]
        for n in self.order:
            out[self.level[n]].append(n)
        return tuple(tuple(group) for group in out)

    def ancestors(self, node: str) -> frozenset[str]:
        """Every node that must end before ``node`` starts (transitively)."""
        seen: set[str] = set()
        stack = list(self.deps[node])
        while stack:
            cur = stack.pop()
            if cur not in seen:
                seen.add(cur)
                stack.extend(self.deps[cur])
        return frozenset(seen)


def _problem(code: str, message: str, node: str, nodes: Iterable[str]) -> TaskflowError:
    return TaskflowError(message, code=code, where=f"flow.nodes[{node}]",
                         details={"node": node, "nodes": list(nodes)})


def _cycles(ids: list[str], deps: dict[str, tuple[str, ...]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative), each listed
    as a cycle path in dependency order, starting from its first declared node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    sccs: list[list[str]] = []
    counter = 0
    for start in ids:
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            succs = deps[node]
            if i < len(succs):
                work.append((node, i + 1))
                nxt = succs[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                comp: list[str] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    sccs.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    position = {n: i for i, n in enumerate(ids)}
    cycles: list[list[str]] = []
    for comp in sccs:
        members = set(comp)
        first = min(comp, key=position.__getitem__)
        # shortest cycle through the first declared node, in "runs before" direction:
        # each node of the path runs after the previous one, and `first` runs after the last
        runs_after = {n: [m for m in ids if m in members and n in deps[m]] for n in comp}
        came_from: dict[str, str | None] = {first: None}
        queue = [first]
        last = first
        while queue:
            cur = queue.pop(0)
            if cur in deps[first]:
                last = cur
                break
            for nxt in runs_after[cur]:
                if nxt not in came_from:
                    came_from[nxt] = cur
                    queue.append(nxt)
        path: list[str] = []
        step: str | None = last
        while step is not None:
            path.append(step)
            step = came_from[step]
        path.reverse()
        cycles.append(path)
    cycles.sort(key=lambda c: min(position[n] for n in c))
    return cycles


def flow_problems(flow: FlowSpec) -> list[TaskflowError]:
    """Every structural problem of ``flow.nodes``, in a stable order.

    Codes: ``flow.duplicate_node``, ``flow.self_dependency``, ``flow.unknown_after``,
    ``flow.cycle``, ``flow.unreachable`` (a node that waits, directly or not, for a node in a
    cycle or for an unknown node, so it can never start). ``details`` holds ``node`` (the node the
    problem is reported on) and ``nodes`` (all nodes involved).
    """
    problems: list[TaskflowError] = []
    first: dict[str, NodeSpec] = {}
    for node in flow.nodes:
        if node.id in first:
            problems.append(_problem(
                "flow.duplicate_node", f"node id '{node.id}' is used by more than one node; "
                "node ids must be unique within a flow", node.id, [node.id]))
            continue
        first[node.id] = node
    ids = list(first)
    broken: set[str] = set()  # nodes that can never start
    deps: dict[str, tuple[str, ...]] = {}
    for nid, node in first.items():
        good: list[str] = []
        for dep in node.after:
            if dep == nid:
                problems.append(_problem(
                    "flow.self_dependency", f"node '{nid}' lists itself in 'after'; a node "
                    "cannot wait for itself", nid, [nid]))
                broken.add(nid)
            elif dep not in first:
                known = ", ".join(ids)
                problems.append(_problem(
                    "flow.unknown_after", f"node '{nid}' runs after '{dep}', which is not a node "
                    f"of this flow (nodes: {known})", nid, [nid, dep]))
                broken.add(nid)
            else:
                good.append(dep)
        deps[nid] = tuple(good)
    for cycle in _cycles(ids, deps):
        text = " → ".join([*cycle, cycle[0]])
        problems.append(_problem(
            "flow.cycle", f"nodes {', '.join(repr(n) for n in cycle)} wait for each other in a "
            f"cycle ({text}); none of them can ever start", cycle[0], cycle))
        broken.update(cycle)
    if broken:
        # everything downstream of a broken node can never start either
        succ: dict[str, list[str]] = {n: [] for n in ids}
        for nid, ds in deps.items():
            for d in ds:
                succ[d].append(nid)
        reported = set(broken)
        stack = sorted(broken, key=ids.index)
        blocked_by: dict[str, str] = {}
        while stack:
            cur = stack.pop(0)
            for nxt in succ[cur]:
                if nxt not in reported:
                    reported.add(nxt)
                    blocked_by[nxt] = cur
                    stack.append(nxt)
        for nid in ids:
            if nid in blocked_by:
                problems.append(_problem(
                    "flow.unreachable", f"node '{nid}' can never start: it waits for "
                    f"'{blocked_by[nid]}', which itself can never start", nid,
                    [nid, blocked_by[nid]]))
    return problems


def build_dag(flow: FlowSpec) -> Dag:
    """The checked DAG of ``flow``; raises the first of :func:`flow_problems`."""
    problems = flow_problems(flow)
    if problems:
        raise problems[0]
    nodes = {n.id: n for n in flow.nodes}
    ids = list(nodes)
    deps = {n.id: tuple(n.after) for n in flow.nodes}
    succ_l: dict[str, list[str]] = {n: [] for n in ids}
    for nid in ids:
        for d in deps[nid]:
            succ_l[d].append(nid)
    # Kahn's algorithm; among ready nodes the first declared goes first → deterministic
    position = {n: i for i, n in enumerate(ids)}
    indeg = {n: len(deps[n]) for n in ids}
    ready = sorted((n for n in ids if indeg[n] == 0), key=position.__getitem__)
    order: list[str] = []
    while ready:
        cur = ready.pop(0)
        order.append(cur)
        for nxt in succ_l[cur]:
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                ready.append(nxt)
                ready.sort(key=position.__getitem__)
    level: dict[str, int] = {}
    for nid in order:
        level[nid] = 1 + max((level[d] for d in deps[nid]), default=-1)
    succ = {n: tuple(sorted(succ_l[n], key=position.__getitem__)) for n in ids}
    return Dag(nodes=nodes, deps=deps, order=tuple(order), succ=succ, level=level)


# ------------------------------------------------------------------------- series-parallel tree


@dataclass(frozen=True)
class Leaf:
    node: str


@dataclass(frozen=True)
class Seq:
    parts: tuple[SpTree, ...]


@dataclass(frozen=True)
class Par:
    branches: tuple[SpTree, ...]


SpTree = Leaf | Seq | Par


def tree_nodes(tree: SpTree) -> list[str]:
    """The node ids of ``tree`` in emission order."""
    if isinstance(tree, Leaf):
        return [tree.node]
    parts = tree.parts if isinstance(tree, Seq) else tree.branches
    return [n for part in parts for n in tree_nodes(part)]


def series_parallel(dag: Dag) -> SpTree:
    """A series-parallel tree whose order contains every ordering of ``dag``.

    Recursive decomposition of the set of nodes ``S`` (ordered by reachability):

    1. ``S`` splits into independent groups (weakly connected components) → ``Par``.
    2. ``S`` splits into segments where every node of a segment is an ancestor of every node of
       every later segment → ``Seq`` (exact: no ordering is added).
    3. Otherwise ``S`` contains an "N" (e.g. a→c, a→d, b→d) and is not series-parallel: split it
       into a first part closed under "ancestor of" and the rest, running the first part
       completely before the rest. The candidate cuts are the level barriers (longest path from
       the start) and the mirrored ones (longest path to the end); the cut that adds the fewest
       orderings between node pairs wins (ties: the earliest level barrier).

    Steps 1 and 2 add no ordering; step 3 adds only orderings from an ancestor-closed part to
    the rest, so every dependency edge stays respected (docs/taskflow.md has the argument).
    """
    order = dag.order
    pos = {n: i for i, n in enumerate(order)}
    anc_mask: dict[str, int] = {}
    for n in order:
        m = 0
        for d in dag.deps[n]:
            m |= anc_mask[d] | (1 << pos[d])
        anc_mask[n] = m
    return _decompose(list(order), dag, pos, anc_mask)


def _mask(nodes: Iterable[str], pos: dict[str, int]) -> int:
    m = 0
    for n in nodes:
        m |= 1 << pos[n]
    return m


def _components(nodes: list[str], dag: Dag, members: set[str]) -> list[list[str]]:
    parent = {n: n for n in nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for n in nodes:
        for d in dag.deps[n]:
            if d in members:
                ra, rb = find(n), find(d)
                if ra != rb:
                    parent[ra] = rb
    groups: dict[str, list[str]] = {}
    for n in nodes:  # nodes are in topological order → each group is too
        groups.setdefault(find(n), []).append(n)
    return list(groups.values())


def _decompose(nodes: list[str], dag: Dag, pos: dict[str, int], anc: dict[str, int]) -> SpTree:
    if len(nodes) == 1:
        return Leaf(nodes[0])
    members = set(nodes)
    comps = _components(nodes, dag, members)
    if len(comps) > 1:
        return Par(tuple(_decompose(c, dag, pos, anc) for c in comps))
    # exact series cuts: prefix P of the topological order with P ⊆ ancestors(v) for all v ∉ P
    n = len(nodes)
    suffix_and = [0] * (n + 1)
    suffix_and[n] = -1
    for i in range(n - 1, -1, -1):
        suffix_and[i] = suffix_and[i + 1] & anc[nodes[i]]
    cuts: list[int] = []
    prefix = 0
    for k in range(1, n):
        prefix |= 1 << pos[nodes[k - 1]]
        if suffix_and[k] & prefix == prefix:
            cuts.append(k)
    if cuts:
        bounds = [0, *cuts, n]
        parts: list[SpTree] = []
        for a, b in zip(bounds, bounds[1:], strict=False):
            sub = _decompose(nodes[a:b], dag, pos, anc)
            parts.extend(sub.parts if isinstance(sub, Seq) else (sub,))
        return Seq(tuple(parts))
    first, rest = _best_cut(nodes, members, dag, pos, anc)
    parts = []
    for group in (first, rest):
        sub = _decompose(group, dag, pos, anc)
        parts.extend(sub.parts if isinstance(sub, Seq) else (sub,))
    return Seq(tuple(parts))


def _best_cut(nodes: list[str], members: set[str], dag: Dag, pos: dict[str, int],
              anc: dict[str, int]) -> tuple[list[str], list[str]]:
    """The ancestor-closed split of a connected, non-series-parallel set that adds the fewest
    orderings (see :func:`series_parallel`)."""
    depth: dict[str, int] = {}
    for v in nodes:
        depth[v] = 1 + max((depth[d] for d in dag.deps[v] if d in members), default=-1)
    height: dict[str, int] = {}
    for v in reversed(nodes):
        height[v] = 1 + max((height[s] for s in dag.succ[v] if s in members), default=-1)
    candidates: list[frozenset[str]] = []
    for k in range(max(depth.values())):
        candidates.append(frozenset(v for v in nodes if depth[v] <= k))
    for k in range(max(height.values()), 0, -1):
        candidates.append(frozenset(v for v in nodes if height[v] >= k))
    best: tuple[int, int] | None = None
    chosen: frozenset[str] = candidates[0]
    for i, cand in enumerate(candidates):
        if not cand or len(cand) == len(nodes):
            continue
        cmask = _mask(cand, pos)
        rest = [v for v in nodes if v not in cand]
        ordered = sum((anc[v] & cmask).bit_count() for v in rest)
        added = len(cand) * len(rest) - ordered
        key = (added, i)
        if best is None or key < best:
            best, chosen = key, cand
    return [v for v in nodes if v in chosen], [v for v in nodes if v not in chosen]
