"""What a strategy author meets: `lint` of one file, the owner builtins, and (below) strategy tests."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from powerx_agent.cli.main import app
from powerx_agent.strategy.evaluate import EventFacts, evaluate
from powerx_agent.strategy.library import library_from_directory
from powerx_agent.testing.fakes import FakeDeps, bus_event, fake_http

REPO = Path(__file__).resolve().parents[2]
cli = CliRunner()


def test_given_one_strategy_file_when_linted_then_only_it_is_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nversion: 1\nowner: me\non: {event: e.x}\nflow:\n  nodes:\n    - {id: a, plugin: p, "
                   "input: {ids: [$.items[*].id]}}\n")
    linted = cli.invoke(app, ["strategy", "lint", str(bad)])
    assert linted.exit_code == 1 and f"{bad}:7:" in linted.stdout and "quote it" in linted.stdout
    good = cli.invoke(app, ["strategy", "lint", str(REPO / "strategies" / "report-on-job-completed.yaml")])
    assert good.exit_code == 0 and "0 error(s), 0 warning(s)" in good.stdout
    missing = cli.invoke(app, ["strategy", "lint", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2


def test_given_a_matched_event_when_evaluated_then_tenant_owner_and_strategy_owner_are_not_confused() -> None:
    from powerx_agent.local.demo import c1_event

    library = library_from_directory(REPO / "strategies", "dir:strategies")
    detail = c1_event("-owners")
    found = evaluate(library, EventFacts(event_type="plugin.job.completed", source="powerx.plugins",
                                         tenant_id=detail["tenant_id"], event_id=detail["event_id"],
                                         idempotency_key=detail["idempotency_key"], detail=detail),
                     {"owner": "owner@acme.example"})
    assert found.builtins["tenant_owner"] == found.builtins["owner"] == "owner@acme.example"
    assert found.builtins["strategy_owner"] == found.selected.strategy.owner == "automation@example.com"
    scope = {**found.builtins, **found.variables}
    assert found.selected.notify_targets["tell-owner"].render(scope) == "owner@acme.example"


def test_given_the_matcher_when_it_starts_a_workflow_then_the_execution_gets_both_owners() -> None:
    import json

    from powerx_agent.ingest.service import Ingestor
    from powerx_agent.local.demo import c1_event
    from powerx_agent.match.service import Matcher

    deps = FakeDeps.create()
    with fake_http():
        assert Ingestor(deps, deps.metrics()).handle(bus_event("plugin.job.completed", c1_event("-own"),
                                                               "powerx.plugins")).outcome == "accepted"
        (body,) = deps.queues.drain(deps.settings.match_queue_url)
        Matcher(deps, deps.metrics()).handle(json.loads(body))
    (execution,) = deps.state_machines.executions.values()
    variables = json.loads(execution["input"])["variables"]
    assert variables["tenant_owner"] == "owner@acme.example"
    assert variables["strategy_owner"] == "automation@example.com"


# -- strategy test --expect / --suite, tenants, simulate reports -------------------------------------

C1 = REPO / "tests" / "events" / "c1-plugin-job-completed.json"
TENANTS = REPO / "config" / "tenants.yaml"


def test_given_expect_when_the_selected_strategy_differs_then_exit_1_and_fail_says_why() -> None:
    passed = cli.invoke(app, ["strategy", "test", "--event", str(C1), "--expect", "report-on-job-completed"])
    assert passed.exit_code == 0 and "PASS expected report-on-job-completed" in passed.stdout
    failed = cli.invoke(app, ["strategy", "test", "--event", str(C1), "--expect", "none"])
    assert failed.exit_code == 1 and "FAIL expected none, got report-on-job-completed" in failed.stdout
    other = cli.invoke(app, ["strategy", "test", "--event", str(C1), "--expect", "ticket-on-job-failed",
                             "--format", "json"])
    assert other.exit_code == 1
    import json

    assert json.loads(other.stdout)["expect"]["passed"] is False
    bad = cli.invoke(app, ["strategy", "test", "--event", str(C1), "--expect", "Not An Id!"])
    assert bad.exit_code == 2


def test_given_the_library_when_its_suite_runs_then_every_fixture_passes_and_junit_says_so(tmp_path: Path) -> None:
    from xml.etree import ElementTree

    report = tmp_path / "junit.xml"
    ran = cli.invoke(app, ["strategy", "test", "--suite", "--strategies", str(REPO / "strategies"),
                           "--tenants", str(TENANTS), "--junit", str(report)])
    assert ran.exit_code == 0, ran.output
    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert int(suite.get("tests")) >= 7 and suite.get("failures") == "0" and suite.get("errors") == "0"
    names = {case.get("name") for case in suite.iter("testcase")}
    assert "a large report waits for the finance approval" in names  # inline tests: of the strategy
    assert "globex may not send failed-job events" in names  # strategies/tests/ files


def _library(tmp_path: Path, fixture: str, strategy_tests: str = "") -> Path:
    library = tmp_path / "lib"
    (library / "tests").mkdir(parents=True)
    text = (REPO / "strategies" / "report-on-job-completed.yaml").read_text()
    (library / "report.yaml").write_text(text[:text.index("\ntests:")] + "\n" + strategy_tests)
    (library / "tests" / "cases.yaml").write_text(fixture)
    return library


def test_given_failing_fixtures_when_the_suite_runs_then_exit_1_each_failure_named_in_junit(tmp_path: Path) -> None:
    from xml.etree import ElementTree

    event = C1.read_text()
    fixture = ("tests:\n"
               f"  - name: wrong strategy\n    event: {event}\n    expect: {{strategy: ticket-on-job-failed}}\n"
               f"  - name: wrong variable and when\n    event: {event}\n"
               "    expect: {strategy: report-on-job-completed, variables: {rows: 7}, when: {approve: true}}\n"
               f"  - name: a tenant that is not registered\n    event: {event.replace('acme', 'nobody')}\n"
               "    expect: {strategy: report-on-job-completed}\n")
    library = _library(tmp_path, fixture)
    report = tmp_path / "junit.xml"
    ran = cli.invoke(app, ["strategy", "test", "--suite", "--strategies", str(library), "--tenants", str(TENANTS),
                           "--junit", str(report)])
    assert ran.exit_code == 1
    assert "expected ticket-on-job-failed, got report-on-job-completed@v3" in ran.stdout
    assert "variable 'rows': expected 7, got 1200" in ran.stdout
    assert "node 'approve': expected it to run, it is skipped" in ran.stdout
    assert "ingest would reject it: tenant.unknown" in ran.stdout
    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("3", "3")


def test_given_a_fixture_file_without_the_expected_strategy_when_the_suite_runs_then_an_error_not_a_pass(
        tmp_path: Path) -> None:
    library = _library(tmp_path, f"tests:\n  - name: no strategy named\n    event: {C1.read_text()}\n    expect: {{}}\n")
    ran = cli.invoke(app, ["strategy", "test", "--suite", "--strategies", str(library)])
    assert ran.exit_code == 1 and "ERROR" in ran.stdout and "expect.strategy" in ran.stdout
    lint = cli.invoke(app, ["strategy", "lint", str(library)])  # tests/ holds fixtures, not strategies
    assert lint.exit_code == 0, lint.stdout


def test_given_the_registry_when_linted_then_strategies_no_tenant_can_use_are_warnings(tmp_path: Path) -> None:
    registry = tmp_path / "tenants.yaml"
    registry.write_text("tenants:\n  - tenant_id: solo\n    status: active\n    owner: a@solo.example\n"
                        "    allowed_event_types: [plugin.job.completed]\n    allowed_plugins: [report-renderer]\n"
                        "  - tenant_id: gone\n    status: suspended\n    owner: b@gone.example\n"
                        "    allowed_event_types: ['*']\n    allowed_plugins: ['*']\n")
    linted = cli.invoke(app, ["strategy", "lint", str(REPO / "strategies"), "--tenants", str(registry),
                              "--format", "json"])
    assert linted.exit_code == 0  # warnings only
    import json

    found = {(f["source"].rsplit("/", 1)[-1], f["code"], f["severity"]) for f in json.loads(linted.stdout)}
    assert ("report-on-job-completed.yaml", "tenant.plugin_not_allowed", "warning") in found  # s3-archiver
    assert ("ticket-on-job-failed.yaml", "tenant.event_type_not_allowed", "warning") in found
    clean = cli.invoke(app, ["strategy", "lint", str(REPO / "strategies"), "--tenants", str(TENANTS)])
    assert clean.exit_code == 0 and "0 error(s), 0 warning(s)" in clean.stdout
    deployed = cli.invoke(app, ["strategy", "lint", "--tenants", "deployed"])
    assert deployed.exit_code == 2


def test_given_events_and_a_baseline_when_simulated_then_reasons_rejections_and_the_matrix(tmp_path: Path) -> None:
    import json

    def event(i: int, tenant: str = "acme", kind: str = "report", event_type: str = "plugin.job.completed") -> str:
        return json.dumps({"source": "powerx.plugins", "detail-type": event_type, "detail": {
            "tenant_id": tenant, "event_id": f"e{i}", "idempotency_key": f"k{i}", "occurred_at": "2026-11-28T10:00:00Z",
            "payload": {"job": {"id": str(i), "type": kind, "rows": 10}}}})

    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([event(1), event(2, kind="export"), event(3, kind="export"), event(4, "initech"),
                                 event(5, "nobody")]) + "\n")
    base = tmp_path / "base"
    base.mkdir()
    text = (REPO / "strategies" / "report-on-job-completed.yaml").read_text()
    (base / "r.yaml").write_text(text.replace("{path: $.payload.job.type, equals: report}",
                                              "{path: $.payload.job.type, in: [report, export]}"))
    ran = cli.invoke(app, ["strategy", "simulate", "--events", str(events), "--tenants", str(TENANTS),
                           "--baseline", str(base), "--format", "json"])
    assert ran.exit_code == 0, ran.output
    report = json.loads(ran.stdout)
    assert (report["events"], report["matched"], report["rejected"]) == (3, 1, 2)
    (group,) = report["unmatched_by_reason"]
    assert group["count"] == 2 and "$.payload.job.type equals 'report'" in group["reason"]
    assert [e["event_id"] for e in group["examples"]] == ["e2", "e3"]
    assert {g["code"]: g["count"] for g in report["rejected_by_code"]} == {"tenant.suspended": 1,
                                                                          "tenant.unknown": 1}
    cells = {(c["from"], c["to"]): c for c in report["matrix"]}
    assert cells[("report-on-job-completed@v3", "none")]["count"] == 2 and cells[("report-on-job-completed@v3",
                                                                                "none")]["changed"]
    assert cells[("report-on-job-completed@v3", "report-on-job-completed@v3")]["count"] == 1
    text_run = cli.invoke(app, ["strategy", "simulate", "--events", str(events), "--tenants", str(TENANTS),
                                "--baseline", str(base)])
    assert "report-on-job-completed@v3 → none: 2, e.g. line 2" in text_run.stdout
