"""Items written before the index keys were sharded are still found: a stack updated from the earlier
layout loses nothing (docs/write-path.md, "No hot key"). The earlier items are written here as the earlier
code wrote them (``gsi1pk = WF#<tenant>``, an audit record whose ``day`` is the bare day), beside items
of the current layout (sharded keys; audit records after the first of their chain in a minute carry no
``day`` at all), and both readers find both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from powerx_agent.adapters.audit_store import AuditStore
from powerx_agent.adapters.dynamo import to_item
from powerx_agent.audit.kinds import AuditKind
from powerx_agent.audit.records import AuditEntry, iso_at, record_hash, seal
from powerx_agent.audit.shards import TENANT_SHARDS, tenant_key
from powerx_agent.deps import get_deps
from powerx_agent.testing.fakes import FakeClock


def test_given_workflows_of_both_layouts_when_listed_by_tenant_then_both_are_found_newest_first(rt, uid):
    deps = get_deps()
    tenant = f"t-{uid}"
    now = datetime.now(UTC).timestamp()
    legacy = {"pk": f"WF#wf-old-{uid}", "sk": "META", "workflow_id": f"wf-old-{uid}", "tenant_id": tenant,
              "status": "SUCCEEDED", "created_at": round(now - 60, 3), "gsi1pk": f"WF#{tenant}",
              "gsi1sk": f"{now - 60:017.3f}#wf-old-{uid}"}
    rt.client("dynamodb").put_item(TableName=deps.settings.workflows_table, Item=to_item(legacy))
    fresh = [f"wf-new-{uid}-{i}" for i in range(3)]
    for workflow_id in fresh:
        assert deps.workflows.create({"workflow_id": workflow_id, "tenant_id": tenant}, ["a"])
    raw = rt.client("dynamodb").get_item(TableName=deps.settings.workflows_table,
                                         Key={"pk": {"S": f"WF#{fresh[0]}"}, "sk": {"S": "META"}})["Item"]
    assert raw["gsi1pk"]["S"] == tenant_key(tenant, fresh[0]) and raw["gsi1pk"]["S"].startswith(f"T#{tenant}#")
    assert len({tenant_key(tenant, w) for w in fresh}) > 1 or TENANT_SHARDS == 1  # spread over shards

    listed = [w["workflow_id"] for w in deps.workflows.list_workflows(tenant)]
    assert sorted(listed[:3]) == sorted(fresh) and listed[3] == f"wf-old-{uid}"
    assert len(deps.workflows.list_workflows(tenant, limit=2)) == 2


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
