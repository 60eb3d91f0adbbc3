"""Taskflow builder: structural problems of a flow, the DAG, and its series-parallel tree."""

from __future__ import annotations

from typing import Any

import pytest

from powerx_agent.errors import TaskflowError
from powerx_agent.taskflow.builder import (
    Dag,
    Leaf,
    Par,
    Seq,
    build_dag,
    flow_problems,
    series_parallel,
    tree_nodes,
)
from powerx_agent.taskflow.model import FlowSpec


def flow(*nodes: dict[str, Any]) -> FlowSpec:
    return FlowSpec.model_validate({"nodes": list(nodes)})


def node(node_id: str, *after: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": node_id, "plugin": "p", **extra}
    if after:
        out["after"] = list(after)
    return out


def codes(problems: list[TaskflowError]) -> list[str]:
    return [p.code for p in problems]


# ------------------------------------------------------------------------------- problems


def test_given_a_valid_flow_when_checked_then_there_are_no_problems() -> None:
    assert flow_problems(flow(node("a"), node("b", "a"), node("c", "a"), node("d", "b", "c"))) == []


def test_given_duplicate_ids_when_checked_then_the_duplicate_is_named() -> None:
    (problem,) = flow_problems(flow(node("a"), node("b", "a"), node("a")))
    assert problem.code == "flow.duplicate_node"
    assert "'a'" in problem.message and problem.details == {"node": "a", "nodes": ["a"]}


def test_given_an_unknown_after_when_checked_then_node_and_target_are_named() -> None:
    (problem,) = flow_problems(flow(node("a"), node("b", "ghost")))
    assert problem.code == "flow.unknown_after"
    assert "'b'" in problem.message and "'ghost'" in problem.message
    assert problem.details == {"node": "b", "nodes": ["b", "ghost"]}
    assert problem.where == "flow.nodes[b]"


def test_given_a_self_dependency_when_checked_then_it_is_reported() -> None:
    problems = flow_problems(flow(node("a"), node("b", "b")))
    assert codes(problems) == ["flow.self_dependency"]
    assert problems[0].details["node"] == "b"


def test_given_a_three_node_cycle_when_checked_then_the_cycle_path_names_every_node() -> None:
    problems = flow_problems(flow(node("start"), node("x", "start", "z"), node("y", "x"), node("z", "y")))
    assert codes(problems) == ["flow.cycle"]
    cycle = problems[0]
    assert sorted(cycle.details["nodes"]) == ["x", "y", "z"]
    assert cycle.details["node"] == "x"
    assert "x → y → z → x" in cycle.message


def test_given_two_cycles_and_downstream_nodes_when_checked_then_all_are_reported() -> None:
    problems = flow_problems(flow(
        node("a", "b"), node("b", "a"), node("c", "d"), node("d", "c"),
        node("e", "a"), node("f", "e"), node("ok")))
    assert codes(problems) == ["flow.cycle", "flow.cycle", "flow.unreachable", "flow.unreachable"]
    assert [sorted(p.details["nodes"]) for p in problems[:2]] == [["a", "b"], ["c", "d"]]
    unreachable = {p.details["node"]: p for p in problems[2:]}
    assert set(unreachable) == {"e", "f"}
    assert "'e'" in unreachable["e"].message and "'a'" in unreachable["e"].message
    assert unreachable["f"].details["nodes"] == ["f", "e"]


def test_given_a_node_after_an_unknown_node_when_checked_then_its_dependents_are_unreachable() -> None:
    problems = flow_problems(flow(node("a", "ghost"), node("b", "a")))
    assert codes(problems) == ["flow.unknown_after", "flow.unreachable"]
    assert problems[1].details["node"] == "b"


def test_given_problems_when_building_then_the_first_problem_is_raised() -> None:
    with pytest.raises(TaskflowError) as err:
        build_dag(flow(node("a"), node("a"), node("b", "nope")))
    assert err.value.code == "flow.duplicate_node"


# ------------------------------------------------------------------------------------ DAG


def test_given_a_diamond_when_built_then_order_levels_roots_and_sinks_follow_the_graph() -> None:
    dag = build_dag(flow(node("d", "b", "c"), node("c", "a"), node("b", "a"), node("a")))
    assert isinstance(dag, Dag)
    assert dag.order == ("a", "c", "b", "d")  # ties broken by declaration order (c before b)
    assert dag.deps == {"d": ("b", "c"), "c": ("a",), "b": ("a",), "a": ()}
    assert dag.levels == (("a",), ("c", "b"), ("d",))
    assert dag.roots == ("a",) and dag.sinks == ("d",)
    assert dag.ancestors("d") == {"a", "b", "c"}
    assert list(dag.nodes) == ["d", "c", "b", "a"]


def test_given_the_same_flow_when_built_twice_then_the_order_is_identical() -> None:
    nodes = [node(f"n{i}", *[f"n{j}" for j in range(i) if (i * 7 + j) % 3 == 0]) for i in range(12)]
    assert build_dag(flow(*nodes)).order == build_dag(flow(*nodes)).order


# ------------------------------------------------------------------------- series-parallel


def test_given_a_diamond_when_decomposed_then_it_is_sequence_parallel_sequence() -> None:
    dag = build_dag(flow(node("a"), node("b", "a"), node("c", "a"), node("d", "b", "c")))
    assert series_parallel(dag) == Seq((Leaf("a"), Par((Leaf("b"), Leaf("c"))), Leaf("d")))


def test_given_independent_chains_when_decomposed_then_they_run_in_parallel() -> None:
    dag = build_dag(flow(node("a"), node("b", "a"), node("x"), node("y", "x")))
    assert series_parallel(dag) == Par((Seq((Leaf("a"), Leaf("b"))), Seq((Leaf("x"), Leaf("y")))))


def test_given_the_n_graph_when_decomposed_then_level_barriers_keep_every_dependency() -> None:
    # a→c, a→d, b→d is not series-parallel: the smallest over-approximation adds one ordering
    dag = build_dag(flow(node("a"), node("b"), node("c", "a"), node("d", "a", "b")))
    tree = series_parallel(dag)
    assert tree == Seq((Par((Leaf("a"), Leaf("b"))), Par((Leaf("c"), Leaf("d")))))
    assert sorted(tree_nodes(tree)) == ["a", "b", "c", "d"]


def test_given_an_n_inside_a_longer_flow_when_decomposed_then_only_the_n_is_serialised() -> None:
    dag = build_dag(flow(node("s"), node("a", "s"), node("b", "s"), node("c", "a"), node("d", "a", "b"),
                         node("t", "c", "d")))
    tree = series_parallel(dag)
    assert isinstance(tree, Seq)
    assert tree.parts[0] == Leaf("s") and tree.parts[-1] == Leaf("t")
    assert tree.parts[1:-1] == (Par((Leaf("a"), Leaf("b"))), Par((Leaf("c"), Leaf("d"))))


def test_given_a_single_node_when_decomposed_then_it_is_a_leaf() -> None:
    assert series_parallel(build_dag(flow(node("only")))) == Leaf("only")
