"""Matcher scaling: our indexed matcher against two peers over the same strategies and events.

- **ours**: ``StrategyIndex.decide`` (selection; the decision record is produced when read).
- **ours + record**: the same, plus ``decision.to_dict()`` serialised to JSON: the bounded record the
  matcher writes to the audit trail (selected, nearest misses, the others counted by reason); its size
  in bytes (compact JSON, as ``RECORD_BUDGET`` counts it) is reported too.
- **full explanation**: ``decision.explained()``: every candidate evaluated and explained, what
  ``strategy test`` and the console's test page show a person (one pass; not on the matcher's path).
- **naive scan**: every strategy checked, every JSONPath parsed on every check (jsonpath-ng).
- **moto EventBridge**: ``moto.events.models.EventPattern`` with each strategy converted to the
  EventBridge pattern it corresponds to (``detail-type``, an exact value and a ``numeric``
  filter), every pattern tested per event as moto's EventBridge does for the rules of a bus,
  highest weight then lowest id selected.

Peers run on a sample of the events at large sizes (to bound the run time); every peer's
selections are asserted equal to ours on that sample.
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Any

from jsonpath_ng import parse as jsonpath_parse
from moto.events.models import EventPattern

from powerx_agent.strategy.decision import record_size
from powerx_agent.strategy.index import StrategyIndex
from powerx_agent.strategy.loader import load_strategy_text

EVENT_TYPES = 200
EVENTS = 4000
SIZES = (100, 1_000, 10_000)
PASSES = 9


def strategy_yaml(i: int, event_type: str) -> str:
    return f"""id: s-{i:05d}
version: 1
status: approved
owner: bench@example.com
on: {{event: {event_type}}}
when:
  all:
    - {{path: $.payload.kind, equals: k{i % 7}}}
    - {{path: $.payload.size, gt: {i % 50}}}
weight: {i % 10}
variables:
  item: $.payload.id
flow:
  nodes:
    - id: act
      plugin: p{i % 13}
      input: {{item: "${{item}}"}}
"""


def build_library(n: int) -> tuple[list, list[dict]]:
    types = [f"bench.type.{t}" for t in range(EVENT_TYPES)]
    compiled = []
    for i in range(n):
        strategy, findings = load_strategy_text(strategy_yaml(i, types[i % EVENT_TYPES]), f"s-{i}.yaml")
        assert strategy is not None, findings
        compiled.append(strategy)
    rng = random.Random(7)
    events = [{"event_type": rng.choice(types), "payload": {"kind": f"k{rng.randrange(7)}", "size": rng.randrange(60),
                                                            "id": str(i)}} for i in range(EVENTS)]
    return compiled, events


def naive_decide(compiled: list, doc: dict) -> str | None:
    """Peer 1: every strategy checked, every JSONPath parsed on every check."""
    best = None
    for c in compiled:
        s = c.strategy
        if doc["event_type"] not in s.on.event:
            continue
        ok = True
        for leaf in s.when["all"]:
            found = jsonpath_parse(leaf["path"]).find(doc)
            value = found[0].value if found else None
            if "equals" in leaf and value != leaf["equals"]:
                ok = False
            if "gt" in leaf and not (isinstance(value, int | float) and value > leaf["gt"]):
                ok = False
            if not ok:
                break
        if ok and (best is None or (-s.weight, s.id) < (-best.weight, best.id)):
            best = s
    return best.id if best else None


def to_eventbridge_pattern(compiled: Any) -> dict[str, Any]:
    """The EventBridge rule pattern equivalent to a bench strategy (equals + gt on detail fields)."""
    detail: dict[str, Any] = {}
    for leaf in compiled.strategy.when["all"]:
        keys = leaf["path"].removeprefix("$.").split(".")
        node = detail
        for part in keys[:-1]:
            node = node.setdefault(part, {})
        node[keys[-1]] = [leaf["equals"]] if "equals" in leaf else [{"numeric": [">", leaf["gt"]]}]
    return {"detail-type": list(compiled.strategy.on.event), "detail": detail}


def moto_decide(rules: list[tuple[EventPattern, int, str]], event: dict[str, Any]) -> str | None:
    """Peer 2: moto's EventBridge matcher over every rule; highest weight then lowest id wins."""
    best: tuple[int, str] | None = None
    for pattern, weight, sid in rules:
        if pattern.matches_event(event) and (best is None or (-weight, sid) < best):
            best = (-weight, sid)
    return best[1] if best else None


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _pass(index: StrategyIndex, events: list[dict], record: bool) -> tuple[float, list[str | None]]:
    """One pass over the events: selection, and with ``record`` the record the matcher writes, serialised."""
    chosen: list[str | None] = []
    start = time.perf_counter()
    for doc in events:
        decision, selected = index.decide(event_type=doc["event_type"], tenant_id="acme", event_id="e", doc=doc,
                                          bus_event={})
        if record:
            json.dumps(decision.to_dict(), default=str)
        else:
            chosen.append(selected.strategy.id if selected else None)
    return _rate(len(events), time.perf_counter() - start), chosen


