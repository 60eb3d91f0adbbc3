"""Items written in an earlier layout are still found: a stack updated from it loses nothing and nothing is
migrated (docs/write-path.md, "No hot key"). The earlier items are written here as the earlier code wrote them
(a workflow's META indexed in ``gsi1`` under ``WF#<tenant>``, then under the sharded ``T#<tenant>#<nnn>``; an
audit record whose ``day`` is the bare day), beside items of the current layout (META in the keys-only
``by_tenant`` index; audit records after the first of their chain in a minute carry no ``day`` at all), and
the readers find all of them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from powerx_agent.adapters.audit_store import AuditStore
from powerx_agent.adapters.dynamo import to_item
from powerx_agent.audit.kinds import AuditKind
from powerx_agent.audit.records import AuditEntry, iso_at, record_hash, seal
from powerx_agent.audit.shards import TENANT_SHARDS, tenant_key
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.local.meter import Meter
from powerx_agent.testing.fakes import FakeClock


def _earlier_meta(workflow_id: str, tenant: str, created_at: float, index_key: str) -> dict:
    """META as the code before the by_tenant index wrote it: indexed in gsi1 (all attributes), no tpk/tsk."""
    return {"pk": f"WF#{workflow_id}", "sk": "META", "workflow_id": workflow_id, "tenant_id": tenant,
            "status": "SUCCEEDED", "created_at": round(created_at, 3), "node_ids": ["a"], "gsi1pk": index_key,
            "gsi1sk": f"{created_at:017.3f}#{workflow_id}"}


def test_given_workflows_of_every_layout_when_listed_by_tenant_then_all_are_found_newest_first(rt, uid):
    deps = get_deps()
    tenant = f"t-{uid}"
    now = datetime.now(UTC).timestamp()
    unsharded, sharded = f"wf-unsharded-{uid}", f"wf-sharded-{uid}"
    for item in (_earlier_meta(unsharded, tenant, now - 60, f"WF#{tenant}"),
                 _earlier_meta(sharded, tenant, now - 30, tenant_key(tenant, sharded))):
        rt.client("dynamodb").put_item(TableName=deps.settings.workflows_table, Item=to_item(item))
    fresh = [f"wf-new-{uid}-{i}" for i in range(3)]
    for workflow_id in fresh:
        assert deps.workflows.create({"workflow_id": workflow_id, "tenant_id": tenant}, ["a"])
    raw = rt.client("dynamodb").get_item(TableName=deps.settings.workflows_table,
                                         Key={"pk": {"S": f"WF#{fresh[0]}"}, "sk": {"S": "META"}})["Item"]
    assert raw["tpk"]["S"] == tenant_key(tenant, fresh[0]) and raw["tpk"]["S"].startswith(f"T#{tenant}#")
    assert "gsi1pk" not in raw and "gsi1sk" not in raw  # a new META is not in gsi1
    assert len({tenant_key(tenant, w) for w in fresh}) > 1 or TENANT_SHARDS == 1  # spread over shards
    deps.workflows.transition_workflow(fresh[1], "RUNNING")

    listed = deps.workflows.list_workflows(tenant)
    assert [w["workflow_id"] for w in listed] == [*reversed(fresh), sharded, unsharded]
    assert {w["workflow_id"]: w["status"] for w in listed}[fresh[1]] == "RUNNING"  # the whole META, read back
    assert listed[0]["node_ids"] == ["a"] and listed[-1]["node_ids"] == ["a"]
    assert [w["workflow_id"] for w in deps.workflows.list_workflows(tenant, limit=4)] == [*reversed(fresh), sharded]
    assert [w["workflow_id"] for w in deps.workflows.list_workflows(tenant, since=now - 45)] == [*reversed(fresh),
                                                                                                 sharded]
    assert [w["workflow_id"] for w in deps.workflows.list_workflows(tenant, limit=2)] == [fresh[2], fresh[1]]

    out = CliRunner().invoke(app, ["workflow", "list", "--tenant", tenant, "--since", iso_at(now - 45),
                                   "--format", "json"])
    assert out.exit_code == 0, out.output
    assert [r["workflow_id"] for r in json.loads(out.stdout)] == [*reversed(fresh), sharded]


def test_given_a_new_workflow_when_its_meta_changes_status_then_only_its_creation_writes_the_tenant_index(rt, uid):
    deps = get_deps()
    tenant, workflow_id = f"t-{uid}", f"wf-{uid}"
    with Meter() as created:
        assert deps.workflows.create({"workflow_id": workflow_id, "tenant_id": tenant, "body": "x" * 1800}, ["a"])
    with Meter() as moved:
        assert deps.workflows.transition_workflow(workflow_id, "RUNNING")
        assert deps.workflows.transition_workflow(workflow_id, "SUCCEEDED", finished_at=1.0)

    def tenant_index_writes(meter: Meter) -> list[tuple[str, str, int, int]]:
        # this tenant's keys only: the shared runtime may still be finishing an earlier test's workflow
        return [(h.index, h.key, h.writes, h.units) for h in meter.heat.values()
                if h.table == deps.settings.workflows_table and h.key.startswith(f"T#{tenant}#")]

    # one entry of keys (1 unit) for the ~2 KB META
    assert tenant_index_writes(created) == [("by_tenant", tenant_key(tenant, workflow_id), 1, 1)]
    assert tenant_index_writes(moved) == []
    assert not [h for h in moved.heat.values() if h.index == "gsi1" and workflow_id in h.contributors]
    writes = [h for h in moved.heat.values() if h.index == "" and h.key == f"WF#{workflow_id}"]
    assert writes and writes[0].writes == 2  # the META updates themselves were metered


def test_given_audit_records_of_both_layouts_when_read_since_then_both_are_found_in_time_order(rt, uid):
    deps = get_deps()
    chain = f"OPS#test-{uid}"
    start = (datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)).timestamp()
    since = iso_at(start)
    # the earlier layout: every record indexed, the time index key the day itself
    old = seal(AuditEntry(AuditKind.FLAG_CHANGED, chain, data={"n": 1}), 1, "0" * 64, since)
    old["day"] = old["ts"][:10]
    old["hash"] = record_hash(old)
    rt.client("dynamodb").put_item(TableName=deps.settings.audit_table, Item=to_item(old))
    clock = FakeClock(iso_at(start + 1))
    writer = AuditStore(deps.ddb, deps.settings.audit_table, clock)
    same_minute = writer.append(AuditEntry(AuditKind.FLAG_CHANGED, chain, data={"n": 2}))
    clock.at = iso_at(start + 61)
    next_minute = writer.append(AuditEntry(AuditKind.FLAG_CHANGED, chain, data={"n": 3}))
    assert "day" not in same_minute and same_minute["seq"] == 2
    assert next_minute["day"].startswith(f"D#{next_minute['ts'][:10]}#") and next_minute["seq"] == 3

    found = [r for r in deps.audit.since(since) if r["pk"] == chain]
    assert [r["seq"] for r in found] == [1, 2, 3]
    assert [r.get("day") for r in found] == [old["day"], None, next_minute["day"]]
