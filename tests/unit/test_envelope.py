"""Envelope validation (docs/intake.md): every problem gets its own code and location."""

from __future__ import annotations

import pytest

from powerx_agent.errors import EventRejected
from powerx_agent.ingest.envelope import parse_event, payload_hash


def event(**detail_overrides):
    detail = {"tenant_id": "acme", "event_id": "evt-1", "idempotency_key": "job-1", "occurred_at": "2026-11-28T10:00:00Z",
              "context": {}, "payload": {"a": 1}}
    detail.update(detail_overrides)
    return {"source": "powerx.plugins", "detail-type": "plugin.job.completed", "detail": detail}


def test_given_valid_event_when_parsed_then_key_defaults_to_event_id():
    incoming = parse_event(event(idempotency_key=None))
    assert incoming.envelope.key == "evt-1"
    assert incoming.event_type == "plugin.job.completed"


@pytest.mark.parametrize(("overrides", "code", "where"), [
    ({"tenant_id": "Acme!"}, "envelope.invalid_field", "detail.tenant_id"),
    ({"event_id": ""}, "envelope.invalid_field", "detail.event_id"),
    ({"event_id": "x" * 129}, "envelope.invalid_field", "detail.event_id"),
    ({"occurred_at": "2026-11-28"}, "envelope.invalid_field", "detail.occurred_at"),
    ({"occurred_at": "2026-11-28T10:00:00"}, "envelope.invalid_field", "detail.occurred_at"),
    ({"payload": [1, 2]}, "envelope.invalid_field", "detail.payload"),
    ({"extra": True}, "envelope.unknown_field", "detail.extra"),
])
def test_given_bad_detail_when_parsed_then_specific_code_and_location(overrides, code, where):
    with pytest.raises(EventRejected) as caught:
        parse_event(event(**overrides))
    assert caught.value.code == code
    assert caught.value.where == where


def test_given_missing_tenant_when_parsed_then_missing_field():
    bad = event()
    del bad["detail"]["tenant_id"]
    with pytest.raises(EventRejected) as caught:
        parse_event(bad)
    assert (caught.value.code, caught.value.where) == ("envelope.missing_field", "detail.tenant_id")


@pytest.mark.parametrize(("bad", "code"), [
    ("not an object", "envelope.not_an_object"),
    ({"source": "s", "detail": {}}, "envelope.missing_field"),
    ({"source": "s", "detail-type": "x y", "detail": {}}, "envelope.invalid_field"),
    ({"source": "s", "detail-type": "t", "detail": "{not json"}, "envelope.invalid_json"),
    ({"source": "s", "detail-type": "t"}, "envelope.missing_field"),
])
def test_given_broken_event_shape_when_parsed_then_rejected_not_crashed(bad, code):
    with pytest.raises(EventRejected) as caught:
        parse_event(bad)
    assert caught.value.code == code


def test_given_event_over_256_kib_when_parsed_then_too_large():
    with pytest.raises(EventRejected) as caught:
        parse_event(event(payload={"blob": "x" * 262_144}))
    assert caught.value.code == "envelope.too_large"
    assert caught.value.details["bytes"] > 262_144


def test_given_same_payload_different_ids_and_trace_when_hashed_then_equal():
    a = parse_event(event(event_id="e1", context={"traceparent": "00-a"}))
    b = parse_event(event(event_id="e2", context={"traceparent": "00-b"}))
    c = parse_event(event(payload={"a": 2}))
    assert payload_hash(a.event_type, a.envelope) == payload_hash(b.event_type, b.envelope)
    assert payload_hash(a.event_type, a.envelope) != payload_hash(c.event_type, c.envelope)


@pytest.mark.parametrize(("field", "where"), [("tenant_id", "detail.tenant_id"), ("event_id", "detail.event_id"),
                                             ("idempotency_key", "detail.idempotency_key"), ("id", "id")])
def test_given_a_lone_surrogate_in_an_identifier_when_ingested_then_rejected_with_its_code_and_audited(field, where):
    from powerx_agent.ingest.service import Ingestor
    from powerx_agent.testing.fakes import FakeDeps

    deps = FakeDeps.create()
    bad = event() | {"id": "bus-\ud800"} if field == "id" else event(**{field: "\ud800"})
    result = Ingestor(deps, deps.metrics()).handle(bad).to_dict()
    assert (result["outcome"], result["code"], result["where"]) == ("rejected", "envelope.invalid_string", where)
    rejected = [r for r in deps.audit.scan_all() if r["kind"] == "event.rejected"]
    assert len(rejected) == 1 and "\ud800" not in str(rejected[0])
