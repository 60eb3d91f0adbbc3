"""Sharded index keys: one place that writes them and one that reads them back.

A partition-key value shared by every event (a day, a tenant) becomes ``<value>#<nnn>`` with ``nnn``
derived from the item's own owner (an audit chain, a workflow), so a steady stream of writes spreads
evenly over the shards, each shard stays far below a partition's 1,000 write units per second
(docs/capacity.md), and one owner's entries stay in one shard, in order. Readers query every shard
of a family (and the unsharded value items written before keys were sharded) and merge.

Pure: no boto3, no I/O.
"""

from __future__ import annotations

import hashlib
import re

TIME_SHARDS = 256
"""Shards of the audit time index (``by_time``, key ``D#<day>#<nnn>``): sized when every record was indexed
(at 2,000 C-1 events/s about 16,000 records/s of about 1.4 write units each ÷ 256 ≈ 90 units/s per shard);
with only the first record of a chain in each minute indexed, about 2,500 entries/s ÷ 256 ≈ 10 per shard."""
TENANT_SHARDS = 128
"""Shards of the tenant index of workflows (``by_tenant``, key ``T#<tenant>#<nnn>``; ``gsi1`` before it): sized
when each of the 3 META writes of a workflow wrote about 2 units to the index (at 2,000 events/s of one tenant
≈ 90 units/s per shard); keys only, the index takes one entry of one unit per workflow, ≈ 16 units/s per shard."""

_SHARDED = re.compile(r"^([DT]#.+)#(\d{3})$")


def shard_of(owner: str, shards: int) -> int:
    """The shard of an item, from its owner's id (a workflow or chain id): stable and uniform."""
    return int(hashlib.sha256(owner.encode("utf-8", "surrogatepass")).hexdigest()[:8], 16) % shards


def time_key(day: str, owner: str) -> str:
    return f"D#{day}#{shard_of(owner, TIME_SHARDS):03d}"


def tenant_key(tenant_id: str, owner: str) -> str:
    return f"T#{tenant_id}#{shard_of(owner, TENANT_SHARDS):03d}"


def time_keys(day: str) -> list[str]:
    """Every key of ``day`` in the time index: its shards, then the day itself (records written before
    the keys were sharded)."""
    return [f"D#{day}#{n:03d}" for n in range(TIME_SHARDS)] + [day]


def tenant_shard_keys(tenant_id: str) -> list[str]:
    """The shards of ``tenant_id`` in the tenant index."""
    return [f"T#{tenant_id}#{n:03d}" for n in range(TENANT_SHARDS)]


def tenant_keys(tenant_id: str) -> list[str]:
    """Every key of ``tenant_id`` in the tenant index: its shards, then ``WF#<tenant>`` (workflows created
    before the keys were sharded)."""
    return tenant_shard_keys(tenant_id) + [f"WF#{tenant_id}"]


def shard_family(table: str, index: str, key: str) -> tuple[str, int] | None:
    """``(family, shard count)`` of a sharded index key, None for any other key (the heat report groups
    a family's shards, whose load is the family's divided evenly)."""
    found = _SHARDED.match(key) if index else None
    if not found:
        return None
    family = found.group(1)
    return family, TIME_SHARDS if family.startswith("D#") else TENANT_SHARDS
