"""Publish, approve, rollback and diff against the embedded runtime; the matcher follows the active
pointer within LIBRARY_REFRESH_SECONDS (1 s on the runtime) and keeps the last good revision when a
published one is broken.

Each test uses its own strategy id, event type (``test.lkg.<uid>``) and tenant (allowed: ``*``), so
it cannot disturb the strategies other tests rely on. Waiting for the refresh is a bounded poll
(send a fresh event until the expected version handles one), never a timed assertion.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from helpers import detail, send
from typer.testing import CliRunner

from powerx_agent import spec
from powerx_agent.adapters.dynamo import key, values
from powerx_agent.adapters.metrics import read_emf_totals
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.ops import strategy as lifecycle

POLL_LIMIT_S = 30.0  # bound for waiting on the library refresh; never an assertion on time


def strategy_text(strategy_id: str, version: int, event_type: str, tenant: str, plugin: str = "report-renderer",
                  node: str = "act") -> str:
    return f"""id: {strategy_id}
version: {version}
status: approved
owner: tests@example.com
tenants: [{tenant}]
on: {{event: {event_type}}}
when:
  all:
    - {{path: $.payload.kind, equals: lkg}}
variables:
  item: $.payload.item
flow:
  timeout: 5m
  nodes:
    - id: {node}
      plugin: {plugin}
      input: {{item: "${{item}}", version: {version}}}
