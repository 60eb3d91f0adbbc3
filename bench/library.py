"""Strategy library at scale, on the embedded runtime: lint, publish, approve, and a cold matcher.

1. ``strategy lint`` of a generated library (``bench/library_gen.py``), the CLI in a fresh process, with
   its default worker processes and with ``--jobs 1``.
2. ``strategy publish`` of that directory to the embedded runtime (moto server in this process, the
   CLI in another), then ``strategy approve --dir`` (one library revision, one compiled artifact).
3. A cold matcher, in a fresh process per run: from the start of the process to a ready index, with
   the handler's imports and clients, then the library: today's path (read the revision, one GetItem
   per active version, compile every YAML) against the artifact (the revision head and the artifact's
   chunks, verified, indexed without compiling). Every DynamoDB request is counted; then the same load
   again in the warm process (a new revision seen by a running matcher). After "ready",
   the first decision (it compiles the conditions of one event type's strategies), and for
   transparency the time to decide one event of every event type (every strategy compiled).
4. ``strategy approve`` of one more version at that size (the artifact rebuilt from the previous one).

Run alone: ``.venv/bin/python bench/library.py [--strategies N]``; ``bench/run_all.py`` includes it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import library_gen  # noqa: E402 - bench/library_gen.py

REPO = Path(__file__).resolve().parents[1]
CLI = str(REPO / ".venv" / "bin" / "powerx-agent")
COLD_RUNS = 5

# The cold matcher, run in a fresh interpreter: argv = path ("artifact" | "today"). Prints JSON.
COLD_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from powerx_agent.handlers import matcher as handler  # the Lambda init: handler module, Deps
from powerx_agent.deps import get_deps
from powerx_agent.match.service import Matcher
deps = get_deps()
requests = {"n": 0}
deps.ddb.meta.events.register("before-call.dynamodb.*", lambda **kw: requests.__setitem__("n", requests["n"] + 1))
class Metrics:
    def add(self, *a, **k): pass
t_init = time.perf_counter()
def load():
    if sys.argv[1] == "artifact":
        return Matcher(deps, Metrics()).library()
    # today's path: the revision item, one GetItem per active version, every YAML compiled
    from powerx_agent.strategy.library import build_library
    item = deps.strategies.revision()
    return build_library(deps.strategies.documents(item["active"]), f"r{item['revision']}")
c_init = time.process_time()
library = load()
t_ready = time.perf_counter()
c_ready = time.process_time() - c_init
cold_requests = requests["n"]
deps.process_state.clear()  # a warm container seeing a new revision: imports, clients, caches warm
t_warm0 = time.perf_counter()
load()
t_after_warm = time.perf_counter()
t_warm = t_after_warm - t_warm0
sys.path.insert(0, sys.argv[2])
import library_gen
def decide(i):
    e = library_gen.event(i)
    return library.index.decide(event_type=e["event_type"], tenant_id="t03", event_id="e", doc=e, bus_event={})
decision, selected = decide(1)
json.dumps(decision.to_dict(), default=str)  # the record the matcher audits
t_first = time.perf_counter()
for i in range(library_gen.EVENT_TYPES):  # one event of each type: every strategy's conditions compiled
    e = {"event_type": f"bench.lib.{i}", "payload": library_gen.event(i)["payload"]}
    library.index.decide(event_type=e["event_type"], tenant_id="t03", event_id="e", doc=e, bus_event={})
t_all = time.perf_counter()
print(json.dumps({"init_s": t_init - t0, "ready_s": t_ready - t_init, "requests": cold_requests, "warm_s": t_warm, "ready_cpu_s": c_ready,
                  "first_decision_s": t_first - t_after_warm, "all_types_s": t_all - t_first,
                  "strategies": library.index.size, "revision": library.revision,
                  "selected": selected.strategy.id if selected else None}))
"""


CPU: dict[str, float] = {}
"""CPU seconds (user + system) of each command's process and its workers, by label: on a shared machine
wall clock grows with the other load, CPU time much less."""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(args: list[str], env: dict[str, str], what: str) -> tuple[float, str]:
    start, cpu = time.perf_counter(), _children_cpu()
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    CPU[what] = _children_cpu() - cpu
    if out.returncode != 0:
        raise RuntimeError(f"{what} failed ({out.returncode}): {out.stderr[-2000:]}")
    return seconds, out.stdout


