"""The cost model: documented DynamoDB item sizes, prices applied per unit, the anchor's arithmetic,
the heat report's scaling rules (shared keys grow with the rate, a workflow's own keys do not)."""

from __future__ import annotations

import pytest

from powerx_agent.audit.shards import (
    TENANT_SHARDS,
    TIME_SHARDS,
    shard_family,
    shard_of,
    tenant_key,
    time_key,
)
from powerx_agent.local.meter import KeyHeat, Meter, heat_report, item_size, read_units, write_units
from powerx_agent.ops import cost


def test_given_the_documented_size_rules_when_sizing_items_then_names_values_and_overheads_count() -> None:
    # strings: name + UTF-8 bytes; numbers: name + 1 byte per two significant digits + 1
    assert item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert item_size({"n": {"N": "12345"}}) == 1 + 3 + 1
    assert item_size({"n": {"N": "0.0100"}}) == 1 + 1 + 1  # leading and trailing zeroes trimmed
    assert item_size({"b": {"BOOL": True}, "z": {"NULL": True}}) == 2 + 2
    # a map: 3 bytes + per element 1 byte + name + value
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + 1 + 1 + 1
    assert item_size({"l": {"L": [{"S": "é"}]}}) == 1 + 3 + 1 + 2


def test_given_sizes_when_counting_units_then_writes_round_up_per_kb_and_reads_per_4kb() -> None:
    assert write_units(1) == 1 and write_units(1024) == 1 and write_units(1025) == 2
    assert read_units(100, consistent=True) == 1.0 and read_units(100, consistent=False) == 0.5
    assert read_units(4097, consistent=False) == 1.0


def _meter_with(*heats: KeyHeat) -> Meter:
    meter = Meter()
    for heat in heats:
        meter.heat[(heat.table, heat.index, heat.key)] = heat
    return meter


def test_given_a_shared_key_and_a_workflow_key_when_scaling_then_only_the_shared_one_grows_with_the_rate() -> None:
    shared = KeyHeat("agent_audit", "by_time", "2026-12-04", units=110, writes=110, contributors={"a", "b"})
    own = KeyHeat("agent_audit", "", "WF#wf-1", units=11, writes=11, contributors={"wf-1"})
    rows = {r["key"]: r for r in heat_report(_meter_with(shared, own), events=10, seconds=5, target_rate=2000)}
    assert rows["2026-12-04"]["at_target"] == 22_000.0  # 11 units per event × 2,000 events/s
    assert rows["WF#wf-1"]["at_target"] == 11.0  # all of one workflow's writes within one second at worst


def test_given_sharded_keys_when_scaling_then_the_family_load_is_spread_over_its_shards() -> None:
    heats = [KeyHeat("agent_audit", "by_time", time_key("2026-12-04", f"wf-{i}"), units=1, writes=1,
                     contributors={f"wf-{i}"}) for i in range(100)]
    merged: dict[str, KeyHeat] = {}
    for heat in heats:
        found = merged.setdefault(heat.key, KeyHeat(heat.table, heat.index, heat.key))
        found.units += 1
        found.contributors |= heat.contributors
    rows = heat_report(_meter_with(*merged.values()), events=100, seconds=10, target_rate=2000,
                       shards=shard_family)
    assert len(rows) == 1 and rows[0]["shards"] == TIME_SHARDS
    assert rows[0]["at_target"] == pytest.approx(2000 / TIME_SHARDS, rel=0.01)


def test_given_many_owners_when_sharding_then_every_shard_gets_a_fair_share() -> None:
    counts = [0] * TENANT_SHARDS
    for i in range(1000 * TENANT_SHARDS):
        counts[shard_of(f"wf-acme-{i:024x}", TENANT_SHARDS)] += 1
    assert max(counts) < 1.12 * 1000 and min(counts) > 0.88 * 1000
    assert shard_family("agent_workflows", "gsi1", tenant_key("acme", "wf-1")) == ("T#acme", TENANT_SHARDS)
    assert shard_family("agent_audit", "", "T#acme#007") is None  # a table key is never a shard
    assert shard_family("agent_audit", "by_time", "2026-12-04") is None  # nor a key written before sharding


def test_given_the_anchor_when_billing_then_each_line_is_count_times_list_price() -> None:
    a = cost.Assumptions()
    bill = cost.anchor_bill(a, memory_mb=512)
    lines = {line.item: line.per_million for line in bill.lines}
    assert lines["events put on the bus"] == pytest.approx(1.00)
    assert lines["task: requests"] == pytest.approx(0.60)
    assert lines["task: 115 ms at 512 MB"] == pytest.approx(3 * 0.115 * 0.5 * 0.0000166667 * 1e6)
    assert lines["Express executions"] == pytest.approx(1.00)
    # render then (archive ∥ notify): 230 ms + 4 states × 30 ms, rounded up to 100 ms → 0.4 s at 64 MB
    assert lines["Express duration (0.4 s at 64 MB)"] == pytest.approx(0.4 * 64 / 1024 * 0.06 / 3600 * 1e6)


def test_given_a_profile_when_billing_the_product_then_units_transitions_and_bytes_are_priced() -> None:
    profile = {"requests": {"sqs:SendMessage": 1.0}, "wru": 10.0, "index_wru": 3.0, "rru": 0.0,
               "lambda": {"powerx-agent-matcher": {"invocations": 0.1}}, "log_bytes": 2000.0,
               "sfn": {"standard_transitions": 7.0}}
    bill = cost.product_bill(profile, cost.Assumptions(), {"matcher": 1024})
    by = bill.by_service()
    assert by["DynamoDB"] == pytest.approx(13 * 0.625)
    assert by["Step Functions"] == pytest.approx(7 * 25.0)
    assert by["SQS"] == pytest.approx((1.0 + 2 * 0.1) * 0.40)
    comparison = cost.compare(bill, cost.anchor_bill())
    assert comparison["ratio"] == pytest.approx(bill.total / cost.anchor_bill().total, abs=0.01)


def test_every_price_names_its_source_page() -> None:
    for key, price in cost.PRICES.items():
        assert price.source.startswith("https://"), key
    assert "2026" in cost.PRICES_CHECKED


def test_the_price_table_in_the_docs_is_the_one_the_model_uses() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "cost.md").read_text()
    start = text.index("<!-- price table: generated")
    start = text.index("\n", start) + 1
    end = text.index("<!-- price table: end -->")
    assert text[start:end].strip() == cost.price_table_markdown().strip()
