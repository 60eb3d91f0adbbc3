"""State machine versions and the alias per strategy on the embedded runtime.

Each strategy version's hash-named machine is published as version 1 and recorded in the
workflow META; the strategy's alias machine gets one version per strategy version, and its
``live`` alias follows approvals, and rollbacks point it back.
"""

from __future__ import annotations

from typing import Any

from test_strategy_lifecycle import Lab, lab  # noqa: F401 - the fixture is shared

from powerx_agent.deps import get_deps
from powerx_agent.ops import strategy as lifecycle


def describe(rt: Any, arn: str) -> dict[str, Any]:
    return rt.client("stepfunctions").describe_state_machine(stateMachineArn=arn)


def test_given_two_strategy_versions_when_run_and_rolled_back_then_alias_follows_and_meta_records_it(lab: Lab):  # noqa: F811
    deps, rt = get_deps(), lab.rt
    lab.publish(1)
    lab.publish(2, node="act-v2")
    lifecycle.approve(deps, lab.strategy_id, 1, "bob", "first")
    first = lab.until_version(1)
    assert first["state_machine_version_arn"] == first["state_machine_arn"] + ":1"
    assert describe(rt, first["state_machine_version_arn"])["description"].startswith(f"{lab.strategy_id} v1 ")
    assert first["strategy_alias_arn"].endswith(f":stateMachine:agent-{lab.strategy_id}:live")
    assert deps.state_machines.alias_target(lab.strategy_id)["strategy_version"] == 1

    lifecycle.approve(deps, lab.strategy_id, 2, "bob", "second")
    second = lab.until_version(2)
    assert second["state_machine_arn"] != first["state_machine_arn"]
    assert second["strategy_alias_arn"] == first["strategy_alias_arn"]
    assert second["strategy_state_machine_version_arn"] != first["strategy_state_machine_version_arn"]
    target = deps.state_machines.alias_target(lab.strategy_id)
    assert (target["strategy_version"], target["version_arn"]) == (2, second["strategy_state_machine_version_arn"])
    v2 = describe(rt, second["strategy_state_machine_version_arn"])
    assert '"act-v2"' in v2["definition"] and v2["description"].startswith(f"{lab.strategy_id} v2 ")

    result = lifecycle.rollback(deps, lab.strategy_id, "carol")
    assert result["alias"]["pointed"] is True
    target = deps.state_machines.alias_target(lab.strategy_id)
    assert (target["strategy_version"], target["version_arn"]) == (1, first["strategy_state_machine_version_arn"])
    again = lab.until_version(1)
    assert again["state_machine_arn"] == first["state_machine_arn"]
    assert deps.state_machines.alias_target(lab.strategy_id)["strategy_version"] == 1


def test_given_version_never_run_when_rolled_back_to_then_alias_stays_and_says_why(lab: Lab):  # noqa: F811
    deps = get_deps()
    lab.publish(1)
    lab.publish(2)
    lifecycle.approve(deps, lab.strategy_id, 1, "bob", "first")
    lifecycle.approve(deps, lab.strategy_id, 2, "bob", "second")
    lab.until_version(2)  # only v2 ever ran: v1 has no state-machine version
    result = lifecycle.rollback(deps, lab.strategy_id, "carol", to_version=1)
    assert result["alias"] == {"pointed": False, "why": "no state-machine version for v1 yet"}
    assert deps.state_machines.alias_target(lab.strategy_id)["strategy_version"] == 2
    lab.until_version(1)  # the next v1 event publishes v1's version and points the alias
    assert deps.state_machines.alias_target(lab.strategy_id)["strategy_version"] == 1
