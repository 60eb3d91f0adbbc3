"""The tenant registry file: one validation for the local seed and `tenants apply`, every problem at
once with its position, and a diff that says exactly what a write would change."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerx_agent.tenant_registry import MAX_TENANTS_PER_FILE, Tenant, TenantFileError, diff, load_tenants
from tests.conftest import REPO

GOOD = {"tenant_id": "acme", "status": "active", "name": "Acme", "owner": "o@acme.example",
        "notify": ["o@acme.example"], "allowed_event_types": ["plugin.job.completed"],
        "allowed_plugins": ["report-renderer"], "idempotency_ttl_hours": 24}


class NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def text(*tenants: dict) -> str:
    return yaml.dump({"tenants": list(tenants)}, Dumper=NoAliases, sort_keys=False)


def problems(source: str) -> list[str]:
    with pytest.raises(TenantFileError) as refused:
        load_tenants(source, "t.yaml")
    return refused.value.problems


def test_given_the_shipped_registry_when_loaded_then_every_tenant_is_valid():
    tenants = load_tenants((REPO / "config" / "tenants.yaml").read_bytes(), "config/tenants.yaml")
    assert [t.tenant_id for t in tenants] == ["acme", "globex", "initech"]


def test_given_several_bad_tenants_when_loaded_then_every_problem_is_reported_with_its_line():
    bad = text(GOOD, {**GOOD, "tenant_id": "Bad_Id", "owner": "nobody"}, {**GOOD, "color": "red"}, GOOD)
    found = problems(bad)
    assert any(p.startswith("t.yaml:") and "tenants[1].tenant_id" in p for p in found)
    assert any("tenants[1].owner" in p for p in found)
    assert any("tenants[2].color" in p and "Extra inputs" in p for p in found)
    assert any("tenants.duplicate" in p and "tenants[0]" in p for p in found)
    line = int(next(p for p in found if "tenants[1].tenant_id" in p).split(":")[1])
    assert bad.splitlines()[line - 1].strip().lstrip("- ").startswith("tenant_id: Bad_Id")


@pytest.mark.parametrize("field, value, reason", [
    ("notify", ["a@x.example", "a@x.example"], "repeats"),
    ("notify", [], "at least 1"),
    ("allowed_event_types", ["plugin job"], "not event types"),
    ("allowed_plugins", ["../etc"], "not plugin ids"),
    ("idempotency_ttl_hours", 0, "greater than 0"),
    ("idempotency_ttl_hours", 10_000, "less than or equal"),
    ("status", "paused", "'active', 'suspended' or 'disabled'"),
    ("name", True, "valid string"),
    ("idempotency_ttl_hours", "24", "valid number"),
])
def test_given_a_bad_field_when_loaded_then_refused_with_the_reason(field, value, reason):
    assert any(reason in p for p in problems(text({**GOOD, field: value})))


@pytest.mark.parametrize("source, code", [
    ("tenants: &a [1]\nother: *a\n", "yaml."),
    ("[1, 2]", "tenants.schema"),
    ("tenants: {}\n", "tenants.schema"),
    ("tenants: []\nextra: 1\n", "tenants.schema"),
    ("tenants: !!python/object:os.system []\n", "yaml."),
])
def test_given_a_file_that_is_not_a_registry_when_loaded_then_refused(source, code):
    assert any(code in p for p in problems(source))


def test_given_too_many_tenants_then_refused_before_validating_each():
    many = "tenants:\n" + "".join(f"  - {{tenant_id: t{i}}}\n" for i in range(MAX_TENANTS_PER_FILE + 1))
    (problem,) = problems(many)
    assert "tenants.too_many" in problem


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400) | st.text(max_size=400))
def test_given_any_bytes_when_loaded_then_tenants_or_a_file_error_and_nothing_else(raw):
    try:
        load_tenants(raw, "fuzz.yaml")
    except TenantFileError as exc:
        assert exc.problems and all(isinstance(p, str) for p in exc.problems)


def test_given_stored_items_when_diffed_then_create_update_unchanged_and_dropped_attributes():
    stored = {"acme": {**GOOD, "revision": 3, "updated_by": "x"},
              "globex": {**GOOD, "tenant_id": "globex", "name": "Globex", "legacy": "x", "revision": 1}}
    desired = [Tenant(**GOOD), Tenant(**{**GOOD, "tenant_id": "globex", "name": "Globex Corp"}),
               Tenant(**{**GOOD, "tenant_id": "new"})]

    changes = {c.tenant_id: c for c in diff(stored, desired)}

    assert changes["acme"].action == "unchanged" and changes["acme"].fields == {}
    assert changes["globex"].action == "update"
    assert changes["globex"].fields == {"name": ("Globex", "Globex Corp"), "legacy": ("x", None)}
    assert changes["new"].action == "create" and changes["new"].before is None
