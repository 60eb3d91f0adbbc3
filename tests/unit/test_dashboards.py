"""docs/grafana/ and docs/datadog/: the twins of the CloudWatch dashboard, generated from infra/monitoring.py.

Checked: the committed files are what the generator writes (so they cannot drift from the alarms and
panels that are deployed); the Datadog board parses into Datadog's own dashboard models
(datadog-api-client, generated from Datadog's OpenAPI specification) with nothing left unparsed; both
boards show the same panels with the same targets; and every metric they name is one the code emits.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from datadog_api_client import Configuration
from datadog_api_client.model_utils import OpenApiModel, UnparsedObject, validate_and_convert_types
from datadog_api_client.v1.model.dashboard import Dashboard

from infra import dashboards, monitoring
from powerx_agent import spec

PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "powerx_agent"


def emitted_metric_keys() -> set[str]:
    """spec.METRICS keys the code writes: ``<recorder>.add(spec.METRICS[key], ...)`` (EMF) or inside a
    ``put_metric_data(...)`` call (the CLI's completeness figure)."""
    keys: set[str] = set()

    def key_of(node: ast.AST) -> str | None:
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "METRICS" and isinstance(node.slice, ast.Constant)):
            return str(node.slice.value)
        return None

    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            if node.func.attr == "add" and node.args and key_of(node.args[0]):
                keys.add(str(key_of(node.args[0])))
            elif node.func.attr == "put_metric_data":
                keys.update(k for k in (key_of(n) for n in ast.walk(node)) if k)
    return keys


def unparsed(value: object, path: str = "$") -> list[str]:
    if isinstance(value, UnparsedObject):
        return [path]
    found: list[str] = []
    if isinstance(value, OpenApiModel):
        if getattr(value, "_unparsed", False):
            found.append(path)
        for instance in getattr(value, "_composed_instances", None) or []:
            found += unparsed(instance, path)
        for key, child in value._data_store.items():
            found += unparsed(child, f"{path}.{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += unparsed(child, f"{path}[{i}]")
    return found


def test_given_the_generator_when_checked_then_the_committed_dashboards_are_what_it_writes():
    assert dashboards.main(["--check"]) == 0, "run: .venv/bin/python -m infra.dashboards"


def test_given_the_datadog_board_when_parsed_with_datadogs_models_then_nothing_is_left_unparsed():
    board = json.loads(dashboards.DATADOG.read_text())
    model = validate_and_convert_types(board, (Dashboard,), ["board"], True, True, Configuration())
    assert unparsed(model) == []
    kinds = [type(w.definition._composed_instances[0]).__name__ for w in model.widgets]
    assert set(kinds) == {"NoteWidgetDefinition", "TimeseriesWidgetDefinition", "ToplistWidgetDefinition"}
    # what Datadog would refuse but a lenient parser keeps as unparsed: an unknown layout, a bare request
    broken = {**board, "layout_type": "sideways"}
    assert unparsed(validate_and_convert_types(broken, (Dashboard,), ["b"], True, True, Configuration()))
    broken = {**board, "widgets": [{"definition": {"type": "timeseries", "requests": [{"queries": [{}]}]}}]}
    assert unparsed(validate_and_convert_types(broken, (Dashboard,), ["b"], True, True, Configuration()))


def test_given_both_boards_when_compared_then_same_panels_and_targets():
    grafana = json.loads(dashboards.GRAFANA.read_text())
    datadog = json.loads(dashboards.DATADOG.read_text())
    g_panels = {p["title"]: p for p in grafana["panels"] if p["type"] != "text"}
    d_panels = {w["definition"]["title"]: w["definition"] for w in datadog["widgets"] if "title" in w["definition"]}
    assert list(g_panels) == list(d_panels)
    expected = [p.title for p in monitoring.PANELS] + [
        f"Alarm: {a.name} ({a.symbol} {a.threshold:g})" for a in monitoring.ALARMS]
    assert list(g_panels)[:len(expected)] == expected
    for panel in monitoring.PANELS:
        steps = g_panels[panel.title]["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
        markers = d_panels[panel.title].get("markers", [])
        if panel.target:
            assert steps[-1]["value"] == panel.target.value
            assert markers == [{"value": f"y = {panel.target.value:g}", "display_type": "error dashed",
                                "label": panel.target.label}]
        else:
            assert steps == [] and markers == []
    for alarm in monitoring.ALARMS:
        title = f"Alarm: {alarm.name} ({alarm.symbol} {alarm.threshold:g})"
        assert g_panels[title]["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == alarm.threshold
        assert d_panels[title]["markers"][0]["value"] == f"y = {alarm.threshold:g}"
        assert [t["expression"] for t in g_panels[title]["targets"] if t["expression"]] == (
            [] if alarm.line.single else [alarm.line.expression])
        assert d_panels[title]["requests"][0]["formulas"][0]["formula"] == alarm.line.expression


def test_given_the_spec_targets_when_read_then_both_boards_carry_the_five_success_metrics():
    titles = {p.title: p for p in monitoring.PANELS}
    assert titles["Strategy hit rate"].target.value == 80
    assert titles["Generation latency p95"].target.value == 10_000
    assert titles["Automated success"].target.value == 95
    assert [line.label for line in titles["Automated success"].lines] == ["per workflow (%)", "per node (%)"]
    assert titles["Manual intervention rate"].target.value == 10
    assert titles["Audit completeness"].target.value == 100


def test_given_every_metric_the_boards_name_when_compared_with_the_code_then_the_code_emits_it():
    emitted = emitted_metric_keys()
    assert {"hit_rate", "latency", "escalations", "workflow_finished", "workflow_automated",
            "review_backlog", "library_errors", "audit_completeness"} <= emitted
    assert monitoring.metrics_used() <= emitted, monitoring.metrics_used() - emitted
    grafana = json.loads(dashboards.GRAFANA.read_text())
    named = {t["metricName"] for p in grafana["panels"] for t in p.get("targets", [])
             if t.get("namespace") == spec.NAMESPACE}
    assert named <= {spec.METRICS[k] for k in emitted}
    datadog = dashboards.DATADOG.read_text()
    for name in set(re.findall(r"(powerx\.agent\.[a-z0-9_.]+)\{", datadog)):
        key, _stat = dashboards.metric_of_datadog_name(name)
        assert key in emitted, name
    assert all(t["dimensions"] == {"service": ["powerx-agent"]} for p in grafana["panels"]
               for t in p.get("targets", []) if t.get("namespace") == spec.NAMESPACE)


def test_given_docs_operations_when_read_then_every_metric_alarm_and_panel_is_listed():
    text = (PACKAGE.parents[1] / "docs" / "operations.md").read_text()
    missing = [f"metric {m}" for m in spec.METRICS.values() if f"`{m}`" not in text]
    missing += [f"alarm {a.name}" for a in monitoring.ALARMS if f"`powerx-agent-{a.name}`" not in text]
    missing += [f"panel {p.title}" for p in monitoring.PANELS if f"| {p.title} |" not in text]
    assert not missing, missing
