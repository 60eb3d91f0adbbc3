"""Load on the embedded runtime: product vs bare moto side by side, then an overload run.

1. Side by side (same process, same moto server, same offered rate): the bare-moto pipeline
   (PutEvents → rule → SQS → conditional PutItem + StartExecution → 3 no-op tasks) and the product
   (PutEvents → ingest → match → StartExecution → nodes → sandbox). Reports each one's sustained
   rate, generation latency (event accepted → execution started) and end-to-end latency, and the
   ratio product / bare (target ≥ 0.8).
2. Overload: 200 events/s offered for 30 s to the product. The backlog grows (in SQS: the matcher
   poller stops taking work while executions in flight are at the cap), then drains; afterwards
   every event is accounted for from agent_events + the audit chains, ``audit verify`` runs over
   the run, and memory (RSS, threads) is sampled every second.

Run: ``.venv/bin/python bench/load.py [--rate 30 --duration 15] [--overload-rate 200
--overload-duration 30] [--json out.json] [--md docs/benchmarks-load.md]``. Long: the overload run
drains at the product's moto ceiling, which takes tens of minutes on 2 cores (see the doc).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _ms(p: dict[str, Any]) -> str:
    return " / ".join("—" if p.get(k) is None else f"{p[k]:,.0f}" for k in ("p50", "p95", "p99"))


def side_by_side_table(results: list[Any]) -> str:
    lines = ["| Pipeline | Offered/s | Sent | Completed | Sustained/s | Generation p50 / p95 / p99 (ms) | "
             "End to end p50 / p95 / p99 (ms) | Drained |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.pipeline} | {r.offered_rate:g} | {r.sent} | {r.completed} | {r.sustained_rate:.2f} | "
                     f"{_ms(r.generation_ms)} | {_ms(r.end_to_end_ms)} | {'yes' if r.drained else 'no'} |")
    return "\n".join(lines)


def backlog_table(samples: list[dict[str, Any]], every: int = 5) -> str:
    lines = ["| t (s) | Producer lag | Ingest pending | Match queue | Executions running | Threads | RSS (MB) |",
             "|---|---|---|---|---|---|---|"]
    picked = samples[::every] + ([samples[-1]] if samples and (len(samples) - 1) % every else [])
    for s in picked:
        lines.append(f"| {s['t']:.0f} | {max(0, s.get('lag', 0))} | {s['ingest_pending']} | {s['queue']} | "
                     f"{s['running']} | {s['threads']} | {s['rss_mb']:.0f} |")
    return "\n".join(lines)


BEGIN, END = "<!-- bench/load.py: begin (generated) -->", "<!-- bench/load.py: end -->"


def write_between_markers(path: Path, markdown: str) -> None:
    """Replace the generated part of ``path`` (between the markers), keeping the text around it;
    a file without markers gets them appended."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{markdown}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=40.0, help="side-by-side offered rate (events/s)")
    parser.add_argument("--duration", type=float, default=15.0, help="side-by-side seconds of driving")
    parser.add_argument("--overload-rate", type=float, default=200.0)
    parser.add_argument("--overload-duration", type=float, default=30.0)
    parser.add_argument("--drain-timeout", type=float, default=3600.0)
    parser.add_argument("--skip-side-by-side", action="store_true")
    parser.add_argument("--skip-overload", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    parser.add_argument("--md", type=Path, default=None, help="write the markdown section here")
    args = parser.parse_args(argv)

    from powerx_agent import loadtest as load
    from powerx_agent.deps import get_deps
    from powerx_agent.local.meter import Meter
    from powerx_agent.local.runtime import LocalRuntime
    from powerx_agent.ops.audit import verify

    reported: dict[str, int] = {}

    def log(stage: str, done: int, total: int) -> None:  # each time a stage crosses a multiple of 500
        step = done // 500 if done < total else total // 500 + 1
        if step < reported.get(stage, -1):  # the same stage of the next run starts again
            reported[stage] = -1
        if step > reported.get(stage, -1):
            reported[stage] = step
            print(f"  {stage}: {done}/{total}", file=sys.stderr, flush=True)

    out: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                                      f"{platform.python_version()}", "date": datetime.now(UTC).isoformat()}
    sections = ["## Load on the embedded runtime", "",
                f"Machine: {out['machine']}; date {out['date'][:19]}Z; command "
                f"`.venv/bin/python bench/load.py {' '.join(argv or sys.argv[1:])}`.", ""]
    runtime = LocalRuntime.start()
    try:
        if not args.skip_side_by_side:
            print(f"side by side: {args.rate:g}/s for {args.duration:g} s", file=sys.stderr)
            with Meter() as bare_calls:
                bare = load.run_bare(runtime, args.rate, args.duration, drain_timeout=args.drain_timeout,
                                     progress=log)
            with Meter() as product_calls:
                product, produced = load.run_product(runtime, args.rate, args.duration,
                                                     drain_timeout=args.drain_timeout, progress=log)
            bare.extra["moto_requests_per_event"] = bare_calls.summary(bare.sent)
            product.extra["moto_requests_per_event"] = product_calls.summary(product.sent)
            ratio = product.sustained_rate / bare.sustained_rate if bare.sustained_rate else 0.0
            out["side_by_side"] = {"bare": bare.to_dict(), "product": product.to_dict(), "ratio": round(ratio, 3),
                                   "accounting": load.account(get_deps(), produced)}
            sections += ["### Product vs bare moto, same run", "", side_by_side_table([bare, product]), "",
                         f"Product / bare sustained rate: **{ratio:.2f}×** (target ≥ 0.80×).", "",
                         "Requests the moto server answered per event (all services, including the Step "
                         "Functions executor's Lambda calls; the harness's own checks left out):", "",
                         f"- bare: {bare.extra['moto_requests_per_event']}",
                         f"- product: {product.extra['moto_requests_per_event']}", ""]
            if args.json:  # keep what is measured even if the overload run is interrupted
                args.json.write_text(json.dumps(out, indent=2, default=str))
        if not args.skip_overload:
            print(f"overload: {args.overload_rate:g}/s for {args.overload_duration:g} s", file=sys.stderr)
            since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="milliseconds")
            started = time.monotonic()
            over, produced = load.run_product(runtime, args.overload_rate, args.overload_duration,
                                              drain_timeout=args.drain_timeout, progress=log)
            accounting = load.account(get_deps(), produced)
            report = verify(get_deps(), since=since.replace("+00:00", "Z"))
            peak_rss = max((s["rss_mb"] for s in over.samples), default=0.0)
            peak_threads = max((s["threads"] for s in over.samples), default=0)
            peak_queue = max((s["queue"] for s in over.samples), default=0)
            out["overload"] = {"result": over.to_dict(), "accounting": accounting,
                               "verify": {"ok": report.ok, "completeness": report.completeness,
                                          "gaps": [str(g) for g in report.gaps[:20]], "units": report.units},
                               "peak_rss_mb": peak_rss, "peak_threads": peak_threads, "peak_queue": peak_queue,
                               "wall_s": round(time.monotonic() - started, 1)}
            every = max(5, len(over.samples) // 40)  # about 40 rows, however long the drain
            sections += [f"### Overload: {args.overload_rate:g} events/s for {args.overload_duration:g} s", "",
                         side_by_side_table([over]), "",
                         f"- Put on the bus: {over.sent} events ({over.put_rate:.1f}/s while driving); "
                         f"drained: {'yes' if over.drained else 'no'} after {over.drain_seconds:.0f} s more.",
                         f"- Accounted for: **{accounting['accounted_pct']}%** "
                         f"({', '.join(f'{k} {v}' for k, v in sorted(accounting['outcomes'].items()))}); "
                         f"broken chains: {accounting['chains_broken_count']}.",
                         f"- `audit verify` over the run: ok={report.ok}, completeness {report.completeness}% "
                         f"of {report.units} units.",
                         f"- Executions in flight peaked at {over.extra.get('executions_peak')} (cap "
                         f"{over.extra.get('cap')}); match queue peaked at {peak_queue}; threads peaked at "
                         f"{peak_threads}; RSS peaked at {peak_rss:.0f} MB.", "",
                         f"Backlog and memory while driving and draining (one one-second sample in every {every}):",
                         "", backlog_table(over.samples, every), ""]
    finally:
        load.teardown_bare(runtime)
        runtime.stop()
    markdown = "\n".join(sections)
    out["markdown"] = markdown
    print(markdown)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    if args.md:
        write_between_markers(args.md, markdown)
    return out


if __name__ == "__main__":
    main()
