"""Canary rollout, the pure parts: the share parser, the arm of an event (deterministic, replay-stable,
exactly one arm under concurrent matchers), the decision record, and the statistics behind
``strategy canary status`` and the automatic abort."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerx_agent.strategy.canary import (
    BUCKETS,
    Arm,
    CanaryPlan,
    Rules,
    arm_of,
    bucket,
    comparison,
    difference,
    parse_share,
    verdict,
    wilson,
)
from powerx_agent.strategy.evaluate import EventFacts, evaluate
from powerx_agent.strategy.library import build_library


def strategy(sid: str, version: int, event: str, weight: int, plugin: str = "report-renderer") -> tuple[str, str]:
    return f"{sid}@v{version}", f"""id: {sid}
version: {version}
status: approved
owner: owner@example.com
tenants: ["*"]
on: {{event: {event}}}
when: {{path: $.payload.kind, equals: go}}
weight: {weight}
flow:
  nodes:
    - {{id: act, plugin: {plugin}, input: {{v: {version}}}}}
"""


def canary_library(percent: float = 10.0):
    from powerx_agent.strategy.loader import load_strategy_text

    base = build_library([strategy("routed", 1, "t.covered", 5), strategy("other", 1, "t.covered", 1),
                          strategy("elsewhere", 1, "t.plain", 5)], "r7")
    canary, _ = load_strategy_text(strategy("routed", 2, "t.covered", 5, plugin="s3-archiver")[1], "routed@v2")
    assert canary is not None
    return base.with_canaries("r7+c1", [(CanaryPlan("routed", 2, 1, percent, "2026-12-04T00:00:00Z"), canary)])


def facts(key: str, event_type: str = "t.covered") -> EventFacts:
    return EventFacts(event_type=event_type, source="powerx.plugins", tenant_id="acme", event_id=f"e-{key}",
                      idempotency_key=key, detail={"tenant_id": "acme", "payload": {"kind": "go"}})


# -- share and arm ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "percent"), [("10%", 10.0), ("2.5%", 2.5), ("50", 50.0), (" 0.01% ", 0.01)])
def test_given_a_share_when_parsed_then_percent(text, percent):
    assert parse_share(text) == percent


@pytest.mark.parametrize("text", ["0%", "51%", "-5%", "10%%", "abc", "1e1", "", "0.001%", "nan", "1" * 40])
def test_given_a_bad_share_when_parsed_then_a_value_error_names_it(text):
    with pytest.raises(ValueError, match="canary share"):
        parse_share(text)


@given(st.text(max_size=60))
def test_given_any_text_when_parsed_as_a_share_then_a_percent_or_a_value_error(text):
    try:
        percent = parse_share(text)
    except ValueError:
        return
    assert 0 < percent <= 50


@given(st.text(min_size=1, max_size=80), st.floats(min_value=0.01, max_value=50))
def test_given_a_key_when_routed_twice_then_the_same_arm_and_bucket(key, percent):
    plan = CanaryPlan("s", 2, 1, round(percent, 2))
    first, again = arm_of(plan, key), arm_of(plan, key)
    assert first == again and 0 <= first["bucket"] < BUCKETS
    assert (first["arm"] == "canary") == (first["bucket"] < plan.threshold)
    assert first["version"] == (2 if first["arm"] == "canary" else 1)


@given(st.text(max_size=80), st.integers(min_value=1, max_value=10**6))
def test_given_a_replay_with_a_fresh_key_when_routed_then_the_arm_of_the_original(key, generation):
    plan = CanaryPlan("s", 2, 1, 37.5)
    assert arm_of(plan, f"{key}#replay-{generation}")["bucket"] == arm_of(plan, key)["bucket"]


def test_given_many_keys_when_bucketed_then_the_canary_share_is_close_to_the_percent():
    plan = CanaryPlan("s", 2, 1, 10.0)
    share = sum(arm_of(plan, f"key-{i}")["arm"] == "canary" for i in range(20_000)) / 20_000
    assert 0.09 < share < 0.11
    assert bucket("s", "k") != bucket("t", "k") or bucket("s", "k2") != bucket("t", "k2")  # per strategy


# -- routing through the library ------------------------------------------------------------------

def test_given_a_canary_when_events_are_evaluated_then_the_arm_decides_and_the_record_says_so():
    library = canary_library(30.0)
    arms = {"canary": 0, "baseline": 0}
    for i in range(300):
        found = evaluate(library, facts(f"k{i}"), {"owner": "o"})
        arm = found.decision.arm
        assert arm is not None and arm["strategy_id"] == "routed"
        assert found.selected is not None and found.selected.strategy.id == "routed"
        assert found.selected.strategy.version == (2 if arm["arm"] == "canary" else 1)
        record = found.decision.to_dict()
        assert record["arm"] == arm and record["library_revision"] == "r7+c1"
        assert f"{arm['arm']} arm of routed's canary" in found.decision.reason()
        arms[arm["arm"]] += 1
    assert arms["canary"] > 0 and arms["baseline"] > 0


def test_given_a_canary_when_an_event_type_it_does_not_cover_arrives_then_no_arm_and_the_baseline_index():
    library = canary_library()
    found = evaluate(library, facts("k1", "t.plain"), {})
    assert found.decision.arm is None and "arm" not in found.decision.to_dict()
    assert found.selected is not None and found.selected.strategy.id == "elsewhere"


def test_given_concurrent_matchers_when_they_decide_then_every_event_has_exactly_one_arm_and_one_decision():
    keys = [f"key-{i}" for i in range(2000)]
    expected = {k: arm_of(CanaryPlan("routed", 2, 1, 25.0), k)["arm"] for k in keys}
    library = canary_library(25.0)  # fresh: the canary index is built by whichever thread comes first
    start = threading.Barrier(8)

    def decide(chunk: list[str]) -> list[tuple[str, str, int]]:
        start.wait()
        out = []
        for key in chunk:
            found = evaluate(library, facts(key), {})
            assert found.decision.arm is not None and found.selected is not None
            out.append((key, found.decision.arm["arm"], found.selected.strategy.version))
        return out

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [row for rows in pool.map(decide, [keys[i::8] for i in range(8)]) for row in rows]
    assert sorted(k for k, _, _ in results) == sorted(keys)  # each event decided once, none missing
    assert {k: arm for k, arm, _ in results} == expected  # the same arm any matcher would give it
    assert all(version == (2 if arm == "canary" else 1) for _, arm, version in results)


# -- statistics ------------------------------------------------------------------------------------

@given(st.integers(min_value=1, max_value=5000), st.data())
@settings(max_examples=200)
def test_given_counts_when_a_wilson_interval_is_computed_then_it_holds_the_rate_inside_zero_one(n, data):
    x = data.draw(st.integers(min_value=0, max_value=n))
    low, high = wilson(x, n)
    assert 0 <= low <= x / n <= high <= 1


@given(st.integers(min_value=1, max_value=2000), st.integers(min_value=1, max_value=2000), st.data())
@settings(max_examples=200)
def test_given_two_arms_when_differenced_then_the_interval_holds_the_difference(n1, n2, data):
    x1 = data.draw(st.integers(min_value=0, max_value=n1))
    x2 = data.draw(st.integers(min_value=0, max_value=n2))
    d, low, high = difference(x1, n1, x2, n2)
    assert -1 <= low <= d <= high <= 1


def arm(decisions: int, failed: int, succeeded: int, escalated: int = 0) -> Arm:
    return Arm(decisions=decisions, matched=decisions, started=failed + succeeded, succeeded=succeeded,
               failed=failed, escalated=escalated)


def test_given_a_failing_canary_with_enough_events_when_judged_then_aborted_with_why():
    stop, why = verdict(arm(60, 30, 30), arm(600, 6, 594), Rules(margin=0.05, min_events=50))
    assert stop and "failure rate 30/60" in why and "margin" in why


def test_given_a_failing_canary_with_too_few_events_when_judged_then_not_yet():
    stop, why = verdict(arm(20, 10, 10), arm(600, 6, 594), Rules(margin=0.05, min_events=50))
    assert not stop and "50 needed" in why


def test_given_a_canary_slightly_worse_within_noise_when_judged_then_not_aborted():
    stop, _ = verdict(arm(100, 4, 96), arm(900, 18, 882), Rules(margin=0.05, min_events=50))
    assert not stop


def test_given_an_escalating_canary_when_judged_then_aborted_on_the_escalation_rate():
    stop, why = verdict(arm(80, 0, 80, escalated=40), arm(800, 0, 800, escalated=8), Rules(0.05, 50))
    assert stop and why.startswith("escalation rate")


def test_given_arms_when_compared_then_every_rate_has_counts_and_an_interval():
    found = comparison(arm(60, 30, 30), arm(600, 6, 594))
    assert found["canary"]["failure_rate"] == {"count": 30, "of": 60, "rate": 0.5,
                                               "ci95": found["canary"]["failure_rate"]["ci95"]}
    low, high = found["difference"]["failure_rate"]["ci95"]
    assert low > 0.3 and high < 0.65
    assert comparison(Arm(), Arm())["difference"]["hit_rate"] is None


@pytest.mark.parametrize("args", [["--canary", "0%"], ["--canary", "abc"], ["--canary", "60%"],
                                  ["--canary", "10%", "--abort-margin", "2"], ["--abort-margin", "0.1"],
                                  ["--canary", "10%", "--min-events", "0"]])
def test_given_bad_canary_arguments_when_approving_then_usage_error_before_anything_is_reached(args):
    from typer.testing import CliRunner

    from powerx_agent.cli.main import app

    out = CliRunner().invoke(app, ["strategy", "approve", "s", "--version", "2", "--approver", "a",
                                   "--reason", "r", *args])
    assert out.exit_code == 2 and "Invalid value" in out.output


def test_given_latencies_beyond_the_last_bound_when_compared_then_the_record_holds_no_infinity():
    import json

    slow = Arm(decisions=3, matched=3, started=3, latency_ms_sum=3e6)
    slow.latency[-1] = 3
    found = comparison(slow, Arm())
    assert found["canary"]["latency_ms"]["p95_at_most"] is None and found["canary"]["latency_ms"]["beyond"] == 60000
    json.dumps(found, allow_nan=False)  # what the audit record and DynamoDB accept