"""


class Lab:
    """One strategy id, event type and tenant of this test, and helpers to drive them."""

    def __init__(self, rt: Any, uid: str, tmp_path: Path) -> None:
        self.rt, self.uid, self.dir = rt, uid, tmp_path
        self.strategy_id = f"lkg-{uid}"
        self.event_type = f"test.lkg.{uid}"
        self.tenant = f"lkg-{uid}"
        self.sent = 0
        get_deps().tenants.put({"tenant_id": self.tenant, "status": "active", "name": "lifecycle tests",
                                "owner": "owner@lkg.example", "notify": ["owner@lkg.example"],
                                "allowed_event_types": ["*"], "allowed_plugins": ["*"],
                                "idempotency_ttl_hours": 1})

    def write(self, version: int, **kw: Any) -> Path:
        path = self.dir / f"v{version}" / f"{self.strategy_id}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(strategy_text(self.strategy_id, version, self.event_type, self.tenant, **kw))
        return path

    def publish(self, version: int, author: str = "alice", **kw: Any) -> None:
        lifecycle.publish(get_deps(), self.write(version, **kw), author)

    def event(self) -> dict[str, Any] | None:
        self.sent += 1
        body = detail(f"{self.uid}-{self.sent}", tenant=self.tenant, kind="lkg", item=f"i{self.sent}")
        return send(self.rt, self.event_type, body)

    def until_version(self, version: int) -> dict[str, Any]:
        """Send fresh events until one is handled by ``version`` (the refresh is bounded)."""
        deadline = time.monotonic() + POLL_LIMIT_S
        seen = []
        while True:
            workflow = self.event()
            got = workflow.get("strategy_version") if workflow else None
            seen.append(got)
            if got == version:
                return workflow
            if time.monotonic() > deadline:
                raise AssertionError(f"v{version} never handled an event; saw {seen}")
            self.rt.clock.advance(0.25)  # towards the library's next refresh

    def audit_kinds(self) -> list[str]:
        records = sorted(get_deps().audit.chain(lifecycle.chain(self.strategy_id)), key=lambda r: r["seq"])
        return [r["kind"] for r in records]


@pytest.fixture()
def lab(rt: Any, uid: str, tmp_path: Path) -> Lab:
    return Lab(rt, uid, tmp_path)


def library_errors(rt: Any) -> float:
    deps = get_deps()
    totals = read_emf_totals(rt.client("logs"), deps.settings.metrics_log_group)
    return sum(v for (name, _), v in totals.items() if name == spec.METRICS["library_errors"])


def test_given_published_versions_when_approved_and_rolled_back_then_next_event_follows_and_all_is_audited(lab):
    deps = get_deps()
    lab.publish(1)
    lab.publish(2, plugin="s3-archiver")
    lifecycle.approve(deps, lab.strategy_id, 1, "bob", "first version")
    assert lab.until_version(1)["strategy_version"] == 1

    lifecycle.approve(deps, lab.strategy_id, 2, "bob", "archive instead")
    assert lab.until_version(2)["strategy_version"] == 2

    result = lifecycle.rollback(deps, lab.strategy_id, "carol")
    assert (result["version"], result["previous"]) == (1, 2)
    assert lab.until_version(1)["strategy_version"] == 1

    assert lab.audit_kinds() == ["strategy.published", "strategy.published", "strategy.approved",
                                 "strategy.approved", "strategy.rolled_back"]
    rolled = sorted(deps.audit.chain(lifecycle.chain(lab.strategy_id)), key=lambda r: r["seq"])[-1]
    assert rolled["data"]["actor"] == "carol" and rolled["data"]["from"] == 2


def test_given_cli_when_publish_approve_diff_list_rollback_then_deployment_changes_and_is_audited(lab, monkeypatch):
    runner = CliRunner()
    path = lab.write(1)
    out = runner.invoke(app, ["strategy", "publish", str(path), "--author", "alice"])
    assert out.exit_code == 0, out.output
    lab.write(2, node="act-v2")
    out = runner.invoke(app, ["strategy", "publish", str(lab.dir / "v2"), "--author", "alice", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert '"already_published": false' in out.output

    monkeypatch.setenv("REQUIRE_OTHER_APPROVER", "true")
    refused = runner.invoke(app, ["strategy", "approve", lab.strategy_id, "--version", "1", "--approver", "alice",
                                  "--reason", "mine"])
    assert refused.exit_code == 1
    assert "strategy.self_approval" in refused.output and "cannot also approve" in refused.output
    for version in (1, 2):
        out = runner.invoke(app, ["strategy", "approve", lab.strategy_id, "--version", str(version),
                                  "--approver", "bob", "--reason", "reviewed"])
        assert out.exit_code == 0, out.output
    monkeypatch.delenv("REQUIRE_OTHER_APPROVER")

    out = runner.invoke(app, ["strategy", "diff", lab.strategy_id, "--from", "1", "--to", "2"])
    assert out.exit_code == 1  # like diff(1): 1 when the versions differ
    assert f"--- {lab.strategy_id}@v1" in out.output
    assert "-    - id: act\n" in out.output and "+    - id: act-v2\n" in out.output

    out = runner.invoke(app, ["strategy", "list", "--published", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert f'"strategy_id": "{lab.strategy_id}"' in out.output

    out = runner.invoke(app, ["strategy", "rollback", lab.strategy_id, "--actor", "carol"])
    assert out.exit_code == 0, out.output
    assert get_deps().strategies.active(lab.strategy_id)["version"] == 1
    assert lab.until_version(1)["strategy_version"] == 1

    out = runner.invoke(app, ["strategy", "rollback", lab.strategy_id, "--to", "7"])
    assert out.exit_code == 1
    assert lab.audit_kinds() == ["strategy.published", "strategy.published", "strategy.approved",
                                 "strategy.approved", "strategy.rolled_back"]


def test_given_broken_or_missing_published_revision_when_matching_then_last_good_serves_and_errors_count(lab):
    deps = get_deps()
    lab.publish(1)
    lifecycle.approve(deps, lab.strategy_id, 1, "bob", "good")
    assert lab.until_version(1)["strategy_version"] == 1

    # v2 is published clean, then its YAML is broken in the table, then activated at the store level
    lab.publish(2, plugin="s3-archiver")
    table = deps.settings.strategies_table
    lab.rt.client("dynamodb").update_item(
        TableName=table, Key=key(pk=f"STRATEGY#{lab.strategy_id}", sk="V#000002"),
        UpdateExpression="SET yaml = :y", ExpressionAttributeValues=values(y="id: [unclosed\n  flow: {"))
    before = library_errors(lab.rt)
    broken = deps.strategies.approve(lab.strategy_id, 2, "bob", "broken on purpose")
    try:
        for _ in range(6):  # a few events over more than the refresh time: always the last good v1
            workflow = lab.event()
            assert workflow is not None and workflow["strategy_version"] == 1
            lab.rt.clock.advance(0.3)
        assert library_errors(lab.rt) > before

        # a revision whose active version is missing altogether
        current = deps.strategies.revision()
        missing = {**current, "revision": int(current["revision"]) + 1,
                   "active": {**current["active"], lab.strategy_id: 99}}
        from powerx_agent.adapters.dynamo import to_item
        lab.rt.client("dynamodb").put_item(TableName=table, Item=to_item(missing))
        errors_then = library_errors(lab.rt)
        for _ in range(6):
            workflow = lab.event()
            assert workflow is not None and workflow["strategy_version"] == 1
            lab.rt.clock.advance(0.3)
        assert library_errors(lab.rt) > errors_then
    finally:
        # a new good revision repairs the library for everyone
        lab.publish(3, plugin="s3-archiver")
        lifecycle.approve(deps, lab.strategy_id, 3, "bob", "fixed")
    assert broken["revision"] < deps.strategies.revision()["revision"]
    assert lab.until_version(3)["strategy_version"] == 3
