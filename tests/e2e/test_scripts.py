"""scripts/agent-strategy-test and scripts/agent-replay: the seed's wrappers, run as a user runs them.

``strategy test --format json`` is checked against the contract CI pipelines rely on (the object of the
design's command-line section, reproduced in CONTRACT below as a JSON Schema).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema

REPO = Path(__file__).resolve().parents[2]
C1 = REPO / "tests" / "events" / "c1-plugin-job-completed.json"
C2 = REPO / "tests" / "events" / "c2-tenant-request-pending.json"
DAY = REPO / "tests" / "events" / "sample-day.jsonl"

_FAILED = {"type": ["object", "null"], "required": ["path", "op", "expected", "actual"]}
CONTRACT = {
    "type": "object",
    "required": ["decision", "variables", "taskflow"],
    "properties": {
        "decision": {
            "type": "object",
            "required": ["event_id", "tenant_id", "event_type", "library_revision", "selected", "candidates_total",
                         "near_misses", "others", "candidates"],
            "properties": {
                "event_id": {"type": "string"}, "tenant_id": {"type": "string"}, "event_type": {"type": "string"},
                "library_revision": {"type": "string"},
                "selected": {"oneOf": [{"type": "null"}, {"type": "object",
                                                           "required": ["strategy_id", "version", "weight"]}]},
                "candidates_total": {"type": "integer", "minimum": 0},
                "near_misses": {"type": "array", "maxItems": 3, "items": {
                    "type": "object", "required": ["strategy_id", "version", "reason", "failed"]}},
                "others": {"type": "object", "additionalProperties": {"type": "integer"}},
                "candidates": {"type": "array", "items": {
                    "type": "object", "required": ["strategy_id", "version", "matched", "failed"],
                    "properties": {"matched": {"type": "boolean"}, "failed": _FAILED}}},
            },
        },
        "variables": {"type": "object"},
        "taskflow": {"type": ["object", "null"]},
        "definition": {"type": "object", "required": ["StartAt", "States"]},
    },
}


def script(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / "scripts" / name), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_given_c1_when_strategy_test_script_prints_json_then_it_is_the_contract_object_with_the_asl():
    done = script("agent-strategy-test", "--event", str(C1), "--format", "json", "--asl")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    jsonschema.validate(out, CONTRACT)
    assert out["decision"]["selected"]["strategy_id"] == "report-on-job-completed"
    assert "definition" in out


def test_given_an_unmatched_event_when_tested_then_selected_is_null_and_the_contract_holds():
    done = script("agent-strategy-test", "test", "--event", str(C2), "--format", "json")
    out = json.loads(done.stdout)
    jsonschema.validate(out, CONTRACT)
    assert out["decision"]["selected"] is None and "definition" not in out


def test_given_the_strategy_wrapper_when_asked_to_simulate_then_it_runs_strategy_simulate():
    done = script("agent-strategy-test", "simulate", "--events", str(DAY), "--format", "json")
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["events"] == 2 and 0 < out["hit_rate"] < 1


def test_given_bad_arguments_when_the_wrappers_run_then_usage_errors_exit_2():
    assert script("agent-strategy-test", "--no-such-option").returncode == 2
    assert script("agent-strategy-test", "--event", "missing.json").returncode == 2
    assert script("agent-replay").returncode == 2  # neither --file nor --archive


def test_given_the_embedded_runtime_when_replay_script_dry_runs_a_file_then_it_lists_the_events(runtime):
    env = {**runtime.environment}
    done = script("agent-replay", "--file", str(DAY), "--dry-run", "--format", "json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout)
    assert out["summary"]["dry_run"] is True and out["invalid"] == []
    assert [e["event_id"] for e in out["events"]] == ["evt-c1", "evt-c2"]