def _cold(env: dict[str, str], path: str, runs_wanted: int = COLD_RUNS) -> dict[str, Any]:
    runs = []
    for _ in range(runs_wanted):
        start = time.perf_counter()
        _, out = _run([sys.executable, "-c", COLD_CHILD, path, str(Path(__file__).resolve().parent)], env, path)
        row = json.loads(out.strip().splitlines()[-1])
        row["process_s"] = time.perf_counter() - start
        runs.append(row)
    keys = ("init_s", "ready_s", "ready_cpu_s", "warm_s", "first_decision_s", "all_types_s", "process_s")
    summary = {k: statistics.median(r[k] for r in runs) for k in keys}
    summary.update(requests=runs[0]["requests"], strategies=runs[0]["strategies"], revision=runs[0]["revision"],
                   selected={r["selected"] for r in runs}, runs=len(runs))
    return summary


def run(n: int = 10_000, today_runs: int = COLD_RUNS) -> dict[str, Any]:
    """``today_runs``: fresh processes for today's path (minutes each at 10,000 on a busy machine)."""
    from powerx_agent.local.runtime import LocalRuntime
    from powerx_agent.settings import Env

    results: dict[str, Any] = {"strategies": n}
    with tempfile.TemporaryDirectory(prefix="powerx-library-") as tmp:
        library = library_gen.write_library(Path(tmp) / "library", n)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERX_"))}
        results["lint_s"], _ = _run([CLI, "strategy", "lint", str(library), "--format", "json"], env, "lint")
        results["lint_jobs1_s"], _ = _run([CLI, "strategy", "lint", str(library), "--format", "json", "--jobs", "1"],
                                          env, "lint --jobs 1")
        print(f"library n={n}: lint {results['lint_s']:.1f} s (--jobs 1: {results['lint_jobs1_s']:.1f} s)",
              file=sys.stderr)
        rt = LocalRuntime.start()
        try:
            env = {**env, **rt.environment}
            endpoint = rt.environment[Env.AWS_ENDPOINT_URL]
            results["publish_s"], _ = _run([CLI, "--endpoint-url", endpoint, "strategy", "publish", str(library),
                                            "--by", "alice", "--format", "json"], env, "publish")
            results["approve_dir_s"], out = _run([CLI, "--endpoint-url", endpoint, "strategy", "approve", "--dir",
                                                  str(library), "--by", "bob", "--reason", "bench",
                                                  "--format", "json"], env, "approve --dir")
            results["artifact"] = json.loads(out)["artifact"]
            print(f"library n={n}: publish {results['publish_s']:.1f} s, approve --dir {results['approve_dir_s']:.1f} s",
                  file=sys.stderr)
            results["cold_today"] = _cold(env, "today", today_runs)
            results["cold_artifact"] = _cold(env, "artifact")
            assert results["cold_today"]["selected"] == results["cold_artifact"]["selected"], "the paths disagree"
            one = Path(tmp) / "one"
            one.mkdir()
            (one / "lib-00001.yaml").write_text(library_gen.strategy_yaml(1).replace("version: 1", "version: 2", 1))
            _run([CLI, "--endpoint-url", endpoint, "strategy", "publish", str(one), "--author", "alice"], env, "publish one")
            results["approve_one_s"], _ = _run([CLI, "--endpoint-url", endpoint, "strategy", "approve", "lib-00001",
                                                "--version", "2", "--approver", "bob", "--reason", "bench"],
                                               env, "approve one")
            item = rt.client("dynamodb").get_item(TableName="agent_strategies",
                                                  Key={"pk": {"S": "LIBRARY"}, "sk": {"S": "REVISION"}})["Item"]
            results["revision_item_bytes"] = len(json.dumps(item))
        finally:
            rt.stop()
    results["cpu"] = dict(CPU)
    results["load_average"] = os.getloadavg()[0]
    c, a = results["cold_today"], results["cold_artifact"]
    print(f"library n={n}: cold ready today {c['ready_s']:.2f} s ({c['requests']} requests), artifact "
          f"{a['ready_s']:.3f} s ({a['requests']} requests); approve one {results['approve_one_s']:.1f} s",
          file=sys.stderr)
    return results


