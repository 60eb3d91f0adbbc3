"""Window bounds (`--since` / `--until`) are refused with a usage error for any text that is not a time,
whatever it is: never an exception of another kind."""

from __future__ import annotations

import pytest
import typer
from hypothesis import example, given, settings
from hypothesis import strategies as st

from powerx_agent.cli._common import check_statuses
from powerx_agent.ops.audit import normalise_since
from powerx_agent.status import EventStatus


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=40),
                 st.from_regex(r"\A[0-9]{1,30}(\.[0-9]{0,5})?[smhd]\Z"),
                 st.from_regex(r"\A[0-9]{1,6}-[0-9]{2}-[0-9]{2}(T[0-9:.]{0,15})?(Z|[+-][0-9]{2}:[0-9]{2})?\Z")))
@example("0001-01-01T00:00:00+05:00")
@example("9999-12-31T23:59:59-05:00")
@example("9" * 30 + "d")
def test_given_any_text_when_read_as_a_window_then_a_time_or_a_value_error(text):
    try:
        out = normalise_since(text)
    except ValueError as exc:
        assert str(exc).startswith(repr(text))
        return
    assert out is None if not text else out.endswith("Z") and out[4] == "-"


def test_given_a_duration_beyond_a_century_when_read_then_refused_before_any_arithmetic_overflows():
    with pytest.raises(ValueError, match="reaches back more than"):
        normalise_since("9" * 25 + "d")
    assert normalise_since("36500d")


def test_given_statuses_when_checked_then_any_case_and_commas_pass_and_an_unknown_one_is_named():
    check = check_statuses(tuple(EventStatus))
    assert check(None, ["completed", "DEFERRED,rejected"]) == ["completed", "DEFERRED,rejected"]
    assert check(None, None) is None
    with pytest.raises(typer.BadParameter, match="unknown status LOST: one of IN_PROGRESS"):
        check(None, ["completed,lost"])
