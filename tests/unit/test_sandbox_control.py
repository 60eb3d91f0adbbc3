"""The sandbox's control routes: every change is checked first; a bad request is a 400 with a code and
changes nothing; the faults then shape the downstream answers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerx_agent.local import sandbox_control as control
from powerx_agent.local.sandbox import Sandbox


def _change(sandbox: Sandbox, route: str, body: object) -> tuple[int, dict]:
    return control.change(sandbox, f"/_sandbox/{route}", json.dumps(body).encode())


def test_given_fail_twice_when_the_plugin_is_called_then_two_500s_then_success():
    sandbox = Sandbox()
    status, state = _change(sandbox, "plugins/report-renderer", {"mode": "fail", "times": 2, "status": 500})
    assert status == 200 and state["plugins"]["report-renderer"]["remaining"] == 2
    answers = [sandbox._answer("/plugin/runtime/report-renderer/execute", {})[0] for _ in range(3)]
    assert answers == [500, 500, 200]


def test_given_down_and_up_when_notifications_are_called_then_503_then_202():
    sandbox = Sandbox()
    assert _change(sandbox, "services/notifications", {"state": "down"})[0] == 200
    assert sandbox._answer("/notifications/agent-task", {})[0] == 503
    assert _change(sandbox, "services/notifications", {"state": "up"})[0] == 200
    assert sandbox._answer("/notifications/agent-task", {})[0] == 202


def test_given_a_seed_when_flaky_is_set_twice_then_the_answers_repeat():
    runs = []
    for _ in range(2):
        sandbox = Sandbox()
        assert _change(sandbox, "plugins/archive", {"mode": "flaky", "rate": 0.5, "seed": 11})[0] == 200
        runs.append([sandbox._answer("/plugin/runtime/archive/execute", {})[0] for _ in range(20)])
    assert runs[0] == runs[1] and set(runs[0]) == {200, 503}


def test_given_reset_when_faults_were_set_then_everything_answers_normally():
    sandbox = Sandbox()
    _change(sandbox, "plugins/archive", {"mode": "down"})
    _change(sandbox, "services/ops", {"fail_times": 3})
    status, state = _change(sandbox, "reset", {})
    assert status == 200 and state["plugins"] == {} and state["service_failures"] == {}


@pytest.mark.parametrize(("route", "body", "code"), [
    ("plugins/archive", {"mode": "explode"}, "sandbox.bad_mode"),
    ("plugins/archive", {"mode": "fail", "times": 0}, "sandbox.bad_value"),
    ("plugins/archive", {"mode": "fail", "times": 2, "status": 200}, "sandbox.bad_value"),
    ("plugins/archive", {"mode": "fail", "times": True}, "sandbox.bad_value"),
    ("plugins/archive", {"mode": "flaky", "rate": 1.5}, "sandbox.bad_value"),
    ("plugins/archive", {"mode": "slow", "seconds": 1e9}, "sandbox.bad_value"),
    ("plugins/archive", {"mode": "async", "outcome": "maybe"}, "sandbox.bad_value"),
    ("plugins/archive", {"mode": "down", "times": 1}, "sandbox.unknown_field"),
    ("plugins/Archive", {"mode": "down"}, "sandbox.bad_plugin"),
    ("plugins/a..b", {"mode": "down"}, "sandbox.bad_plugin"),
    ("services/billing", {"state": "down"}, "sandbox.unknown_service"),
    ("services/ops", {"state": "sideways"}, "sandbox.bad_request"),
    ("services/ops", {"fail_times": -1}, "sandbox.bad_value"),
])
def test_given_a_bad_control_request_when_sent_then_400_with_its_code_and_nothing_changes(route, body, code):
    sandbox = Sandbox()
    before = sandbox.describe()
    status, answer = _change(sandbox, route, body)
    assert (status, answer["code"]) == (400, code)
    assert sandbox.describe() == before


def test_given_a_body_that_is_not_an_object_when_sent_then_400():
    sandbox = Sandbox()
    assert control.change(sandbox, "/_sandbox/plugins/x", b"[1]")[0] == 400
    assert control.change(sandbox, "/_sandbox/plugins/x", b"{nope")[0] == 400
    assert control.change(sandbox, "/_sandbox/elsewhere", b"{}")[0] == 404


@settings(max_examples=200, deadline=None)
@given(route=st.sampled_from(["plugins/archive", "services/ops", "services/notifications", "reset", "plugins/x"]),
       body=st.dictionaries(st.sampled_from(["mode", "times", "status", "rate", "seed", "seconds", "delay", "outcome",
                                             "state", "fail_times", "other"]),
                            st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
                                      st.sampled_from(["fail", "down", "up", "flaky", "slow", "async", "succeed"])),
                            max_size=4))
def test_given_any_control_body_when_sent_then_answered_200_or_a_coded_4xx_and_bounded(route, body):
    sandbox = Sandbox()
    status, answer = _change(sandbox, route, body)
    assert status in (200, 400, 404)
    if status != 200:
        assert answer["code"].startswith("sandbox.")
        return
    for behaviour in sandbox._plugins.values():  # whatever was accepted is within the documented bounds
        assert 400 <= behaviour.status <= 599 and 0 <= behaviour.rate <= 1 and 0 <= behaviour.delay <= 3600
        assert behaviour.remaining_failures == -1 or 0 <= behaviour.remaining_failures <= 10_000


def test_given_calls_when_read_then_the_last_n_with_their_keys():
    sandbox = Sandbox()
    sandbox._record("/plugin/runtime/a/execute", {"Idempotency-Key": "k1"}, {}, 200)
    sandbox._record("/plugin/runtime/b/execute", {"Idempotency-Key": "k2"}, {}, 500)
    status, answer = control.read(sandbox, "/_sandbox/calls?limit=1")
    assert status == 200 and answer["calls"] == [{"path": "/plugin/runtime/b/execute", "status": 500,
                                                  "at": answer["calls"][0]["at"], "idempotency_key": "k2"}]
    assert control.read(sandbox, "/_sandbox/calls?limit=0")[0] == 400
    assert control.read(sandbox, "/_sandbox/calls?limit=-1")[0] == 400
