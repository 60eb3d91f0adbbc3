"""Sharded index keys: one place that writes them and one that reads them back.

A partition-key value shared by every event (a day, a tenant) becomes ``<value>#<nn>`` with ``nn``
derived from the item's own key, so a steady stream of writes spreads evenly over the shards and
each shard stays far below a partition's 1,000 write units per second (docs/capacity.md). Readers
query every shard of a family and merge.
"""

from __future__ import annotations

import hashlib
import re

TIME_SHARDS = 32
"""Shards of the audit time index (``D#<day>#<nn>``): 2,000 events/s × 1 entry ÷ 32 ≈ 63 writes/s each."""
TENANT_SHARDS = 64
"""Shards of the tenant index (``T#<tenant>#<nn>``): 2,000 events/s of one tenant × 2 entries ÷ 64 ≈ 63/s each."""

_SHARDED = re.compile(r"^([DT]#.+)#(\d{2})$")


def shard_of(owner: str, shards: int) -> int:
    """The shard of an item, from its owner's id (a workflow or chain id): stable and uniform."""
    return int(hashlib.sha256(owner.encode("utf-8", "surrogatepass")).hexdigest()[:8], 16) % shards


def time_key(day: str, owner: str) -> str:
    return f"D#{day}#{shard_of(owner, TIME_SHARDS):02d}"


def tenant_key(tenant_id: str, owner: str) -> str:
    return f"T#{tenant_id}#{shard_of(owner, TENANT_SHARDS):02d}"


def time_keys(day: str) -> list[str]:
    return [f"D#{day}#{n:02d}" for n in range(TIME_SHARDS)]


def tenant_keys(tenant_id: str) -> list[str]:
    return [f"T#{tenant_id}#{n:02d}" for n in range(TENANT_SHARDS)]


def shard_family(table: str, index: str, key: str) -> tuple[str, int] | None:
    """``(family, shard count)`` of a sharded index key, None for any other key (the heat report groups
    a family's shards, whose load is the family's divided evenly)."""
    found = _SHARDED.match(key) if index else None
    if not found:
        return None
    family = found.group(1)
    return family, TIME_SHARDS if family.startswith("D#") else TENANT_SHARDS
