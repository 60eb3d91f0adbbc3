"""A large, varied strategy library for the library benchmarks (``bench/library.py``).

Strategy ``i`` handles event type ``bench.lib.<i mod 200>``; its weight (``i // 200``) is unique within
its event type, so the library lints clean (no weight ties). The shapes vary with ``i``: an equality
plus a numeric bound, an ``any`` of two alternatives, an ``in`` list, an RE2 ``matches``, one in ten
an EventBridge ``pattern`` instead of ``when``; one to five nodes (plugins, a notification, a
conditional manual review); one strategy in four scoped to named tenants.
"""

from __future__ import annotations

from pathlib import Path

EVENT_TYPES = 200
TENANTS = [f"t{n:02d}" for n in range(20)]


def event_type(i: int) -> str:
    return f"bench.lib.{i % EVENT_TYPES}"


def identity(i: int) -> tuple[str, int, tuple[str, ...]]:
    """Strategy ``i``'s id, weight and tenants (without compiling it)."""
    tenants = ("*",) if i % 4 else (TENANTS[i % 20], TENANTS[(i + 7) % 20])
    return f"lib-{i:05d}", i // EVENT_TYPES, tenants


def strategy_yaml(i: int) -> str:
    strategy_id, weight, scope = identity(i)
    kind = f"k{i % 7}"
    shape = i % 10
    if shape == 9:
        match = (f"pattern:\n  detail:\n    payload:\n      kind: [{kind}]\n"
                 f"      size: [{{numeric: ['>', {i % 50}]}}]\n")
    elif shape in (0, 1, 2, 3):
        match = (f"when:\n  all:\n    - {{path: $.payload.kind, equals: {kind}}}\n"
                 f"    - {{path: $.payload.size, gt: {i % 50}}}\n")
    elif shape in (4, 5):
        match = (f"when:\n  all:\n    - {{path: $.payload.kind, equals: {kind}}}\n    - any:\n"
                 f"        - {{path: $.payload.region, in: [eu-west-1, eu-central-1]}}\n"
                 f"        - {{path: $.payload.size, gte: {i % 40 + 10}}}\n")
    elif shape in (6, 7):
        match = (f"when:\n  all:\n    - {{path: $.payload.kind, in: [{kind}, k{(i + 1) % 7}]}}\n"
                 f"    - {{path: $.payload.name, matches: 'job-[0-9]+-{i % 10}'}}\n")
    else:
        match = f"when: {{path: $.payload.kind, equals: {kind}}}\n"
    tenants = '["*"]' if scope == ("*",) else f"[{', '.join(scope)}]"
    nodes = [f"    - id: run\n      plugin: p{i % 13}\n      input: {{item: \"${{item}}\", size: \"${{size}}\"}}\n"
             f"      retry: {{attempts: 3, backoff: 1s}}\n"]
    if i % 3 == 0:
        nodes.append("    - id: archive\n      plugin: archiver\n      input: {item: \"${item}\"}\n"
                     "      after: [run]\n")
    if i % 2 == 0:
        nodes.append("    - id: tell\n      notify: {to: \"${owner}\", template: done}\n      after: [run]\n")
    if i % 5 == 0:
        nodes.append("    - id: review\n      manual_review: {queue: ops, reason: \"large job\", sla: 4h}\n"
                     "      after: [run]\n      when: {path: $.payload.size, gt: 40}\n")
    return (f"id: {strategy_id}\nversion: 1\nstatus: approved\nowner: bench@example.com\n"
            f"description: generated strategy {i} for the library benchmark\n"
            f"tenants: {tenants}\non: {{event: {event_type(i)}}}\n{match}weight: {weight}\n"
            f"variables:\n  item: $.payload.id\n  size: {{path: $.payload.size, default: 0}}\n"
            f"flow:\n  timeout: 15m\n  nodes:\n{''.join(nodes)}"
            f"  on_failure:\n    escalate: {{queue: ops, notify: [ops-oncall]}}\n")


def write_library(directory: Path, n: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (directory / f"lib-{i:05d}.yaml").write_text(strategy_yaml(i))
    return directory


def event(i: int) -> dict:
    """An event of the benchmark's types (about half of them match some strategy)."""
    return {"event_type": event_type(i * 7919), "payload": {"kind": f"k{i % 7}", "size": i % 60, "id": f"j{i}",
                                                              "region": "eu-west-1", "name": f"job-{i}-{i % 10}"}}
