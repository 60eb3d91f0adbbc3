"""``powerx-agent tenants`` on the embedded runtime: apply (diff first, validated whole, audited),
list, show, disable; what ingest then accepts or refuses; an apply that fails half-way leaves nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.ops import tenants as ops
from tests.integration.helpers import chain_kinds, detail, send

runner = CliRunner()


class NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def tenant(tid: str, **fields) -> dict:
    return {"tenant_id": tid, "status": "active", "name": f"Tenant {tid}", "owner": f"ops@{tid}.example",
            "notify": [f"ops@{tid}.example"], "allowed_event_types": ["tenant.request.pending"],
            "allowed_plugins": [], "idempotency_ttl_hours": 24, **fields}


def registry(tmp_path: Path, *tenants: dict, name: str = "tenants.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.dump({"tenants": list(tenants)}, Dumper=NoAliases, sort_keys=False))
    return path


def cli(rt, *args: str):
    return runner.invoke(app, ["--endpoint-url", f"http://127.0.0.1:{rt.port}", "tenants", *args])


def audit_of(tid: str) -> list[dict]:
    return [r for r in get_deps().audit.chain(ops.TENANTS_CHAIN) if r.get("tenant_id") == tid]


def test_given_a_new_tenant_when_applied_dry_then_the_diff_shows_and_nothing_is_written(rt, uid, tmp_path):
    tid = f"t-{uid}"
    out = cli(rt, "apply", str(registry(tmp_path, tenant(tid))), "--dry-run")

    assert out.exit_code == 0, out.output
    assert f"+ {tid}" in out.output and "1 to create, 0 to change" in out.output
    assert "dry run: nothing written" in out.output
    assert get_deps().tenants.read(tid) is None and audit_of(tid) == []


def test_given_a_registry_file_when_applied_then_tenants_are_written_audited_and_ingest_accepts_them(rt, uid, tmp_path):
    tid = f"t-{uid}"
    first = cli(rt, "apply", str(registry(tmp_path, tenant(tid))), "--by", "alice")
    assert first.exit_code == 0, first.output
    assert "applied: 1 tenant(s) written in 1 transaction(s)" in first.output
    stored = get_deps().tenants.read(tid)
    assert (stored["revision"], stored["updated_by"], stored["status"]) == (1, "alice", "active")
    (created,) = audit_of(tid)
    assert created["kind"] == "tenant.created" and created["data"]["by"] == "alice"

    again = cli(rt, "apply", str(registry(tmp_path, tenant(tid))))
    assert again.exit_code == 0 and "nothing to change" in again.output and len(audit_of(tid)) == 1

    changed = cli(rt, "apply", str(registry(tmp_path, tenant(tid, name="Renamed"))), "--by", "bob",
                  "--format", "json")
    assert changed.exit_code == 0, changed.output
    result = json.loads(changed.output)
    assert result["update"] == 1 and result["changes"][0]["fields"] == {"name": [f"Tenant {tid}", "Renamed"]}
    assert get_deps().tenants.read(tid)["revision"] == 2
    assert [r["kind"] for r in audit_of(tid)] == ["tenant.created", "tenant.changed"]

    body = detail(uid, tenant=tid, request={"id": uid, "kind": "quota-increase"})
    send(rt, "tenant.request.pending", body, source="powerx.tenants")
    assert get_deps().events.get(tid, body["idempotency_key"]) is not None  # accepted, not tenant.unknown

    listed = json.loads(cli(rt, "list", "--format", "json").output)
    assert any(t["tenant_id"] == tid and t["name"] == "Renamed" for t in listed)
    shown = cli(rt, "show", tid)
    assert shown.exit_code == 0 and "tenant.changed" in shown.output and "by bob" in shown.output


def test_given_a_tenant_when_disabled_then_its_events_are_refused_and_the_change_is_audited(rt, uid, tmp_path):
    tid = f"t-{uid}"
    assert cli(rt, "apply", str(registry(tmp_path, tenant(tid)))).exit_code == 0

    out = cli(rt, "disable", tid, "--by", "carol", "--reason", "contract ended")
    assert out.exit_code == 0, out.output
    assert f"{tid}: active → disabled" in out.output
    assert cli(rt, "disable", tid).output.strip().endswith("nothing changed")
    last = audit_of(tid)[-1]
    assert (last["kind"], last["data"]["reason"], last["data"]["by"]) == ("tenant.disabled", "contract ended", "carol")

    body = detail(uid, tenant=tid, request={"id": uid, "kind": "quota-increase"})
    send(rt, "tenant.request.pending", body, source="powerx.tenants")
    workflow_id = workflow_id_for(tid, body["idempotency_key"])
    rejected = [r for r in get_deps().audit.chain(f"WF#{workflow_id}") if r["kind"] == "event.rejected"]
    assert rejected and rejected[0]["data"]["code"] == "tenant.suspended"
    assert chain_kinds(workflow_id) == ["event.rejected"]


def test_given_an_invalid_file_when_applied_then_every_problem_is_listed_and_nothing_is_written(rt, uid, tmp_path):
    good, bad = f"t-{uid}", tenant(f"u-{uid}", owner="not-an-address", allowed_plugins=["../x"])
    out = cli(rt, "apply", str(registry(tmp_path, tenant(good), bad)))

    assert out.exit_code == 1, out.output
    assert "tenants.invalid" in out.output and "tenants[1].owner" in out.output
    assert "tenants[1].allowed_plugins" in out.output and "tenants.yaml:" in out.output
    assert "Traceback" not in out.output
    assert get_deps().tenants.read(good) is None


def test_given_an_unknown_tenant_when_shown_or_disabled_then_one_line_and_exit_1(rt, uid):
    for command in (["show", f"x-{uid}"], ["disable", f"x-{uid}"]):
        out = cli(rt, *command)
        assert out.exit_code == 1 and out.output.strip() == f"error: tenants.unknown: tenant 'x-{uid}' is not registered"


def test_given_write_n_of_m_fails_when_applied_then_the_transactions_already_committed_are_reverted(
        rt, uid, tmp_path, monkeypatch):
    monkeypatch.setattr(ops, "TENANTS_PER_TRANSACTION", 2)
    ids = [f"t{i}-{uid}" for i in range(4)]
    deps = get_deps()
    plan = ops.plan(deps, registry(tmp_path, *(tenant(t) for t in ids)))
    # someone else registers the third tenant after the plan was made: the second transaction must fail
    deps.tenants.put(tenant(ids[2], name="Theirs"))

    with pytest.raises(ops.TenantsError) as failed:
        ops.apply(deps, plan, "dave")

    assert failed.value.code == "tenants.not_applied"
    assert "nothing was changed; the 2 tenant(s) already written were reverted" in str(failed.value)
    assert [deps.tenants.read(t) for t in (ids[0], ids[1], ids[3])] == [None, None, None]
    assert deps.tenants.read(ids[2])["name"] == "Theirs"
    assert [r["kind"] for r in audit_of(ids[0])] == ["tenant.created", "tenant.reverted"]
    assert audit_of(ids[3]) == []


def test_given_a_tenant_changed_after_the_plan_when_applied_then_the_change_is_refused_not_overwritten(
        rt, uid, tmp_path):
    tid = f"t-{uid}"
    deps = get_deps()
    ops.apply(deps, ops.plan(deps, registry(tmp_path, tenant(tid))), "erin")
    plan = ops.plan(deps, registry(tmp_path, tenant(tid, name="Mine"), name="mine.yaml"))
    ops.disable(deps, tid, "frank", "meanwhile")

    with pytest.raises(ops.TenantsError, match="changed since it was read"):
        ops.apply(deps, plan, "erin")

    assert deps.tenants.read(tid)["status"] == "disabled" and deps.tenants.read(tid)["name"] == f"Tenant {tid}"
