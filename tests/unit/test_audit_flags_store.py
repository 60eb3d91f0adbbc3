"""Feature flags off AWS: the embedded runtime's store, the document check, and the store that
keeps a function up when flags cannot be read (the AppConfig side is proven against AppConfig's
documented behaviour in tests/infrastructure/test_flags_appconfig.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from aws_lambda_powertools.utilities.feature_flags.exceptions import ConfigurationStoreError

from powerx_agent import spec
from powerx_agent.adapters.flags import (
    DynamoFlagWriter,
    Flags,
    FlagStoreError,
    ResilientStore,
    parse_document,
    validate_document,
)
from powerx_agent.errors import AgentError
from powerx_agent.ops.flags import set_flag, show
from powerx_agent.testing.fakes import FakeDeps


class Strategies:
    def __init__(self, flags=None) -> None:
        self.flags_ = flags

    def flags(self):
        return self.flags_

    def put_flags(self, flags):
        self.flags_ = flags


class Store:
    """A Powertools StoreProvider answering from a list of outcomes (a document or an exception)."""

    def __init__(self, *outcomes) -> None:
        self.outcomes = list(outcomes)
        self.reads = 0

    def get_configuration(self):
        self.reads += 1
        outcome = self.outcomes[min(self.reads, len(self.outcomes)) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    get_raw_configuration = property(get_configuration)


def test_given_dynamo_store_when_shown_then_unset_flags_default_on():
    rows = {row["name"]: row["on"] for row in show(None, store=DynamoFlagWriter(
        Strategies({"agent-orchestrator": {"default": False}})))}
    assert rows == {"agent-orchestrator": False, "agent-strategy-library": True, "audit-streaming": True}


def test_given_unknown_flag_when_set_then_refused_before_anything_is_written():
    deps = SimpleNamespace(audit=SimpleNamespace(entries=[]))
    with pytest.raises(AgentError, match="unknown feature flag"):
        set_flag(deps, "no-such-flag", True, "bob", store=DynamoFlagWriter(None))
    assert deps.audit.entries == []


@pytest.mark.parametrize("document, reason", [
    ({"audit-streaming": {"enabled": True}}, "Powertools' feature-flag schema"),  # AppConfig's retrieved form
    ({"version": "1", "flags": {}, "values": {}}, "Powertools' feature-flag schema"),  # AppConfig's stored form
    ({"audit-streaming": {"default": "yes", "boolean_type": False}}, "must be true or false"),
    (["audit-streaming"], "not a JSON object"),
])
def test_given_a_document_not_in_powertools_schema_when_validated_then_refused_with_the_reason(document, reason):
    with pytest.raises(FlagStoreError, match=reason):
        validate_document(document)


def test_given_a_document_of_another_content_type_or_not_json_then_refused():
    with pytest.raises(FlagStoreError, match="content type 'application/x-yaml'"):
        parse_document(b"a: 1", "application/x-yaml")
    with pytest.raises(FlagStoreError, match="not JSON"):
        parse_document(b"{", "application/json")
    assert parse_document(json.dumps(spec.feature_flags_document()).encode(), "application/json; charset=utf-8")


def test_given_flags_written_to_the_dynamo_store_then_the_document_is_checked_first():
    strategies = Strategies()
    with pytest.raises(FlagStoreError):
        DynamoFlagWriter(strategies).write({"audit-streaming": {"enabled": False}}, "bad")
    assert strategies.flags_ is None


def test_given_a_store_that_fails_from_the_start_when_flags_are_read_then_defaults_serve_and_the_failure_counts():
    store = Store(ConfigurationStoreError("AppConfig unreachable"))
    flags = Flags(ResilientStore(lambda: store))

    assert all(flags.enabled(name) for name in spec.FEATURE_FLAGS)
    assert flags.take_store_errors() == 1
    assert flags.take_store_errors() == 0


def test_given_a_good_read_then_a_bad_document_then_the_last_good_flags_serve_until_the_store_recovers():
    off = {**spec.feature_flags_document(), "agent-orchestrator": {"default": False}}
    store = Store(off, {"agent-orchestrator": {"enabled": True}}, off)
    now = [0.0]
    flags = Flags(ResilientStore(lambda: store, retry_after=10, clock=lambda: now[0]))

    assert flags.enabled("agent-orchestrator") is False
    assert flags.enabled("agent-orchestrator") is False  # second read: the retrieved form, refused
    assert flags.take_store_errors() == 1
    assert flags.enabled("agent-orchestrator") is False and store.reads == 2  # not asked within retry_after
    now[0] = 11
    assert flags.enabled("agent-orchestrator") is False and store.reads == 3


def test_given_flag_reads_failed_during_an_invocation_then_the_handler_counts_them_in_one_metric(monkeypatch):
    from powerx_agent.handlers import _common

    deps = FakeDeps.create()
    deps.__dict__["flags"] = Flags(ResilientStore(lambda: Store(RuntimeError("boom"))))
    recorded = []
    metrics = SimpleNamespace(add=lambda name, value=1, *a, **k: recorded.append((name, value)), flush=lambda: None)
    monkeypatch.setattr(_common, "get_deps", lambda: deps)
    monkeypatch.setattr(deps, "metrics", lambda: metrics, raising=False)

    with _common.invocation() as (d, _):
        assert d.flags.enabled("audit-streaming") is True

    assert recorded == [(spec.METRICS["flag_store_errors"], 1)]
