"""``powerx-agent cost``: a run's counted calls → dollars per million events, per service, beside the
same model for a hand-wired pipeline (docs/cost.md).

Inputs (a *profile*, per accepted event, from :class:`powerx_agent.local.meter.Meter` and the
execution histories of the run): requests by service and operation, DynamoDB write and read request
units (items sized with DynamoDB's rules, index writes included), Lambda invocations per function,
Step Functions state transitions (Standard) and executions (Express), log bytes.

What a run on the embedded runtime cannot measure is modelled, and the model is printed with the
result: how long each Lambda runs on AWS (dominated by the downstream call a node makes, the same
for the product and the anchor) and how long an Express execution lasts. Prices are the us-east-1
list prices of :data:`PRICES`, checked on :data:`PRICES_CHECKED` against the pages cited there.

Pure arithmetic: no AWS calls, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PRICES_CHECKED = "2026-12-04"
REGION = "us-east-1"


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str
    note: str = ""


PRICES: dict[str, Price] = {
    "eventbridge_event": Price(1.00 / 1e6, "custom event put on a bus (per 64 KB chunk)",
                               "https://aws.amazon.com/eventbridge/pricing/",
                               "rule matching and delivery to AWS targets are not charged separately"),
    "lambda_request": Price(0.20 / 1e6, "Lambda request", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_second": Price(0.0000166667, "Lambda GB-second (x86, first 6 billion GB-s/month)",
                              "https://aws.amazon.com/lambda/pricing/",
                              "the figure used in the page's own examples; also "
                              "https://docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/lambda.html"),
    "sqs_request": Price(0.40 / 1e6, "SQS standard request (per 64 KB chunk)", "https://aws.amazon.com/sqs/pricing/"),
    "ddb_wru": Price(0.625 / 1e6, "DynamoDB on-demand write request unit (1 KB)",
                     "https://aws.amazon.com/dynamodb/pricing/on-demand/",
                     "after the 2024-11-01 on-demand price cut; the page renders its rates client-side, the "
                     "figure was read from https://airbyte.com/data-engineering-resources/dynamodb-pricing"),
    "ddb_rru": Price(0.125 / 1e6, "DynamoDB on-demand read request unit (4 KB strongly consistent, 2 × 4 KB "
                     "eventually consistent)", "https://aws.amazon.com/dynamodb/pricing/on-demand/",
                     "same as the write unit; stream reads by Lambda triggers are free"),
    "sfn_transition": Price(0.025 / 1000, "Step Functions Standard state transition (retries count)",
                            "https://aws.amazon.com/step-functions/pricing/"),
    "sfn_express_request": Price(1.00 / 1e6, "Step Functions Express execution started",
                                 "https://aws.amazon.com/step-functions/pricing/"),
    "sfn_express_gb_second": Price(0.06 / 3600, "Express GB-second (first 1,000 GB-hours/month; 64 MB chunks, "
                                   "100 ms rounding)", "https://aws.amazon.com/step-functions/pricing/",
                                   "$0.06 per GB-hour = $0.00001667 per GB-second"),
    "logs_gb": Price(0.50, "CloudWatch Logs ingestion per GB (standard class; also the first tier of vended "
                     "logs such as Step Functions logging)", "https://aws.amazon.com/cloudwatch/pricing/",
                     "read from https://c3x.dev/blog/cloudwatch-logs-cost-optimization (us-east-1, 2026)"),
}


@dataclass(frozen=True)
class Assumptions:
    """What the embedded runtime cannot measure. The node and task durations are the same for the
    product and the anchor: both make the same downstream calls."""

    downstream_ms: float = 100.0  # one plugin / notification call on AWS
    handler_overhead_ms: float = 15.0  # our code + a few DynamoDB calls around it
    ingest_ms: float = 30.0
    matcher_batch_ms: float = 150.0  # a batch of 10 (decide, compile cached, start)
    workflow_action_ms: float = 25.0  # complete / skip / escalate
    audit_stream_batch_ms: float = 60.0
    express_overhead_ms: float = 30.0  # per state entered
    lambda_platform_log_bytes: int = 330  # START, END and REPORT lines of one invocation, as metered
    sfn_log_bytes_per_event: int = 330  # one Step Functions log record without execution data, as metered
    xray_sampled: float = 0.0  # share of executions traced (0: tracing off or not counted)

    def node_ms(self) -> float:
        return self.downstream_ms + self.handler_overhead_ms


@dataclass
class Line:
    service: str
    item: str
    quantity: float  # per event
    unit_usd: float

    @property
    def per_million(self) -> float:
        return self.quantity * self.unit_usd * 1e6


@dataclass
class Bill:
    name: str
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, service: str, item: str, quantity: float, price: str) -> None:
        if quantity:
            self.lines.append(Line(service, item, quantity, PRICES[price].usd))

    def by_service(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in self.lines:
            out[line.service] = out.get(line.service, 0.0) + line.per_million
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    @property
    def total(self) -> float:
        return sum(line.per_million for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "per_million_usd": round(self.total, 2),
                "by_service": {k: round(v, 2) for k, v in self.by_service().items()},
                "lines": [{"service": ln.service, "item": ln.item, "per_event": round(ln.quantity, 4),
                           "per_million_usd": round(ln.per_million, 3)} for ln in self.lines],
                "notes": self.notes}


def _lambda(bill: Bill, name: str, invocations: float, ms: float, memory_mb: int, a: Assumptions) -> None:
    bill.add("Lambda", f"{name}: requests", invocations, "lambda_request")
    bill.add("Lambda", f"{name}: {ms:g} ms at {memory_mb} MB", invocations * ms / 1000 * memory_mb / 1024,
             "lambda_gb_second")
    bill.add("CloudWatch Logs", f"{name}: platform log lines", invocations * a.lambda_platform_log_bytes / 1e9,
             "logs_gb")


def _express(bill: Bill, executions: float, states: float, lambda_ms: float, a: Assumptions) -> None:
    seconds = math.ceil((lambda_ms + states * a.express_overhead_ms) / 100) / 10  # rounded up to 100 ms
    bill.add("Step Functions", "Express executions", executions, "sfn_express_request")
    bill.add("Step Functions", f"Express duration ({seconds:g} s at 64 MB)", executions * seconds * 64 / 1024,
             "sfn_express_gb_second")


def product_bill(profile: dict[str, Any], a: Assumptions | None = None,
                 memory: dict[str, int] | None = None) -> Bill:
    """The product's cost per million accepted events from a measured ``profile``
    (:func:`powerx_agent.local.meter.Meter.per_event` plus ``"sfn"``, see :mod:`powerx_agent.local.meter`)."""
    a = a or Assumptions()
    memory = memory or {}
    bill = Bill("product")
    requests = profile.get("requests", {})
    bill.add("EventBridge", "events put on the bus", 1.0, "eventbridge_event")
    lambdas = profile.get("lambda", {})
    durations = {"ingest": a.ingest_ms, "matcher": a.matcher_batch_ms, "node-plugin": a.node_ms(),
                 "node-notify": a.node_ms(), "node-review": a.node_ms(), "workflow": a.workflow_action_ms,
                 "audit-stream": a.audit_stream_batch_ms}
    for function, seen in lambdas.items():
        short = function.removeprefix("powerx-agent-")
        _lambda(bill, short, float(seen["invocations"]), durations.get(short, a.handler_overhead_ms),
                memory.get(short, 512), a)
    matcher_batches = float(lambdas.get("powerx-agent-matcher", {}).get("invocations", 0.0))
    # SQS: every send, one receive and one batch delete per matcher batch (Lambda's poller long-polls:
    # its empty receives are a few per minute per queue, not per event)
    sends = sum(v for k, v in requests.items() if k.startswith("sqs:Send"))
    bill.add("SQS", "SendMessage", sends, "sqs_request")
    bill.add("SQS", "ReceiveMessage + DeleteMessageBatch (per batch)", 2 * matcher_batches, "sqs_request")
    bill.add("DynamoDB", "write request units (tables)", float(profile.get("wru", 0.0)), "ddb_wru")
    bill.add("DynamoDB", "write request units (indexes)", float(profile.get("index_wru", 0.0)), "ddb_wru")
    bill.add("DynamoDB", "read request units", float(profile.get("rru", 0.0)), "ddb_rru")
    sfn = profile.get("sfn", {})
    bill.add("Step Functions", "Standard state transitions", float(sfn.get("standard_transitions", 0.0)),
             "sfn_transition")
    express = float(sfn.get("express_executions", 0.0))
    if express:
        critical_ms = (float(sfn.get("express_critical_nodes", 0.0)) * a.node_ms()
                       + float(sfn.get("express_critical_actions", 0.0)) * a.workflow_action_ms)
        _express(bill, express, float(sfn.get("express_states", 0.0)) / express, critical_ms / express, a)
    bill.add("CloudWatch Logs", "audit trail + EMF metrics shipped", float(profile.get("log_bytes", 0.0)) / 1e9,
             "logs_gb")
    history = float(sfn.get("logged_history_events", 0.0))
    bill.add("CloudWatch Logs", "Step Functions execution logs", history * a.sfn_log_bytes_per_event / 1e9,
             "logs_gb")
    bill.notes.append(f"SQS receives counted per matcher batch ({matcher_batches:.2f} per event), not the embedded "
                      "poller's empty polls")
    return bill


def anchor_bill(a: Assumptions | None = None, memory_mb: int = 512, tasks: int = 3) -> Bill:
    """The hand-wired pipeline: an EventBridge rule starts an Express machine that runs ``tasks`` task
    Lambdas (render, then archive ∥ notify for C-1). No idempotency, no audit, no logging beyond
    Lambda's own lines."""
    a = a or Assumptions()
    bill = Bill("hand-wired anchor")
    bill.add("EventBridge", "events put on the bus", 1.0, "eventbridge_event")
    _lambda(bill, "task", float(tasks), a.node_ms(), memory_mb, a)
    critical = 2 * a.node_ms()  # render, then the parallel pair
    _express(bill, 1.0, tasks + 1, critical, a)
    bill.notes.append("rule → Express machine → 3 task Lambdas (same downstream calls and memory as the "
                      "product's nodes); no idempotency, no audit trail, no execution logging")
    return bill


def compare(product: Bill, anchor: Bill) -> dict[str, Any]:
    services = list(dict.fromkeys([*product.by_service(), *anchor.by_service()]))
    p, an = product.by_service(), anchor.by_service()
    return {"rows": [{"service": s, "product": round(p.get(s, 0.0), 2), "anchor": round(an.get(s, 0.0), 2)}
                     for s in services],
            "product": round(product.total, 2), "anchor": round(anchor.total, 2),
            "ratio": round(product.total / anchor.total, 2) if anchor.total else None}


def price_table_markdown() -> str:
    rows = ["| item | us-east-1 price | source | note |", "|---|---:|---|---|"]
    for price in PRICES.values():
        scaled = f"${price.usd * 1e6:,.4g} per million" if price.usd < 0.001 else f"${price.usd:g}"
        rows.append(f"| {price.unit} | {scaled} | {price.source} | {price.note} |")
    return "\n".join(rows)
