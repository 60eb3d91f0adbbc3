"""`powerx-agent release list | rollback` against the embedded runtime (moto serves Lambda versions and
aliases; what it does differently is asserted in tests/infrastructure/test_local_runtime_agreement.py).

A second deploy is what the stack's deploy does to every function (local/deployer.py publish_release:
POWERX_RELEASE, a new version described with the release, the live alias moved). The rollback moves every
alias back, all or nothing, audited; events keep flowing through the aliases afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import detail, send
from typer.testing import CliRunner

from powerx_agent import spec
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.local.deployer import publish_release
from powerx_agent.ops.release import CHAIN


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["release", *args])


def _aliases(rt) -> dict[str, str]:
    lam = rt.client("lambda")
    return {f.key: lam.get_alias(FunctionName=f.name, Name=spec.LIVE_ALIAS)["FunctionVersion"] for f in spec.FUNCTIONS}


@pytest.fixture()
def two_releases(rt, uid):
    """One more deploy on top of what is there: (the release before it, the new one, the versions of the
    release before it). Afterwards every alias goes back to where it was."""
    before = _aliases(rt)
    second = f"r-{uid}"
    publish_release(rt.client("lambda"), rt.deployment, second)
    releases = json.loads(_cli("list", "--format", "json").output)["releases"]  # newest first
    ids = [r["release"] for r in releases]
    previous = releases[ids.index(second) + 1]
    yield previous["release"], second, {k: str(v) for k, v in previous["versions"].items()}
    lam = rt.client("lambda")
    for fn in spec.FUNCTIONS:
        lam.update_alias(FunctionName=fn.name, Name=spec.LIVE_ALIAS, FunctionVersion=before[fn.key])


def test_given_two_releases_when_listed_then_the_newest_is_live_and_each_has_a_version_of_every_function(
        rt, two_releases):
    first, second, _ = two_releases
    listed = json.loads(_cli("list", "--format", "json").output)
    assert listed["live"] == second and listed["mixed"] is False
    ids = [r["release"] for r in listed["releases"]]
    assert ids.index(second) < ids.index(first)  # newest first
    (newest,) = [r for r in listed["releases"] if r["release"] == second]
    assert newest["functions"] == len(spec.FUNCTIONS) and newest["live"]
    text = _cli("list")
    assert text.exit_code == 0 and second in text.output and "live" in text.output


def test_given_a_bad_release_when_rolled_back_then_every_alias_returns_audited_and_events_still_run(
        rt, uid, two_releases):
    first, second, before = two_releases
    dry = _cli("rollback", "--reason", "smoke test", "--by", "tester", "--dry-run", "--format", "json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["to"] == first and _aliases(rt) != before  # nothing moved yet

    result = _cli("rollback", "--reason", "bad release in the test", "--by", "tester", "--format", "json")
    assert result.exit_code == 0, result.output
    moved = json.loads(result.output)
    assert (moved["from"], moved["to"]) == (second, first)
    assert _aliases(rt) == before  # every function back on the earlier release's version
    record = next(r for r in get_deps().audit.chain(CHAIN) if r["kind"] == "release.rolled_back"
                  and r["data"]["from"] == second)
    assert record["data"]["by"] == "tester" and record["data"]["to"] == first
    assert set(record["data"]["functions"]) == set(spec.FUNCTIONS_BY_KEY)
    # the triggers follow the aliases: an event still runs end to end
    workflow = send(rt, "plugin.job.completed", detail(uid))
    assert workflow and workflow["status"] == "SUCCEEDED"


def test_given_the_oldest_release_is_live_when_rolled_back_then_refused_and_forward_with_to_works(rt, two_releases):
    _, second, _ = two_releases
    oldest = json.loads(_cli("list", "--format", "json").output)["releases"][-1]["release"]
    assert _cli("rollback", "--to", oldest, "--reason", "r", "--by", "t").exit_code == 0
    refused = _cli("rollback", "--reason", "r", "--by", "t")
    assert refused.exit_code == 1 and "release.none_earlier" in refused.output
    forward = _cli("rollback", "--to", second, "--reason", "roll forward again", "--by", "t", "--format", "json")
    assert forward.exit_code == 0 and json.loads(forward.output)["to"] == second
    again = _cli("rollback", "--to", second, "--reason", "r", "--by", "t")
    assert again.exit_code == 1 and "release.already_live" in again.output
    unknown = _cli("rollback", "--to", "no-such-release", "--reason", "r", "--by", "t")
    assert unknown.exit_code == 1 and "release.unknown" in unknown.output and second in unknown.output


def test_given_aliases_on_different_releases_when_rolled_back_without_to_then_refused_and_nothing_moves(
        rt, two_releases):
    first, _, before = two_releases
    lam = rt.client("lambda")
    node = spec.FUNCTIONS_BY_KEY["node_notify"].name
    lam.update_alias(FunctionName=node, Name=spec.LIVE_ALIAS, FunctionVersion=before["node_notify"])  # by hand
    mixed = _aliases(rt)
    result = _cli("rollback", "--reason", "r", "--by", "t")
    assert result.exit_code == 1 and "release.mixed" in result.output and "--to" in result.output
    assert _aliases(rt) == mixed
    assert _cli("rollback", "--to", first, "--reason", "heal", "--by", "t").exit_code == 0
    assert _aliases(rt) == before


def test_given_a_move_that_fails_midway_when_rolled_back_then_the_moved_aliases_go_back_and_it_is_audited(
        rt, two_releases):
    first, second, before = two_releases
    after_deploy = _aliases(rt)
    lam = get_deps().client("lambda")
    failing = spec.FUNCTIONS_BY_KEY["replay_api"].name
    state = {"failed": False}

    def fail_once(params: dict[str, Any], **_: Any) -> None:
        if params.get("FunctionName") == failing and params.get("FunctionVersion") == before["replay_api"] \
                and not state["failed"]:
            state["failed"] = True
            raise RuntimeError("injected: UpdateAlias refused")

    lam.meta.events.register("provide-client-params.lambda.UpdateAlias", fail_once)
    try:
        result = _cli("rollback", "--reason", "r", "--by", "t")
    finally:
        lam.meta.events.unregister("provide-client-params.lambda.UpdateAlias", fail_once)
    assert result.exit_code == 1 and "release.rollback_failed" in result.output, result.output
    assert _aliases(rt) == after_deploy  # the functions moved before the failure were moved back
    failed = [r for r in get_deps().audit.chain(CHAIN) if r["kind"] == "release.rollback_failed"
              and r["data"]["to"] == first and r["data"]["from"] == second]
    assert failed and failed[-1]["data"]["not_restored"] == []
