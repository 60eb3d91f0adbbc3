"""Property tests: random DAGs (series-parallel or not) compile to valid ASL that respects them.

Two independent checks read the *compiled ASL*, not the builder's tree:

* ``must_have_ended``: a dataflow analysis over the state graph. For every state it computes
  the nodes that have ended (run or skipped) on *every* path and *every* interleaving of Parallel
  branches before the state starts (a Parallel ends when all its branches ended; where paths
  join, the sets intersect). A node's dependencies must be in its set.
* ``simulate``: an interpreter that runs the definition with Parallel branches interleaved at
  random (start and end of a node are separate steps), and the ``when`` flags of the execution
  input. Every node must start only after all its dependencies ended or were skipped, and each
  node runs or is skipped exactly once before ``Complete``.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from powerx_agent.strategy.dsl import Strategy
from powerx_agent.taskflow.asl import COMPLETE, FunctionArns, compile_flow, when_key

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from asl_validator import assert_valid  # noqa: E402

ARNS = FunctionArns(*(f"arn:aws:lambda:us-east-1:123456789012:function:pxa-{n}"
                      for n in ("plugin", "notify", "review", "workflow")))
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Deps = dict[str, list[str]]


# ----------------------------------------------------------------------------- generators


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 10) -> Deps:
    """Any DAG: node i may run after any subset of the nodes before it."""
    n = draw(st.integers(1, max_nodes))
    names = [f"n{i}" if draw(st.booleans()) else f"{i}-node" for i in range(n)]
    deps: Deps = {}
    for i, name in enumerate(names):
        deps[name] = sorted(draw(st.sets(st.sampled_from(names[:i]), max_size=3)) if i else set())
    return deps


@st.composite
def sp_dags(draw: st.DrawFn, max_leaves: int = 9) -> Deps:
    """Series-parallel DAGs, generated from random SP trees (edges: sinks of a part → sources
    of the next part)."""
    counter = iter(range(10_000))

    def build(budget: int) -> tuple[Deps, list[str], list[str]]:
        if budget <= 1 or draw(st.integers(0, 3)) == 0:
            name = f"s{next(counter)}"
            return {name: []}, [name], [name]
        left = draw(st.integers(1, budget - 1))
        a, b = build(left), build(budget - left)
        if draw(st.booleans()):  # series
            deps = {**a[0], **b[0]}
            for src in b[1]:
                deps[src] = sorted(set(deps[src]) | set(a[2]))
            return deps, a[1], b[2]
        return {**a[0], **b[0]}, a[1] + b[1], a[2] + b[2]

    return build(draw(st.integers(1, max_leaves)))[0]


@st.composite
def flows(draw: st.DrawFn, graphs: st.SearchStrategy[Deps] | None = None) -> tuple[Strategy, dict[str, bool]]:
    deps = draw(graphs if graphs is not None else dags())
    nodes = []
    when: dict[str, bool] = {}
    for name, after in deps.items():
        kind = draw(st.sampled_from(["plugin", "plugin", "notify", "review", "callback"]))
        node: dict[str, Any] = {"id": name}
        if kind == "plugin":
            node["plugin"] = "p"
        elif kind == "callback":
            node.update(plugin="p", callback={"timeout": "5m"})
        elif kind == "notify":
            node["notify"] = {"to": "x@example.com", "template": "t"}
        else:
            node["manual_review"] = {"queue": "q", "reason": "r"}
        if after:
            node["after"] = after
        if draw(st.booleans()):
            node["when"] = {"path": "$.payload.x", "exists": True}
            when[when_key(name)] = draw(st.booleans())
        if draw(st.integers(0, 3)) == 0:
            node["retry"] = {"attempts": draw(st.integers(1, 4)), "backoff": "1s"}
        nodes.append(node)
    strategy = Strategy.model_validate({"id": "prop", "version": 1, "owner": "o@example.com",
                                        "on": {"event": "e"}, "flow": {"timeout": "1h", "nodes": nodes}})
    return strategy, when


# ---------------------------------------------------------------------------- ASL readers


def _node_of(state: dict[str, Any]) -> tuple[str, str] | None:
    payload = state.get("Parameters", {}).get("Payload", {})
    if payload.get("action") == "run":
        return "run", payload["node"]["id"]
    if payload.get("action") == "skip":
        return "skip", payload["node_id"]
    return None


def _successors(state: dict[str, Any]) -> list[str]:
    out = [c["Next"] for c in state.get("Choices", ())]
    out += [state[k] for k in ("Default", "Next") if k in state]
    return out


def must_have_ended(definition: dict[str, Any]) -> dict[str, frozenset[str]]:
    """node id → nodes certainly ended before its run state starts (dataflow, see module doc)."""
    before_run: dict[str, frozenset[str]] = {}

    def analyse(states: dict[str, Any], start: str, entry: frozenset[str]) -> frozenset[str]:
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:  # reverse post-order = topological order
            if name in seen:
                return
            seen.add(name)
            for nxt in _successors(states[name]):
                if nxt in states:
                    visit(nxt)
            order.append(name)

        visit(start)
        order.reverse()
        incoming: dict[str, list[frozenset[str]]] = {start: [entry]}
        exits: list[frozenset[str]] = []
        for name in order:
            state = states[name]
            ins = frozenset.intersection(*incoming[name])
            node = _node_of(state)
            if node and node[0] == "run":
                before_run[node[1]] = ins
            if state["Type"] == "Parallel":
                out = ins.union(*(analyse(b["States"], b["StartAt"], ins) for b in state["Branches"]))
            else:
                out = ins | {node[1]} if node else ins
            if state.get("End"):
                exits.append(out)
            for nxt in _successors(state):
                if nxt in states:
                    incoming.setdefault(nxt, []).append(out)
        return frozenset.intersection(*exits) if exits else frozenset()

    analyse(definition["States"], definition["StartAt"], frozenset())
    return before_run


def simulate(definition: dict[str, Any], when: dict[str, bool], rng: random.Random) -> list[tuple[str, str]]:
    """Run the definition with randomly interleaved Parallel branches; returns the event log."""
    log: list[tuple[str, str]] = []

    def run(states: dict[str, Any], start: str):  # generator of steps
        name: str | None = start
        while name is not None:
            state = states[name]
            kind = state["Type"]
            node = _node_of(state)
            if kind == "Choice":
                rule = state["Choices"][0]
                key = rule["Variable"].removeprefix("$.when.").removeprefix("$.when['").removesuffix("']")
                name = rule["Next"] if when.get(key) is rule["BooleanEquals"] else state["Default"]
                continue
            if kind == "Parallel":
                children = [run(b["States"], b["StartAt"]) for b in state["Branches"]]
                while children:
                    child = rng.choice(children)
                    try:
                        yield next(child)
                    except StopIteration:
                        children.remove(child)
            elif kind == "Task" and node:
                log.append(("start" if node[0] == "run" else "skip", node[1]))
                yield
                if node[0] == "run":
                    log.append(("end", node[1]))
                    yield
            elif kind == "Task" and name == COMPLETE:
                log.append(("complete", ""))
                yield
            name = None if state.get("End") or kind == "Fail" else state["Next"]

    for _ in run(definition["States"], definition["StartAt"]):
        pass
    return log


def _check_log(log: list[tuple[str, str]], deps: dict[str, list[str]]) -> None:
    finished: set[str] = set()
    done_once: list[str] = []
    for event, node in log:
        if event in ("start", "skip"):
            missing = [d for d in deps[node] if d not in finished]
            assert not missing, f"{node} began before {missing} ended: {log}"
            done_once.append(node)
        if event in ("end", "skip"):
            finished.add(node)
    assert sorted(done_once) == sorted(deps), f"each node runs or is skipped exactly once: {log}"
    assert log[-1] == ("complete", ""), "the run must end in Complete"


def _deps_of(strategy: Strategy) -> dict[str, list[str]]:
    return {n.id: list(n.after) for n in strategy.flow.nodes}


def _ancestors(deps: dict[str, list[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}

    def anc(n: str) -> set[str]:
        if n not in out:
            out[n] = set().union(*[{d} | anc(d) for d in deps[n]]) if deps[n] else set()
        return out[n]

    for n in deps:
        anc(n)
    return out


# -------------------------------------------------------------------------------- properties


def _plain_flow(deps: Deps, when: dict[str, bool] | None = None) -> tuple[Strategy, dict[str, bool]]:
    nodes = [{"id": k, "plugin": "p", **({"after": v} if v else {}),
              **({"when": {"path": "$.x", "exists": True}} if when and when_key(k) in when else {})}
             for k, v in deps.items()]
    return Strategy.model_validate({"id": "prop", "version": 1, "owner": "o", "on": {"event": "e"},
                                    "flow": {"nodes": nodes}}), when or {}


# the "N" (a→c, a→d, b→d) and a wider non-series-parallel graph, always checked
N_GRAPH: Deps = {"a": [], "b": [], "c": ["a"], "d": ["a", "b"]}
W_GRAPH: Deps = {"a": [], "b": [], "c": [], "x": ["a", "b"], "y": ["b", "c"], "z": ["a", "c"], "t": ["x"]}


@SETTINGS
@given(flow=flows(), seed=st.integers(0, 2**32 - 1))
@example(flow=_plain_flow(N_GRAPH), seed=1)
@example(flow=_plain_flow(W_GRAPH, {"b": False, "x": True}), seed=7)
def test_given_a_random_dag_when_compiled_then_no_node_starts_before_its_dependencies(
        flow: tuple[Strategy, dict[str, bool]], seed: int) -> None:
    strategy, when = flow
    compiled = compile_flow(strategy, ARNS)
    deps = _deps_of(strategy)
    ended = must_have_ended(compiled.definition)
    assert set(ended) == set(deps)
    ancestors = _ancestors(deps)
    for node, required in ancestors.items():
        assert required <= ended[node], f"{node} may start before {required - ended[node]} ended"
    rng = random.Random(seed)
    for _ in range(3):
        _check_log(simulate(compiled.definition, when, rng), deps)


@SETTINGS
@given(flow=flows(sp_dags()))
def test_given_a_series_parallel_dag_when_compiled_then_no_ordering_is_added(
        flow: tuple[Strategy, dict[str, bool]]) -> None:
    strategy, _ = flow
    compiled = compile_flow(strategy, ARNS)
    ancestors = _ancestors(_deps_of(strategy))
    ended = must_have_ended(compiled.definition)
    assert {n: set(s) for n, s in ended.items()} == ancestors


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(flows(dags(max_nodes=12)), min_size=6, max_size=6))
def test_given_random_dags_when_compiled_then_asl_validator_accepts_every_definition(
        batch: list[tuple[Strategy, dict[str, bool]]]) -> None:
    definitions = {f"flow {i}": compile_flow(s, ARNS).definition_json for i, (s, _) in enumerate(batch)}
    assert_valid(definitions)  # one asl-validator process per batch
