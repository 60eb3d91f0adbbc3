"""Request signatures (HMAC, two keys, time window) and W3C trace context."""

from __future__ import annotations

import pytest

from powerx_agent.adapters.secrets import callers_from
from powerx_agent.signing import (
    SignatureError,
    callback_url,
    sign,
    signed_headers,
    verify,
    verify_callback,
    verify_caller,
)
from powerx_agent.trace import child, continue_or_start

BODY = b'{"x":1}'


def test_given_current_or_previous_key_when_verified_then_accepted():
    for key in ("k-current", "k-previous"):
        verify(signed_headers(key, BODY, now=1000), BODY, ["k-current", "k-previous"], 300, now=1100)


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "signature.missing"),
    ({"X-PowerX-Timestamp": "abc", "X-PowerX-Signature": "v1=00"}, "signature.bad_timestamp"),
    # Unicode digits pass str.isdigit() but not int(); a 5,000-digit number is no timestamp either
    ({"X-PowerX-Timestamp": "\u00b2", "X-PowerX-Signature": "v1=00"}, "signature.bad_timestamp"),
    ({"X-PowerX-Timestamp": "\u0661\u0662", "X-PowerX-Signature": "v1=00"}, "signature.bad_timestamp"),
    ({"X-PowerX-Timestamp": "9" * 5000, "X-PowerX-Signature": "v1=00"}, "signature.bad_timestamp"),
    ({"X-PowerX-Timestamp": "1000", "X-PowerX-Signature": "v1=\u00e9" * 20}, "signature.invalid"),
    ({"X-PowerX-Timestamp": "1000", "X-PowerX-Signature": "v1=" + "0" * 63}, "signature.invalid"),
    (signed_headers("k", BODY, now=0), "signature.expired"),
    (signed_headers("other", BODY, now=1000), "signature.invalid"),
])
def test_given_bad_signature_when_verified_then_specific_code(headers, code):
    with pytest.raises(SignatureError) as caught:
        verify(headers, BODY, ["k"], 300, now=1000)
    assert caught.value.code == code


def test_given_body_changed_after_signing_when_verified_then_invalid():
    headers = signed_headers("k", BODY, now=1000)
    with pytest.raises(SignatureError):
        verify(headers, b'{"x":2}', ["k"], 300, now=1000)
    assert sign("k", "1000", BODY) == headers["X-PowerX-Signature"]


CALLERS = callers_from({"callers": {
    "operator": {"tenants": ["*"], "active": "k2", "k1": "op-old", "k2": "op-new"},
    "acme-backfill": {"tenants": ["acme"], "active": "k1", "k1": "acme-key"},
    "broken": {"tenants": "acme", "active": "k1", "k1": "x"},  # tenants not a list: not a caller
}})


def test_given_callers_when_verified_then_each_signs_with_its_own_keys_only():
    assert set(CALLERS) == {"operator", "acme-backfill"}
    assert CALLERS["operator"].keys == ("op-new", "op-old")  # active first
    for key in ("op-new", "op-old"):
        assert verify_caller(signed_headers(key, BODY, now=1000, caller="operator"), BODY, CALLERS, 300,
                             now=1000).caller_id == "operator"
    scoped = verify_caller(signed_headers("acme-key", BODY, now=1000, caller="acme-backfill"), BODY, CALLERS, 300,
                           now=1000)
    assert scoped.may_act_for("acme") and not scoped.may_act_for("globex")
    for key, caller, code in (("acme-key", "operator", "signature.invalid"), ("op-new", "acme-backfill",
                              "signature.invalid"), ("op-new", "nobody", "signature.unknown_caller"),
                              ("op-new", "../x", "signature.unknown_caller")):
        with pytest.raises(SignatureError) as caught:
            verify_caller(signed_headers(key, BODY, now=1000, caller=caller), BODY, CALLERS, 300, now=1000)
        assert caught.value.code == code


def _query(url: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(url).query))


def test_given_callback_url_when_verified_then_it_grants_its_own_id_until_it_expires():
    url = callback_url("https://api.example/v1/internal/agent/callbacks", "cb-key", "cb-" + "a" * 24, 2000)
    assert url.startswith("https://api.example/v1/internal/agent/callbacks?id=cb-")
    assert verify_callback(_query(url), ["other", "cb-key"], now=1999) == "cb-" + "a" * 24
    cases = {
        "expired": (_query(url), ["cb-key"], 2001, "signature.expired"),
        "other id": ({**_query(url), "id": "cb-" + "b" * 24}, ["cb-key"], 1000, "signature.invalid"),
        "later expiry": ({**_query(url), "expires": "9999"}, ["cb-key"], 1000, "signature.invalid"),
        "wrong key": (_query(url), ["replay-key"], 1000, "signature.invalid"),
        "no signature": ({"id": "cb-" + "a" * 24, "expires": "2000"}, ["cb-key"], 1000, "signature.missing"),
        "not an id": ({**_query(url), "id": "../x"}, ["cb-key"], 1000, "signature.invalid"),
        "unicode expiry": ({**_query(url), "expires": "\u00b2"}, ["cb-key"], 1000, "signature.bad_timestamp"),
    }
    for name, (query, keys, now, code) in cases.items():
        with pytest.raises(SignatureError) as caught:
            verify_callback(query, keys, now=now)
        assert caught.value.code == code, name


def test_given_the_two_purposes_when_signed_with_one_key_then_neither_message_passes_for_the_other():
    # a replay signature over "<timestamp>.<body>" is never a callback signature, whatever the body
    url = callback_url("https://x/cb", "k", "cb-" + "c" * 24, 2000)
    forged = {**_query(url), "signature": sign("k", "2000", ("cb-" + "c" * 24).encode())}
    with pytest.raises(SignatureError):
        verify_callback(forged, ["k"], now=1000)


def test_given_valid_traceparent_when_continued_then_same_trace_new_span():
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    out = continue_or_start(parent)
    assert out["continued"] == "true"
    assert out["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert out["traceparent"].split("-")[2] != "00f067aa0ba902b7"
    assert child(out["traceparent"]).split("-")[1] == out["trace_id"]


@pytest.mark.parametrize("bad", [None, "", "garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
                                 "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 42])
def test_given_missing_or_invalid_traceparent_when_continued_then_new_trace_started(bad):
    out = continue_or_start(bad)
    assert out["continued"] == "false"
    assert len(out["trace_id"]) == 32 and out["traceparent"].startswith("00-")
