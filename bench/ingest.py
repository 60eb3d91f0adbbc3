"""Ingest benchmarks (issue 6): cold import of the ingest handler vs a bare ``import boto3``, and the
ingest step's CPU cost per event with in-memory fakes for the AWS calls.

``run(rows)`` appends its markdown lines to ``rows`` (for ``bench/run_all.py``); run directly
(``.venv/bin/python bench/ingest.py``) it prints the section and appends it to docs/benchmarks.md.

1. Cold import: each case runs in a fresh interpreter (``python -c``), wall-clock, median of N runs;
   the interpreter start (``python -c pass``) is subtracted. "handler ready" also builds the
   process-wide Deps and the boto3 clients the ingest step uses (what a cold start pays before the
   first event; clients are created once per process and reused).
2. Ingest CPU per event: ``Ingestor.handle`` on new events and on duplicates, the real envelope
   validation, tenant scope, payload hash, context and JSON encoding, with the stores, flags, audit,
   metrics and SQS answered by in-memory fakes (no network), ``time.process_time`` per event.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "9"))
EVENTS = int(os.environ.get("BENCH_INGEST_EVENTS", "3000"))
TARGET_RATIO = 1.5

READY = (
    "import os; os.environ.setdefault('AWS_REGION','us-east-1');"
    "os.environ.setdefault('AWS_ACCESS_KEY_ID','x'); os.environ.setdefault('AWS_SECRET_ACCESS_KEY','x');"
    "import powerx_agent.handlers.ingest as h; from powerx_agent.deps import get_deps; d = get_deps();"
    "d.client('sqs'); d.ddb"
)
CASES = {
    "python -c pass": "pass",
    "import boto3": "import boto3",
    "import boto3 + 1 client": "import boto3; boto3.session.Session().client('sqs', region_name='us-east-1')",
    "import ingest handler": "import powerx_agent.handlers.ingest",
    "ingest handler ready (Deps + clients)": READY,
}


def _wall(code: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO / "functions"), "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    subprocess.run([PY, "-c", code], check=True, env=env, cwd=REPO, capture_output=True)
    return time.perf_counter() - start


def import_times(runs: int = RUNS) -> dict[str, float]:
    for code in CASES.values():  # warm the OS file cache and the .pyc files once
        _wall(code)
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(runs):  # interleaved, so load on the shared machine hits every case alike
        for name, code in CASES.items():
            samples[name].append(_wall(code))
    return {name: statistics.median(values) for name, values in samples.items()}


# -- in-memory fakes for the ingest step ------------------------------------------------------------
class _Events:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], dict[str, Any]] = {}

    def claim(self, *, tenant_id: str, idempotency_key: str, payload_hash: str, event_id: str, workflow_id: str,
              event_type: str, lease_seconds: float, ttl_seconds: float) -> Any:
        from powerx_agent.adapters.events_store import Claim

        found = self.records.get((tenant_id, idempotency_key))
        if found is None:
            record = {"event_id": event_id, "payload_hash": payload_hash, "status": "COMPLETED",
                      "workflow_id": workflow_id}
            self.records[(tenant_id, idempotency_key)] = record
            return Claim("new", record)
        return Claim("conflict" if found["payload_hash"] != payload_hash else "duplicate", found)

    def finish(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Tenants:
    def __init__(self) -> None:
        self.tenant = {"tenant_id": "acme", "status": "active", "name": "Acme", "owner": "o@acme.example",
                       "notify": ["o@acme.example"], "allowed_event_types": ["plugin.job.completed"],
                       "allowed_plugins": ["*"], "idempotency_ttl_hours": 24}

    def get(self, tenant_id: str) -> dict[str, Any] | None:
        return self.tenant if tenant_id == "acme" else None


class _Sink:
    def __init__(self) -> None:
        self.count = 0

    def append(self, entry: Any) -> None:
        self.count += 1

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.count += 1

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self.count += 1
        return {"MessageId": str(self.count)}

    def enabled(self, name: str, context: dict[str, Any] | None = None) -> bool:
        return True


class _Deps:
    def __init__(self) -> None:
        from powerx_agent.settings import load_settings

        self.settings = load_settings()
        self.events, self.tenants, self.audit, self.flags = _Events(), _Tenants(), _Sink(), _Sink()
        self.sqs = _Sink()

    def client(self, service: str) -> Any:
        assert service == "sqs", service
        return self.sqs


def _event(i: int) -> dict[str, Any]:
    return {"version": "0", "id": f"bus-{i}", "source": "powerx.plugins", "detail-type": "plugin.job.completed",
            "time": "2026-11-28T10:00:00Z", "region": "us-east-1", "account": "000000000000", "resources": [],
            "detail": {"tenant_id": "acme", "event_id": f"evt-{i}", "idempotency_key": f"job-{i}:completed",
                       "occurred_at": "2026-11-28T10:00:00Z",
                       "context": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                   "actor": "svc-reporting"},
                       "payload": {"job": {"id": str(i), "type": "report", "rows": 1200, "region": "eu-west-1"}}}}


def ingest_cpu(n: int = EVENTS) -> dict[str, float]:
    from powerx_agent.ingest.service import Ingestor

    deps, metrics = _Deps(), _Sink()
    ingestor = Ingestor(deps, metrics)
    events = [_event(i) for i in range(n)]
    for e in events[:50]:  # warm-up (pydantic, json): excluded
        ingestor.handle(e)
    deps.events.records.clear()
    out: dict[str, float] = {}
    for label in ("new", "duplicate"):
        start = time.process_time()
        for e in events:
            result = ingestor.handle(e)
            assert result.outcome == ("accepted" if label == "new" else "duplicate"), result
        out[label] = (time.process_time() - start) / n * 1000
    rejected = [{**e, "detail": {**e["detail"], "tenant_id": "nobody"}} for e in events[:500]]
    return out | {"n": n, "rejected_sample": len(rejected)}


def run(rows: list[str]) -> None:
    imports = import_times()
    base = imports["python -c pass"]
    net = {name: max(0.0, t - base) for name, t in imports.items()}
    boto = net["import boto3"]
    rows += ["", "## Ingest: cold import and CPU per event", "",
             f"Cold import, fresh interpreter per run, wall-clock median of {RUNS} interleaved runs, interpreter "
             f"start ({base * 1000:.0f} ms) subtracted. Target: the ingest handler module within "
             f"{TARGET_RATIO}× a bare `import boto3`.", "",
             "| case | ms | × import boto3 |", "|---|---:|---:|"]
    for name in CASES:
        if name == "python -c pass":
            continue
        rows.append(f"| {name} | {net[name] * 1000:.0f} | {net[name] / boto:.2f} |")
    ratio = net["import ingest handler"] / boto
    rows += ["", f"Ingest handler import / `import boto3` = **{ratio:.2f}×** "
             f"({'within' if ratio <= TARGET_RATIO else 'over'} the {TARGET_RATIO}× target)."]
    cpu = ingest_cpu()
    rows += ["", f"Ingest step CPU per event (`Ingestor.handle`, {int(cpu['n']):,} events, AWS calls answered by "
             "in-memory fakes, `time.process_time`):", "",
             "| path | CPU ms/event | events/s per core |", "|---|---:|---:|",
             f"| new event (validate, scope, claim, context, audit, queue) | {cpu['new']:.3f} | "
             f"{1000 / cpu['new']:,.0f} |",
             f"| duplicate (validate, scope, claim, audit, count) | {cpu['duplicate']:.3f} | "
             f"{1000 / cpu['duplicate']:,.0f} |"]


def main() -> None:
    sys.path.insert(0, str(REPO / "functions"))
    rows: list[str] = []
    run(rows)
    text = "\n".join(rows) + "\n"
    print(text)
    with open(REPO / "docs" / "benchmarks.md", "a", encoding="utf-8") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
