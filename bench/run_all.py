"""``make bench``: measured figures for docs/benchmarks.md (never timed assertions in tests).

1. ``bench/matcher.py``: events/s of our indexed matcher against a naive linear scan that parses
   JSONPath on every check and against moto's EventBridge pattern matcher, over the same
   strategies, at 100, 1,000 and 10,000 strategies over 200 event types (same run, same events).
2. ``bench/compile.py``: match + build + compile latency for flows of 10, 50 and 200 nodes
   (p50/p99), and the state transitions of a successful workflow executed on moto vs nodes + 2.
3. ``bench/ingest.py``: cold import of the ingest handler vs ``import boto3``; ingest cost per event.
4. ``bench/product_cost.py``: ingest + match + build + compile per event with AWS answered in memory.
5. ``bench/cost.py``: $ per million C-1 events per service beside the hand-wired anchor, the write path's
   counts per event and the hottest DynamoDB keys at 2,000 events/s, from a run on the embedded runtime.
6. ``bench/library.py``: a 10,000-strategy library on the embedded runtime: ``strategy lint``,
   ``strategy publish``, ``strategy approve --dir``, and a cold matcher's time to a ready index from
   the compiled artifact against today's path (one read per version, every YAML compiled).

``make bench`` runs this (``make bench-quick``) and then the load runs on the embedded runtime
(``make bench-load``, ``bench/load.py``), which take tens of minutes.

Run: ``.venv/bin/python bench/run_all.py --out docs/benchmarks.md`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compile as compile_bench  # noqa: E402 - bench/compile.py, next to this file
import library as library_bench  # noqa: E402 - bench/library.py
import matcher as matcher_bench  # noqa: E402 - bench/matcher.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    matcher = matcher_bench.run()
    flows = compile_bench.run()
    lib = library_bench.run()
    extra: list[str] = []  # sections of other benchmarks that follow the run(rows) convention
    try:
        import ingest as ingest_bench  # bench/ingest.py
    except ModuleNotFoundError as exc:
        if exc.name != "ingest":
            raise
    else:
        ingest_bench.run(extra)
    import product_cost as product_cost_bench  # bench/product_cost.py

    product = product_cost_bench.main(["--events", "2000"])
    extra += ["## Product cost per event, AWS answered by in-memory fakes (`bench/product_cost.py`)", "",
              product["markdown"], "",
              "The load runs on the embedded runtime (moto side by side with a bare pipeline, and 200 events/s "
              "offered for 30 s) take tens of minutes on 2 cores: `make bench` runs them after this "
              "(`make bench-load`), results in [benchmarks-load.md](benchmarks-load.md).", ""]
    import cost as cost_bench  # bench/cost.py: $ per million C-1 events, product beside the anchor

    cost_bench.run(extra)
    m10k = matcher[-1]
    m100 = matcher[0]
    m1k = next(r for r in matcher if r["strategies"] == 1_000)
    f50 = next(r for r in flows if r["nodes"] == 50)
    targets = [
        ("ours ≥ 50× the naive scan at 10,000 strategies", f"{m10k['ours'] / m10k['naive']:,.0f}×",
         m10k["ours"] / m10k["naive"] >= 50),
        ("ours ≥ 10× moto's EventBridge matcher at 10,000 strategies", f"{m10k['ours'] / m10k['moto']:,.0f}×",
         m10k["ours"] / m10k["moto"] >= 10),
        ("cost per event at 10,000 ≤ 2× the cost at 100 (selection)", f"{m100['ours'] / m10k['ours']:.2f}×",
         m100["ours"] / m10k["ours"] <= 2),
        ("cost per event at 10,000 ≤ 2× the cost at 100 (selection + decision record)",
         f"{m100['ours_record'] / m10k['ours_record']:.2f}×", m100["ours_record"] / m10k["ours_record"] <= 2),
        ("decision record ≤ 1 KB at 10,000 strategies (largest of the events, compact JSON)",
         f"{m10k['record_bytes_max']:,} B (mean {m10k['record_bytes_mean']:,.0f} B)",
         m10k["record_bytes_max"] <= 1024),
        ("50-node flow: match + build + compile p99 ≤ 10 ms", f"{f50['p99_ms']:.2f} ms", f50["p99_ms"] <= 10),
        (f"cold matcher: library ready ≤ 0.3 s at {lib['strategies']:,} strategies, reads included (artifact)",
         f"{lib['cold_artifact']['ready_s']:.3f} s, CPU {lib['cold_artifact']['ready_cpu_s']:.3f} s "
         f"({lib['cold_artifact']['requests']} requests; today's path "
         f"{lib['cold_today']['ready_s']:.1f} s, {lib['cold_today']['requests']:,} requests)",
         lib["cold_artifact"]["ready_s"] <= 0.3),
        (f"`strategy publish` of {lib['strategies']:,} files < 60 s", f"{lib['publish_s']:.1f} s",
         lib["publish_s"] < 60),
        (f"`strategy lint` of {lib['strategies']:,} files ≤ 5 s",
         f"{lib['lint_s']:.1f} s (CPU {lib['cpu']['lint']:.1f} s over its processes)", lib["lint_s"] <= 5),
        (f"proposed: `strategy lint` of {lib['strategies']:,} files ≤ 0.8 ms of CPU a file + 1 s serial, in one "
         "process ([benchmarks-lint.md](benchmarks-lint.md))",
         f"{lib['cpu']['lint --jobs 1']:.1f} s ({lib['cpu']['lint --jobs 1'] * 1000 / lib['strategies']:.2f} ms a file, "
         "serial part included)", lib["cpu"]["lint --jobs 1"] <= 0.0008 * lib["strategies"] + 1),
        ("proposed: cost per event at 10,000 ≤ 2× the cost at 1,000 (selection + decision record; at 100 most "
         "events have no candidate, so their record lists nothing)",
         f"{m1k['ours_record'] / m10k['ours_record']:.2f}×", m1k["ours_record"] / m10k["ours_record"] <= 2),
    ]
    target_rows = "\n".join(f"| {name} | {value} | {'met' if ok else '**not met**'} |" for name, value, ok in targets)
    text = f"""# Benchmarks

