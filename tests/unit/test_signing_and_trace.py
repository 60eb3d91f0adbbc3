"""Request signatures (HMAC, two keys, time window) and W3C trace context."""

from __future__ import annotations

import pytest

from powerx_agent.ingest.signing import SignatureError, sign, signed_headers, verify
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
