"""Product cost per event: ingest + match + build + compile with every AWS call answered in memory.

The stores and clients are the fakes of ``powerx_agent.testing`` (same interfaces as the adapters), so
what is timed is the product's own code: envelope validation, tenant scope, idempotency claim,
audit sealing (SHA-256 chain), the match queue message, library decision, variable rendering,
``when`` evaluation, flow build + ASL compile, state machine ensure, workflow items, StartExecution
input, and the EMF metrics serialisation. CPU is ``time.process_time()`` (one thread, so CPU per
event = cost on one core; events/s per core = 1 / CPU per event).

Scenarios (each on fresh fakes):
- ``c1-warm``: distinct C-1 events (plugin.job.completed → report-on-job-completed → StartExecution),
  compiled-flow cache warm: the steady state of a matcher Lambda.
- ``c1-cold-compile``: the same, but the compiled-flow and state-machine caches are cleared before
  every event, so each one pays the full build + compile (the worst case: a fresh container).
- ``duplicates``: the same events again (the idempotency claim answers "duplicate").
- ``c2-escalate``: unmatched events escalated (review item + ops + notification over a fake HTTP).
- ``mixed``: 80% C-1, 10% duplicates, 5% C-2, 5% rejected (suspended tenant).

Run: ``.venv/bin/python bench/product_cost.py [--events 2000] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path
from typing import Any

from powerx_agent.handoffs.match import MatchMessage
from powerx_agent.ingest.service import Ingestor
from powerx_agent.match.service import Matcher
from powerx_agent.testing.fakes import FakeDeps, bus_event, fake_http

TARGET_PER_CORE = 1000.0


def c1(i: int, run: str) -> tuple[str, dict[str, Any], str]:
    return ("plugin.job.completed", {
        "tenant_id": "acme", "event_id": f"evt-{run}-{i}", "idempotency_key": f"job-{run}-{i}:completed",
        "occurred_at": "2026-11-28T10:00:00Z",
        "context": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                    "actor": "svc-reporting", "region": "eu-west-1"},
        "payload": {"job": {"id": str(i), "type": "report", "rows": 1200 + i}}}, "powerx.plugins")


def c2(i: int, run: str) -> tuple[str, dict[str, Any], str]:
    return ("tenant.request.pending", {
        "tenant_id": "acme", "event_id": f"evt-{run}-{i}", "idempotency_key": f"req-{run}-{i}:pending",
        "occurred_at": "2026-11-28T10:05:00Z", "context": {"actor": "portal"},
        "payload": {"request": {"id": str(i), "kind": "quota-increase"}}}, "powerx.tenants")


def rejected(i: int, run: str) -> tuple[str, dict[str, Any], str]:
    event_type, detail, source = c1(i, run)
    return event_type, {**detail, "tenant_id": "initech"}, source


def process(deps: FakeDeps, event: dict[str, Any]) -> str:
    """One event through ingest and (if queued) match, each with its own metrics flush as a handler does."""
    metrics = deps.metrics()
    outcome = Ingestor(deps, metrics).handle(event).outcome
    metrics.flush()
    for body in deps.queues.drain(deps.settings.match_queue_url):
        metrics = deps.metrics()
        outcome = Matcher(deps, metrics).handle(MatchMessage.parse(body).to_dict())["outcome"]
        metrics.flush()
    return outcome


def measure(name: str, events: list[dict[str, Any]], deps: FakeDeps, cold_compile: bool = False,
            warmup: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    for event in warmup or []:
        process(deps, event)
    outcomes: dict[str, int] = {}
    gc.collect()
    cpu = 0.0
    wall_start = time.perf_counter()
    for event in events:
        if cold_compile:
            deps.process_state.pop("flows", None)
            deps.process_state.pop("state_machines", None)
        start = time.process_time()
        outcome = process(deps, event)
        cpu += time.process_time() - start
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    wall = time.perf_counter() - wall_start
    per_event_ms = cpu / len(events) * 1000
    return {"scenario": name, "events": len(events), "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
            "cpu_per_event_ms": round(per_event_ms, 3),
            "events_per_s_per_core": round(1000 / per_event_ms, 1) if per_event_ms else None,
            "outcomes": outcomes}


def run(n: int) -> list[dict[str, Any]]:
    results = []
    with fake_http():
        deps = FakeDeps.create()
        warm = [bus_event(*c1(i, "warm")) for i in range(50)]
        c1_events = [bus_event(*c1(i, "a")) for i in range(n)]
        results.append(measure("c1-warm", c1_events, deps, warmup=warm))
        results.append(measure("duplicates", c1_events, deps))
        deps = FakeDeps.create()
        results.append(measure("c1-cold-compile", [bus_event(*c1(i, "b")) for i in range(max(50, n // 4))], deps,
                               cold_compile=True, warmup=[bus_event(*c1(i, "warm")) for i in range(5)]))
        deps = FakeDeps.create()
        results.append(measure("c2-escalate", [bus_event(*c2(i, "c")) for i in range(max(50, n // 4))], deps,
                               warmup=[bus_event(*c2(i, "warm")) for i in range(5)]))
        deps = FakeDeps.create()
        mixed: list[dict[str, Any]] = []
        for i in range(n):
            slot = i % 20
            if slot < 16:
                mixed.append(bus_event(*c1(i, "m")))
            elif slot < 18:
                mixed.append(bus_event(*c1(max(0, i - 5), "m")))  # a redelivery of an earlier event
            elif slot == 18:
                mixed.append(bus_event(*c2(i, "m")))
            else:
                mixed.append(bus_event(*rejected(i, "m")))
        results.append(measure("mixed", mixed, deps, warmup=[bus_event(*c1(i, "warm")) for i in range(50)]))
    return results


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["| Scenario | Events | CPU per event (ms) | Events/s per core | Target ≥ 1,000/s | Outcomes |",
             "|---|---|---|---|---|---|"]
    for r in results:
        ok = "yes" if (r["events_per_s_per_core"] or 0) >= TARGET_PER_CORE else "**no**"
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
        lines.append(f"| {r['scenario']} | {r['events']} | {r['cpu_per_event_ms']:.3f} | "
                     f"{r['events_per_s_per_core']:,.0f} | {ok} | {outcomes} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    results = run(args.events)
    table = markdown(results)
    print(table)
    out = {"results": results, "markdown": table, "target_per_core": TARGET_PER_CORE}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