def run() -> list[dict[str, Any]]:
    results = []
    indexes = []
    for n in SIZES:
        compiled, events = build_library(n)
        index = StrategyIndex(compiled, "bench")
        start = time.perf_counter()
        for doc in events:  # warm: a running matcher has built the (event type, tenant) views once per revision
            index.decide(event_type=doc["event_type"], tenant_id="acme", event_id="e", doc=doc, bus_event={})
        warm_seconds = time.perf_counter() - start
        _, ours = _pass(index, events, record=False)
        sizes = []
        start = time.perf_counter()
        for doc in events:
            decision, _ = index.decide(event_type=doc["event_type"], tenant_id="acme", event_id="e", doc=doc,
                                       bus_event={})
            json.dumps(decision.explained(), default=str)
            sizes.append(record_size(decision.to_dict()))
        explained_rate = _rate(len(events), time.perf_counter() - start)

        sample = events[: max(20, EVENTS * 100 // n // 10)]
        start = time.perf_counter()
        naive = [naive_decide(compiled, doc) for doc in sample]
        naive_rate = _rate(len(sample), time.perf_counter() - start)
        assert naive == ours[: len(sample)], "the naive scan and the index disagree"

        rules = [(EventPattern.load(json.dumps(to_eventbridge_pattern(c))), c.strategy.weight, c.strategy.id)
                 for c in compiled]
        bus_events = [{"version": "0", "id": "e", "source": "bench", "detail-type": doc["event_type"],
                       "account": "000000000000", "region": "us-east-1", "time": "2026-01-01T00:00:00Z",
                       "resources": [], "detail": {"payload": doc["payload"]}} for doc in sample]
        start = time.perf_counter()
        moto = [moto_decide(rules, event) for event in bus_events]
        moto_rate = _rate(len(sample), time.perf_counter() - start)
        assert moto == ours[: len(sample)], "moto's EventBridge matcher and the index disagree"
        indexes.append((index, events))
        results.append({"strategies": n, "warm_ms": warm_seconds * 1000, "ours": 0.0, "ours_record": 0.0,
                        "explained": explained_rate, "record_bytes_mean": sum(sizes) / len(sizes),
                        "record_bytes_max": max(sizes), "naive": naive_rate, "moto": moto_rate,
                        "sample": len(sample), "matched": sum(x is not None for x in ours) / len(ours)})
    # best of PASSES, the sizes taking turns: the machine is shared, the minimum is the least disturbed, and
    # every size sees the same moments of load (the cost ratios compare sizes)
    for _ in range(PASSES):
        for row, (index, events) in zip(results, indexes, strict=True):
            row["ours"] = max(row["ours"], _pass(index, events, record=False)[0])
            row["ours_record"] = max(row["ours_record"], _pass(index, events, record=True)[0])
    for row in results:
        print(f"matcher n={row['strategies']}: ours {row['ours']:,.0f}/s (+record {row['ours_record']:,.0f}/s, "
              f"record ≤ {row['record_bytes_max']} B; full explanation {row['explained']:,.0f}/s) "
              f"naive {row['naive']:,.0f}/s moto {row['moto']:,.0f}/s", file=sys.stderr)
    return results


def table(results: list[dict[str, Any]]) -> str:
    base = results[0]
    lines = ["| strategies | ours (events/s) | ours + record (events/s) | record bytes (mean / max) | "
             "full explanation (events/s) | naive scan (events/s) | "
             "moto EventBridge (events/s) | ours ÷ naive | ours ÷ moto | cost vs 100 (ours / + record) | "
             "first pass, views built (ms) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['strategies']:,} | {r['ours']:,.0f} | {r['ours_record']:,.0f} | "
                     f"{r['record_bytes_mean']:,.0f} / {r['record_bytes_max']:,} | {r['explained']:,.0f} | "
                     f"{r['naive']:,.0f} | "
                     f"{r['moto']:,.0f} | {r['ours'] / r['naive']:,.0f}× | {r['ours'] / r['moto']:,.0f}× | "
                     f"{base['ours'] / r['ours']:.2f}× / {base['ours_record'] / r['ours_record']:.2f}× | "
                     f"{r['warm_ms']:,.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run()))