def markdown(r: dict[str, Any]) -> str:
    c, a, art = r["cold_today"], r["cold_artifact"], r["artifact"]
    n, cpu = r["strategies"], r["cpu"]
    return f"""## Strategy library at {n:,} strategies (`bench/library.py`)

A generated library (`bench/library_gen.py`: 200 event types, weights unique per type, `when` shapes
from an equality to RE2 `matches`, one in ten an EventBridge `pattern`, 1–4 nodes, a quarter scoped to
named tenants), on the embedded runtime: the moto server in the benchmark process, every CLI command and
every cold matcher in a fresh process of its own (wall clock, interpreter start included).

| step | wall (s) | CPU of the command's processes (s) |
|---|---:|---:|
| `strategy lint DIR` (worker processes, one per CPU) | {r['lint_s']:.1f} | {cpu['lint']:.1f} |
| `strategy lint DIR --jobs 1` | {r['lint_jobs1_s']:.1f} | {cpu['lint --jobs 1']:.1f} |
| `strategy publish DIR` ({n:,} new drafts, each with its audit record) | {r['publish_s']:.1f} | {cpu['publish']:.1f} (+ moto's, in the benchmark process) |
| `strategy approve --dir DIR` (one revision, one artifact, {n:,} audit records) | {r['approve_dir_s']:.1f} | {cpu['approve --dir']:.1f} (+ moto's) |
| `strategy approve ID --version N` at {n:,} (artifact rebuilt from the previous one) | {r['approve_one_s']:.1f} | {cpu['approve one']:.1f} (+ moto's) |

Load average (1 min) of the machine at the end of this part: {r['load_average']:.1f} on {os.cpu_count()} cores: wall
clock on a busy machine is the CPU time stretched by the other work; the CPU column is what the command
itself costs. Lint with one process: {cpu['lint --jobs 1'] * 1000 / n:.2f} ms of CPU per file, the interpreter
start and imports included; where it goes, and a CPU target: [benchmarks-lint.md](benchmarks-lint.md).

The artifact of that revision: {art['bytes']:,} bytes in {art['chunks']} DynamoDB items. The revision item
(`LIBRARY / REVISION`, with the active map of {n:,} strategies) is {r['revision_item_bytes']:,} bytes as DynamoDB JSON.

Cold matcher, median of fresh processes ({c['runs']} for today's path, {a['runs']} for the artifact):

| path | init: handler imports, Deps (s) | **library ready, cold** (s) | its CPU (s) | DynamoDB requests | library ready, warm container (s) | first decision + record (s) | one event of every type (s) | whole process (s) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
| today: revision item, one GetItem per version, every YAML compiled | {c['init_s']:.2f} | {c['ready_s']:.2f} | {c['ready_cpu_s']:.2f} | {c['requests']:,} | {c['warm_s']:.2f} | {c['first_decision_s']:.3f} | {c['all_types_s']:.2f} | {c['process_s']:.2f} |
| artifact: revision head, artifact chunks, verified, indexed | {a['init_s']:.2f} | **{a['ready_s']:.3f}** | {a['ready_cpu_s']:.3f} | {a['requests']:,} | {a['warm_s']:.3f} | {a['first_decision_s']:.3f} | {a['all_types_s']:.2f} | {a['process_s']:.2f} |

"Library ready, cold" is the time from the matcher's first `library()` call in a fresh process to an
index that decides any event; "warm container" is the same load again in that process with its caches
dropped (imports, clients and connections warm): what a running matcher pays when a new revision of
this size is approved. Both are the reads (counted above, served by moto over loopback) plus, today,
compiling every strategy, and with the artifact, checking its SHA-256 and reading its index (strategies are compiled when their event
type is first seen: the next columns show that cost, once per process).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", type=int, default=10_000)
    parser.add_argument("--today-runs", type=int, default=COLD_RUNS, help="fresh processes for today's path")
    args = parser.parse_args()
    print(markdown(run(args.strategies, args.today_runs)))


if __name__ == "__main__":
    main()
