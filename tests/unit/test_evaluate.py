"""One evaluation: the matcher, ``strategy test`` and ``strategy simulate`` agree on every event,
because all three call ``strategy.evaluate.evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from powerx_agent.cli.main import app
from powerx_agent.cli.strategy_cmd import placeholder_arns
from powerx_agent.handoffs.match import MatchMessage
from powerx_agent.ingest.service import Ingestor
from powerx_agent.local.demo import c1_event, c2_event
from powerx_agent.match.service import Matcher
from powerx_agent.strategy.evaluate import EventFacts, evaluate
from powerx_agent.strategy.library import library_from_directory
from powerx_agent.strategy.templates import BUILTINS
from powerx_agent.taskflow.asl import compile_flow
from powerx_agent.testing.fakes import FakeDeps, bus_event, fake_http

REPO = Path(__file__).resolve().parents[2]
CASES = [("plugin.job.completed", "powerx.plugins", c1_event("-ev")),
         ("plugin.job.completed", "powerx.plugins",
          {**c1_event("-big"), "payload": {"job": {"id": "43", "type": "report", "rows": 250_000}}}),
         ("tenant.request.pending", "powerx.tenants", c2_event("-ev"))]


def _matcher_view(event_type: str, source: str, detail: dict) -> dict:
    """What the matcher decided and started, read back from the decision record and the execution input."""
    deps = FakeDeps.create()
    with fake_http():
        assert Ingestor(deps, deps.metrics()).handle(bus_event(event_type, detail, source)).outcome == "accepted"
        (body,) = deps.queues.drain(deps.settings.match_queue_url)
        context = json.loads(body)
        Matcher(deps, deps.metrics()).handle(MatchMessage.parse(body).to_dict())
    (decision,) = [r for r in deps.audit.chain(f"WF#{context['workflow_id']}") if r["kind"] == "decision"]
    executions = list(deps.state_machines.executions.values())
    started = json.loads(executions[0]["input"]) if executions else None
    machine = deps.state_machines.machines[executions[0]["stateMachineArn"]] if executions else {}
    return {"selected": decision["data"]["decision"]["selected"], "input": started, "tenant": context["tenant"],
            "type": machine.get("type")}


@pytest.mark.parametrize(("event_type", "source", "detail"), CASES)
def test_given_an_event_when_the_matcher_and_the_tools_decide_then_they_agree(event_type, source, detail, tmp_path):
    matcher = _matcher_view(event_type, source, detail)
    event = {"source": source, "detail-type": event_type, "detail": detail}
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    tested = CliRunner().invoke(app, ["strategy", "test", "--event", str(path), "--strategies",
                                      str(REPO / "strategies"), "--format", "json"])
    assert tested.exit_code == 0, tested.output
    tested = json.loads(tested.stdout)
    lines = tmp_path / "events.jsonl"
    lines.write_text(json.dumps(event) + "\n")
    simulated = CliRunner().invoke(app, ["strategy", "simulate", "--events", str(lines), "--strategies",
                                         str(REPO / "strategies"), "--format", "json"])
    assert simulated.exit_code == 0, simulated.output
    simulated = json.loads(simulated.stdout)

    assert tested["decision"]["selected"] == matcher["selected"]
    chosen = matcher["selected"]
    assert simulated["per_strategy"] == ({f"{chosen['strategy_id']}@v{chosen['version']}": 1} if chosen else {})
    if chosen is None:
        assert matcher["input"] is None and tested["taskflow"] is None
        return
    started = matcher["input"]
    # the variables the execution got are the ones the tool shows (the tool cannot know the tenant owner)
    assert {k: v for k, v in started["variables"].items() if k not in BUILTINS} == tested["variables"]
    library = library_from_directory(REPO / "strategies", "dir:strategies")
    found = evaluate(library, EventFacts(event_type=event_type, source=source, tenant_id=detail["tenant_id"],
                                         event_id=detail["event_id"], idempotency_key=detail["idempotency_key"],
                                         detail=detail), matcher["tenant"])
    assert {n["id"]: n["runs"] for n in tested["taskflow"]["nodes"]} == found.when
    assert tested["taskflow"]["type"] == matcher["type"]  # the tool shows the machine the matcher starts (head or full)
    flow = compile_flow(found.selected.strategy, placeholder_arns())
    assert started["when"] == {flow.when_keys[n]: found.when[n] for n in found.selected.node_whens}
    assert started["variables"]["owner"] == found.builtins["owner"] == matcher["tenant"].get("owner")


def test_given_a_tenant_when_evaluated_then_the_owner_builtin_is_the_tenant_owner():
    library = library_from_directory(REPO / "strategies", "dir:strategies")
    detail = c1_event("-owner")
    facts = EventFacts(event_type="plugin.job.completed", source="powerx.plugins", tenant_id=detail["tenant_id"],
                       event_id=detail["event_id"], idempotency_key=detail["idempotency_key"], detail=detail)
    found = evaluate(library, facts, {"owner": "owner@acme.example"})
    assert found.matched and found.builtins["owner"] == "owner@acme.example"
    assert found.doc["event_type"] == "plugin.job.completed"
    assert set(found.when) == {n.id for n in found.selected.strategy.flow.nodes}


def test_given_an_unmatched_event_when_evaluated_then_nothing_is_rendered():
    library = library_from_directory(REPO / "strategies", "dir:strategies")
    detail = c2_event("-none")
    facts = EventFacts(event_type="tenant.request.pending", source="powerx.tenants", tenant_id=detail["tenant_id"],
                       event_id=detail["event_id"], idempotency_key=detail["idempotency_key"], detail=detail)
    found = evaluate(library, facts, {})
    assert not found.matched and found.variables == {} and found.when == {}
    assert found.decision.reason()
