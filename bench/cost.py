"""``make bench-quick`` step: what C-1 costs per million events on AWS, per service, beside the
hand-wired anchor, from a run measured on the embedded runtime (docs/cost.md), with the write path's
counts per accepted event and the hottest DynamoDB keys scaled to 2,000 events/s of one tenant.

Run alone: ``.venv/bin/python bench/cost.py [--events 40 --rate 10] [--profile build/profile.json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TARGETS = {"dynamodb_write_requests": 12.0, "requests_total": 20.0, "index_writes": 4.0}
HOT_KEY_LIMIT = 100.0


def measure(events: int, rate: float) -> dict[str, Any]:
    from powerx_agent.audit.shards import shard_family
    from powerx_agent.loadtest.profile import measure as run
    from powerx_agent.local.runtime import LocalRuntime

    runtime = LocalRuntime.start()
    try:
        return run(runtime, events=events, rate=rate, shards=shard_family)
    finally:
        runtime.stop()


def markdown(profile: dict[str, Any], result: dict[str, Any]) -> str:
    comparison = result["comparison"]
    rows = "\n".join(f"| {r['service']} | {r['product']:,.2f} | {r['anchor']:,.2f} |" for r in comparison["rows"])
    hot = [h for h in profile["heat"] if h["at_target"] > HOT_KEY_LIMIT]
    heat_rows = "\n".join(f"| {h['table']} | {h['index'] or '—'} | `{h['key'][:48]}` | {h['kind']} | {h['per_event']:g} | "
                          f"{h['at_target']:,.0f} |" for h in profile["heat"][:6])
    checks = "\n".join(f"| {name.replace('_', ' ')} | {profile[name]} | ≤ {limit:g} | "
                       f"{'met' if profile[name] <= limit else '**not met**'} |" for name, limit in TARGETS.items())
    run = profile["run"]
    return f"""## Cost per million C-1 events (`bench/cost.py`)

{run['events']} C-1 events (approve skipped) at {run['rate']:g}/s on the embedded runtime, every request counted
(`powerx_agent.local.meter`), priced at us-east-1 list prices checked {result['prices_checked']} (sources and the
model: [cost.md](cost.md)). Lambda and Express durations are modelled (the same downstream call time for the
product's nodes and the anchor's tasks), everything else is counted.

| service | product ($/M events) | hand-wired anchor ($/M) |
|---|---:|---:|
{rows}
| **total** | **{comparison['product']:,.2f}** | **{comparison['anchor']:,.2f}** |

Product / anchor: **{comparison['ratio']:.2f}×** (target ≤ {result['target_ratio']:g}×).

Per accepted event:

| counted | measured | target | |
|---|---:|---:|---|
{checks}
| strongly consistent reads | {profile['strongly_consistent_reads']} | | |
| write units (tables + indexes) | {profile['wru']} + {profile['index_wru']} | | |

Hottest keys, scaled to {run['target_rate']:,.0f} events/s of one tenant (write units per second; target ≤ {HOT_KEY_LIMIT:g};
keys above it: {len(hot)}):

| table | index | partition key | kind | units/event | at {run['target_rate']:,.0f}/s |
|---|---|---|---|---:|---:|
{heat_rows}
"""


def run(extra: list[str], events: int = 40, rate: float = 10.0, profile_file: Path | None = None) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))
    from powerx_agent.cli.cost_cmd import bills

    profile = json.loads(profile_file.read_text()) if profile_file else measure(events, rate)
    result = bills(profile)
    extra += [markdown(profile, result)]
    return {"profile": profile, "result": result}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the profile and the bills here")
    args = parser.parse_args(argv)
    extra: list[str] = []
    out = run(extra, args.events, args.rate, args.profile)
    print("\n".join(extra))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
