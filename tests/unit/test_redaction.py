"""Redaction of sensitive keys and long strings for logs and decision records."""

from __future__ import annotations

import pytest

from powerx_agent.redaction import MASK, RedactionPolicy, redact
from powerx_agent.strategy.decision import redact_actual
from powerx_agent.strategy.paths import MISSING


@pytest.mark.parametrize("key", ["password", "DB_PASSWORD", "secret", "clientSecret", "token", "access_token",
                                 "Authorization", "apikey", "api_key", "API-KEY", "credentials", "ssn",
                                 "card_number", "email", "contactEmail", "phone", "passwd"])
def test_given_sensitive_key_when_redacted_then_value_is_masked(key: str) -> None:
    assert redact({key: "value", "keep": 1}) == {key: MASK, "keep": 1}


def test_given_sensitive_key_with_object_value_when_redacted_then_whole_object_is_masked() -> None:
    assert redact({"credentials": {"user": "u", "pw": "p"}}) == {"credentials": MASK}


def test_given_nested_structures_when_redacted_then_redaction_applies_at_every_level() -> None:
    value = {"a": [{"token": "t", "x": "y"}], "b": {"c": {"email": "e@x"}}}
    assert redact(value) == {"a": [{"token": MASK, "x": "y"}], "b": {"c": {"email": MASK}}}


def test_given_input_when_redacted_then_input_is_not_mutated() -> None:
    value = {"token": "t", "list": [{"password": "p"}]}
    redact(value)
    assert value == {"token": "t", "list": [{"password": "p"}]}


def test_given_long_string_when_redacted_then_truncated_with_marker() -> None:
    out = redact("x" * 300)
    assert out == "x" * 256 + "…[truncated 44 chars]"
    assert redact("x" * 256) == "x" * 256


def test_given_non_string_scalars_when_redacted_then_kept() -> None:
    assert redact([1, 2.5, True, None]) == [1, 2.5, True, None]


def test_given_very_deep_value_when_redacted_then_cut_without_recursion_error() -> None:
    value: object = "leaf"
    for _ in range(5000):
        value = [value]
    out = redact(value)
    depth = 0
    while isinstance(out, list):
        out = out[0]
        depth += 1
    assert out == "<too deep>" and depth == 32


def test_given_long_list_when_redacted_then_capped_with_marker() -> None:
    out = redact(list(range(1005)))
    assert out[:1000] == list(range(1000)) and out[1000] == "…[5 more items]"


def test_given_custom_policy_when_redacted_then_extra_keys_masked() -> None:
    policy = RedactionPolicy.with_extra_keys("iban")
    assert redact({"IBAN": "DE00", "password": "p", "x": 1}, policy) == {"IBAN": MASK, "password": MASK, "x": 1}


@pytest.mark.parametrize("path,value,expected", [
    ("$.payload.credentials.user", "bob", MASK),
    ("$.payload.user.email", "a@b", MASK),
    ("$['api-key']", "k", MASK),
    ("$.payload.job.rows", 5, 5),
    ("$.payload.job", {"id": 1, "token": "t"}, {"id": 1, "token": MASK}),
    ("$.payload.job.name", "n" * 300, "n" * 256 + "…[truncated 44 chars]"),
    ("$.payload.token", MISSING, "<missing>"),
    ("$.payload.x", "<missing>", "<missing>"),
])
def test_given_decision_actual_when_redact_actual_then_sensitive_paths_masked(path, value, expected) -> None:
    assert redact_actual(path, value) == expected