Measured by `make bench-quick`, the first half of `make bench` (`.venv/bin/python bench/run_all.py --out docs/benchmarks.md`).

- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}
- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()};
  load average (1 min) {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (other work on the machine)
- numbers are wall-clock on a shared machine; compare rows within one run, not across runs

## Targets

| target | measured | |
|---|---:|---|
{target_rows}

## Matcher: events/s (`bench/matcher.py`)

{matcher_bench.EVENTS:,} events over {matcher_bench.EVENT_TYPES} event types, tenant `acme`. Each strategy is
`all: [{{path: $.payload.kind, equals: k<i mod 7>}}, {{path: $.payload.size, gt: <i mod 50>}}]` on one event type,
weight `i mod 10`.

- **ours**: `StrategyIndex.decide`: the (event type, tenant) view, then the equality index (strategies whose
  `kind` differs are pruned unevaluated), then a bisection over the `size` bounds of the remaining bucket.
  The decision record is produced when it is first read. Measured warm (best of {matcher_bench.PASSES} passes over the
  events, the library sizes taking turns so that each sees the same load of the shared machine,
  after a first pass that builds each (event type, tenant) view, once per library revision: its time is the
  last column).
- **ours + record**: the same plus `decision.to_dict()` serialised to JSON, the record the matcher writes to
  the audit trail: the selected strategy, at most 3 nearest misses with their first failing condition, the
  other candidates counted by reason, `candidates_total`. It costs at most 3 evaluations whatever the number
  of candidates per event type (0.5 → 50 here). "record bytes": its compact JSON, mean and largest. At 100
  strategies most events have no candidate, so their record lists nothing; from 1,000 (5 candidates per
  event type) on, records hold their 3 nearest misses, and the cost stays flat up to 10,000.
- **full explanation**: `decision.explained()` serialised: every candidate evaluated and explained, what
  `strategy test` and the console's test page show (one pass; it grows with the candidates, by design, and
  is never on the matcher's path).
- **naive scan**: every strategy checked, every JSONPath parsed with jsonpath-ng on every check.
- **moto EventBridge**: `moto.events.models.EventPattern.matches_event` over every strategy converted to its
  EventBridge pattern (`detail-type`, an exact value, a `numeric` filter), as moto tests every rule of a bus.

Peers run on a sample ({', '.join(f"{r['sample']}" for r in matcher)} events) and their selections are
asserted equal to ours on it.

{matcher_bench.table(matcher)}

## Taskflow generation (`bench/compile.py`)

Cold (no flow cache): `StrategyIndex.decide` over 1,001 strategies + `build_dag`/`series_parallel` +
`compile_flow` (ASL JSON, hash, limit checks). Flows mix chains and fan-out/fan-in. "States entered" counts
the `*StateEntered` events of one successful execution of the compiled definition on moto's Step Functions
interpreter (node Lambdas answered by a fake that succeeds); the static count walks the definition and must
agree. A successful run enters one state per node, one per `Parallel` (fan-out) and `Complete`; conditional
nodes add their `<id>.when` Choice. So a pure chain costs nodes + 1, and what exceeds nodes + 2 here is the
Parallel states of the fan-outs (the flows have one per three nodes).

{compile_bench.table(flows)}

The product spec allows 10 s for generation; the matcher caches compiled flows per strategy version,
so these costs are paid once per version per process, not per event.

{library_bench.markdown(lib)}""" + ("\n" + "\n".join(extra) + "\n" if extra else "")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
