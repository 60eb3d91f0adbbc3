"""Canary rollout on the embedded runtime: ``strategy approve --canary`` makes a version decide a share
of the events; the audit stream tallies both arms; a canary whose flow fails against a flaky sandbox
plugin is aborted by itself (audited, counted, notified); a healthy one is promoted from the CLI; a
replay of an event lands on the arm that decided it first.

Each test has its own strategy, event type and tenant. Waiting is a bounded poll, never a timed
assertion."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import detail
from typer.testing import CliRunner

from powerx_agent import spec
from powerx_agent.adapters.metrics import read_emf_totals
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.match import canary
from powerx_agent.ops import strategy as lifecycle
from powerx_agent.ops.replay import replay_key

POLL_LIMIT_S = 90.0


def text(sid: str, version: int, event_type: str, tenant: str, plugin: str) -> str:
    return f"""id: {sid}
version: {version}
status: approved
owner: owner@canary.example
tenants: [{tenant}]
on: {{event: {event_type}}}
when: {{path: $.payload.kind, equals: go}}
flow:
  timeout: 5m
  nodes:
    - id: act
      plugin: {plugin}
      input: {{version: {version}}}
      retry: {{attempts: 1}}
"""


class Lab:
    def __init__(self, rt: Any, uid: str, tmp_path: Path) -> None:
        self.rt, self.uid, self.dir = rt, uid, tmp_path
        self.sid, self.event_type, self.tenant = f"cn-{uid}", f"test.canary.{uid}", f"cn-{uid}"
        self.sent = 0
        get_deps().tenants.put({"tenant_id": self.tenant, "status": "active", "name": "canary tests",
                                "owner": "owner@canary.example", "notify": ["owner@canary.example"],
                                "allowed_event_types": ["*"], "allowed_plugins": ["*"], "idempotency_ttl_hours": 1})

    def publish(self, version: int, plugin: str) -> None:
        path = self.dir / f"v{version}" / f"{self.sid}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text(self.sid, version, self.event_type, self.tenant, plugin))
        lifecycle.publish(get_deps(), path, "alice")

    def send(self, count: int) -> list[str]:
        """Put ``count`` fresh events (10 per PutEvents) and wait until the runtime is idle; their keys."""
        keys, entries = [], []
        for _ in range(count):
            self.sent += 1
            body = detail(f"{self.uid}-{self.sent}", tenant=self.tenant, kind="go")
            keys.append(body["idempotency_key"])
            entries.append({"Source": "powerx.plugins", "DetailType": self.event_type, "Detail": json.dumps(body),
                            "EventBusName": spec.BUS_NAME})
        for start in range(0, len(entries), 10):
            self.rt.put_events(entries[start:start + 10])
        assert self.rt.wait_idle(timeout=POLL_LIMIT_S), "the runtime did not become idle"
        return keys

    def decision(self, key: str) -> dict[str, Any] | None:
        records = get_deps().audit.chain(f"WF#{workflow_id_for(self.tenant, key)}")
        found = [r for r in records if r["kind"] == "decision"]
        return found[0]["data"]["decision"] if found else None

    def until_canary_routes(self) -> None:
        """Send events until the matcher serves the canary (its library refresh is bounded)."""
        deadline = time.monotonic() + POLL_LIMIT_S
        while True:
            (key,) = self.send(1)
            if (self.decision(key) or {}).get("arm"):
                return
            assert time.monotonic() < deadline, "the matcher never routed an event through the canary"
            time.sleep(0.25)

    def kinds(self) -> list[str]:
        return [r["kind"] for r in sorted(get_deps().audit.chain(f"STRAT#{self.sid}"), key=lambda r: r["seq"])]


@pytest.fixture()
def lab(rt: Any, uid: str, tmp_path: Path) -> Lab:
    canary.forget()
    return Lab(rt, uid, tmp_path)


def aborted_total(rt: Any) -> float:
    totals = read_emf_totals(rt.client("logs"), get_deps().settings.metrics_log_group)
    return sum(v for (name, _), v in totals.items() if name == spec.METRICS["canary_aborted"])


def test_given_a_canary_failing_against_a_flaky_plugin_when_events_flow_then_it_is_aborted_by_itself(lab):
    deps = get_deps()
    lab.publish(1, "report-renderer")
    lab.publish(2, f"flaky-{lab.uid}")
    lab.rt.sandbox.flaky(f"flaky-{lab.uid}", rate=0.9, seed=7)
    lifecycle.approve(deps, lab.sid, 1, "bob", "first")
    before = aborted_total(lab.rt)
    out = CliRunner().invoke(app, ["strategy", "approve", lab.sid, "--version", "2", "--approver", "bob",
                                   "--reason", "try archiving", "--canary", "50%", "--min-events", "8",
                                   "--abort-margin", "0.1"])
    assert out.exit_code == 0, out.output
    assert "canary deciding 50% of the events" in out.output
    lab.until_canary_routes()

    deadline = time.monotonic() + POLL_LIMIT_S
    while lab.sid in canary.running(deps):
        assert time.monotonic() < deadline, f"never aborted: {canary.status(deps, lab.sid)['verdict']}"
        lab.send(10)

    found = canary.status(deps, lab.sid)
    assert found["status"] == "ABORTED" and found["ended_by"] == "canary-watch"
    # a failed node escalates its workflow: whichever rate shows it first with enough evidence aborts
    assert ("failure rate" in found["end_reason"] or "escalation rate" in found["end_reason"]), found["end_reason"]
    assert "95% CI lower bound" in found["end_reason"] and "margin 10.0%" in found["end_reason"]
    compared = found["comparison"]
    assert compared["canary"]["escalation_rate"]["count"] > 0
    assert compared["baseline"]["escalation_rate"]["count"] == 0 and compared["baseline"]["hit_rate"]["rate"] == 1.0
    assert lab.kinds()[-2:] == ["strategy.canary_started", "strategy.canary_aborted"]
    record = sorted(deps.audit.chain(f"STRAT#{lab.sid}"), key=lambda r: r["seq"])[-1]
    assert record["data"]["automatic"] is True and record["data"]["actor"] == "canary-watch"
    assert aborted_total(lab.rt) == before + 1
    notified = [c.body for c in lab.rt.sandbox.calls("/notifications/") if c.body.get("type") == "canary_aborted"
                and c.body.get("strategy_id") == lab.sid]
    assert len(notified) == 1 and "owner@canary.example" in notified[0]["to"]

    # the baseline decides every event again; the canary version was never approved
    deadline = time.monotonic() + POLL_LIMIT_S
    while True:
        (key,) = lab.send(1)
        decided = lab.decision(key)
        if decided and "arm" not in decided:
            assert decided["selected"]["version"] == 1
            break
        assert time.monotonic() < deadline
    assert deps.strategies.version(lab.sid, 2)["approval"] == "PENDING"
    assert deps.strategies.active(lab.sid)["version"] == 1


def test_given_a_healthy_canary_when_compared_and_promoted_then_it_decides_everything_and_all_is_audited(lab):
    deps = get_deps()
    runner = CliRunner()
    lab.publish(1, "report-renderer")
    lab.publish(2, "report-renderer")
    lifecycle.approve(deps, lab.sid, 1, "bob", "first")
    lifecycle.approve_canary(deps, lab.sid, 2, "40%", "bob", "new input", min_events=5)
    refused = runner.invoke(app, ["strategy", "approve", lab.sid, "--version", "2", "--approver", "bob",
                                  "--reason", "skip the canary"])
    assert refused.exit_code == 1 and "strategy.canary_running" in refused.output
    lab.until_canary_routes()
    keys = lab.send(20)
    arms = {(lab.decision(k) or {}).get("arm", {}).get("arm") for k in keys}
    assert arms == {"canary", "baseline"}
    assert deps.state_machines.alias_target(lab.sid)["strategy_version"] == 1  # live stays on the active version

    status = runner.invoke(app, ["strategy", "canary", "status", lab.sid, "--format", "json"])
    assert status.exit_code == 0, status.output
    found = json.loads(status.output)
    assert found["status"] == "RUNNING" and found["verdict"]["abort"] is False
    for arm in ("canary", "baseline"):
        assert found["comparison"][arm]["hit_rate"]["rate"] == 1.0
        assert found["comparison"][arm]["failure_rate"]["count"] == 0
        assert found["comparison"][arm]["latency_ms"]["count"] > 0
    shown = runner.invoke(app, ["strategy", "canary", "status", lab.sid])
    assert "hit rate" in shown.output and "no abort: " in shown.output, shown.output

    out = runner.invoke(app, ["strategy", "canary", "promote", lab.sid, "--approver", "carol", "--reason", "healthy"])
    assert out.exit_code == 0, out.output
    assert deps.strategies.active(lab.sid)["version"] == 2 and lab.sid not in canary.running(deps)
    assert deps.state_machines.alias_target(lab.sid)["strategy_version"] == 2
    assert canary.status(deps, lab.sid)["status"] == "PROMOTED"
    assert lab.kinds()[-3:] == ["strategy.canary_started", "strategy.approved", "strategy.canary_promoted"]
    again = runner.invoke(app, ["strategy", "canary", "abort", lab.sid, "--actor", "carol", "--reason", "late"])
    assert again.exit_code == 1 and "strategy.no_canary" in again.output


def test_given_a_decided_event_when_replayed_with_a_fresh_key_then_it_lands_on_the_same_arm(lab):
    deps = get_deps()
    lab.publish(1, "report-renderer")
    lab.publish(2, "report-renderer")
    lifecycle.approve(deps, lab.sid, 1, "bob", "first")
    lifecycle.approve_canary(deps, lab.sid, 2, "50%", "bob", "replay check", min_events=1000)
    lab.until_canary_routes()
    keys = lab.send(8)
    first = {k: lab.decision(k)["arm"] for k in keys}
    assert {a["arm"] for a in first.values()} == {"canary", "baseline"}

    path = lab.dir / "replay.jsonl"
    lines = []
    for key in keys:
        body = detail(f"{lab.uid}-{key}", tenant=lab.tenant, key=key, kind="go")
        lines.append(json.dumps({"source": "powerx.plugins", "detail-type": lab.event_type, "detail": body}))
    path.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    out = runner.invoke(app, ["replay", "--file", str(path), "--new-key", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert lab.rt.wait_idle(timeout=POLL_LIMIT_S)
    for key in keys:
        again = lab.decision(replay_key(key, 1))
        assert again is not None, key
        assert (again["arm"]["arm"], again["arm"]["bucket"]) == (first[key]["arm"], first[key]["bucket"])
        assert again["selected"]["version"] == (2 if first[key]["arm"] == "canary" else 1)
    abort = runner.invoke(app, ["strategy", "canary", "abort", lab.sid, "--actor", "carol", "--reason", "done"])
    assert abort.exit_code == 0, abort.output
    assert "aborted by carol" in abort.output
