"""The product's metrics, alarms and dashboard panels, as data: one definition drawn everywhere.

``infra/components/observability.py`` builds the CloudWatch alarms and the CloudWatch dashboard from
it; ``infra/dashboards.py`` writes the Grafana and Datadog twins (docs/grafana/, docs/datadog/) from
it; docs/operations.md lists each item with the spec line it serves. Pure data: no CDK here.

Every metric is read with the service-level dimension set ``{service: powerx-agent}`` that
``adapters/metrics.py`` adds to each EMF document. Expressions are CloudWatch metric math over the
ids of their metrics (ids start with a lowercase letter).
"""

from __future__ import annotations

from dataclasses import dataclass

from powerx_agent import spec

TOP_FAILING_STRATEGIES_QUERY = [
    "fields @timestamp, strategy_id, workflow_id, node_id, status, escalation_reason",
    "filter status in ['FAILED', 'ESCALATED'] and ispresent(strategy_id)",
    "stats count(*) as failures by strategy_id",
    "sort failures desc",
    "limit 10",
]
PERIOD = 300  # dashboards and the per-5-minute alarms
RATE_WINDOW = 900  # rate alarms: "over 15 minutes" (the spec's miss-rate window, used for every rate)


@dataclass(frozen=True)
class Stat:
    id: str
    metric: str  # a key of spec.METRICS
    stat: str  # Sum | Average | SampleCount | Maximum | Minimum | p95


@dataclass(frozen=True)
class Line:
    label: str
    expression: str  # metric math over the ids of ``stats``; a bare id plots that metric
    stats: tuple[Stat, ...]

    @property
    def single(self) -> Stat | None:
        """The metric itself when the line is a bare id (no math)."""
        return self.stats[0] if len(self.stats) == 1 and self.expression == self.stats[0].id else None


@dataclass(frozen=True)
class Target:
    value: float
    label: str


@dataclass(frozen=True)
class Panel:
    title: str
    spec_line: str
    lines: tuple[Line, ...]
    unit: str  # percent | milliseconds | count
    target: Target | None = None


@dataclass(frozen=True)
class AlarmDef:
    name: str  # the alarm is "<prefix>powerx-agent-<name>"
    description: str
    spec_line: str
    line: Line
    period: int
    comparison: str  # GreaterThanThreshold | GreaterThanOrEqualToThreshold | LessThanThreshold
    threshold: float
    treat_missing: str  # notBreaching | ignore | breaching | missing: chosen per alarm, see why
    why_missing: str
    evaluation_periods: int = 1
    datapoints_to_alarm: int = 1

    @property
    def symbol(self) -> str:
        return {"GreaterThanThreshold": ">", "GreaterThanOrEqualToThreshold": "≥", "LessThanThreshold": "<"}[
            self.comparison]


M = spec.METRICS
HIT_RATE = Line("hit rate (%)", "100 * hit", (Stat("hit", "hit_rate", "Average"),))
MISS_RATE = Line("miss rate (%)", "100 * (1 - hit)", (Stat("hit", "hit_rate", "Average"),))
LATENCY_P95 = Line("generation p95 (ms)", "latency", (Stat("latency", "latency", "p95"),))
AUTOMATED = Line("per workflow (%)", "100 * automated / finished",
                 (Stat("automated", "workflow_automated", "Sum"), Stat("finished", "workflow_finished", "Sum")))
NODE_SUCCESS = Line("per node (%)", "100 * ok / (ok + failed)",
                    (Stat("ok", "node_success", "Sum"), Stat("failed", "node_failure", "Sum")))
MANUAL_RATE = Line("manual intervention (%)", "100 * escalations / decisions",
                   (Stat("escalations", "escalations", "Sum"), Stat("decisions", "hit_rate", "SampleCount")))
COMPLETENESS = Line("audit completeness (%)", "completeness", (Stat("completeness", "audit_completeness", "Minimum"),))
BACKLOG = Line("open reviews", "backlog", (Stat("backlog", "review_backlog", "Maximum"),))
LIBRARY_ERRORS = Line("library load errors", "errors", (Stat("errors", "library_errors", "Sum"),))

# The five success metrics of the product specification (docs/operations.md), then what operators need.
PANELS: tuple[Panel, ...] = (
    Panel("Strategy hit rate", "hit rate ≥ 80 %", (HIT_RATE,), "percent", Target(80, "target ≥ 80 %")),
    Panel("Generation latency p95", "generation ≤ 10 s (event.accepted → StartExecution returned)",
          (LATENCY_P95,), "milliseconds", Target(10_000, "target ≤ 10 s")),
    Panel("Automated success", "automated execution success ≥ 95 % (per workflow; the node figure beside it)",
          (AUTOMATED, NODE_SUCCESS), "percent", Target(95, "target ≥ 95 %")),
    Panel("Manual intervention rate", "manual intervention < 10 % (escalations ÷ decisions)", (MANUAL_RATE,),
          "percent", Target(10, "target < 10 %")),
    Panel("Audit completeness", "audit completeness 100 % (published by `powerx-agent audit verify --publish`)",
          (COMPLETENESS,), "percent", Target(100, "target 100 %")),
    Panel("Manual review backlog", "manual backlog > 20 items (alarm)", (BACKLOG,), "count",
          Target(20, "alarm > 20")),
    Panel("Workflows generated and finished", "operators: throughput",
          (Line("generated", "generated", (Stat("generated", "generated", "Sum"),)),
           Line("finished", "finished", (Stat("finished", "workflow_finished", "Sum"),))), "count"),
    Panel("Rejected and duplicate events", "operators: intake (failures, duplicates, rejected events)",
          (Line("rejected", "rejected", (Stat("rejected", "rejected", "Sum"),)),
           Line("duplicates", "duplicates", (Stat("duplicates", "duplicates", "Sum"),))), "count"),
    Panel("Strategy library errors", "operators: the library no longer loads (last known good serves)",
          (LIBRARY_ERRORS,), "count", Target(0, "alarm > 0")),
)

ALARMS: tuple[AlarmDef, ...] = (
    AlarmDef("strategy-miss-rate", "Strategy miss rate above 20 % over 15 minutes: 1 - average of "
             f"{M['hit_rate']} (1 per matched decision, 0 per miss)", "strategy miss rate > 20 % over 15 minutes",
             MISS_RATE, RATE_WINDOW, "GreaterThanThreshold", 20, "notBreaching",
             "no decision in the window is no traffic, not a miss"),
    AlarmDef("manual-intervention-rate", "Manual intervention at or above 10 % of decisions over 15 minutes: "
             f"{M['escalations']} ÷ decisions (SampleCount of {M['hit_rate']})", "manual intervention < 10 %",
             MANUAL_RATE, RATE_WINDOW, "GreaterThanOrEqualToThreshold", 10, "notBreaching",
             "no decision, no rate (the division drops the datapoint)"),
    AlarmDef("automated-success-rate", "Workflows finished without a person below 95 % over 15 minutes: "
             f"{M['workflow_automated']} ÷ {M['workflow_finished']}", "automated execution success ≥ 95 %",
             AUTOMATED, RATE_WINDOW, "LessThanThreshold", 95, "notBreaching",
             "no workflow finished in the window, no rate"),
    AlarmDef("generation-latency-p95", f"Generation latency p95 above 10 s over 5 minutes ({M['latency']}: "
             "event.accepted to StartExecution returned, queue wait included)", "generation ≤ 10 s",
             LATENCY_P95, PERIOD, "GreaterThanThreshold", 10_000, "notBreaching",
             "no workflow generated, nothing slow; low sample counts are evaluated (a slow quiet hour pages too)"),
    AlarmDef("strategy-library-errors", f"The strategy library failed to load ({M['library_errors']}); the "
             "matcher serves the last known good library", "operators: library errors", LIBRARY_ERRORS, PERIOD,
             "GreaterThanThreshold", 0, "notBreaching", "the metric is only emitted on a failed load"),
    AlarmDef("flag-store-errors", f"Feature flags could not be read ({M['flag_store_errors']}); functions serve "
             "the last known flags (docs/operations.md: feature flags)", "operators: feature flags readable",
             Line("flag read failures", "errors", (Stat("errors", "flag_store_errors", "Sum"),)), PERIOD,
             "GreaterThanThreshold", 0, "notBreaching", "the metric is only emitted when a flag read fails"),
    AlarmDef("canary-aborted", f"A strategy canary was aborted ({M['canary_aborted']}), by the audit stream's "
             "verdict or by an operator: the active version decides every event again (docs/runbook.md: a canary "
             "was aborted)", "operators: a new strategy version earns its traffic (canary rollout)",
             Line("canaries aborted", "aborted", (Stat("aborted", "canary_aborted", "Sum"),)), PERIOD,
             "GreaterThanThreshold", 0, "notBreaching", "the metric is only emitted when a canary is aborted"),
    AlarmDef("manual-review-backlog", f"More than 20 manual review items open ({M['review_backlog']}, "
             "emitted every minute)", "manual backlog > 20 items", BACKLOG, PERIOD, "GreaterThanThreshold", 20,
             "ignore", "the gauge is emitted every minute: a gap is the schedule failing, not the backlog "
             "clearing, so it neither resolves nor raises the page (the gauge-missing alarm reports the gap)"),
    AlarmDef("review-backlog-gauge-missing", f"{M['review_backlog']} has not been emitted for 15 minutes: the "
             "backlog schedule or its function is failing, so the backlog alarm is blind",
             "manual backlog > 20 items (its gauge must be there)",
             Line("gauge samples", "samples", (Stat("samples", "review_backlog", "SampleCount"),)), PERIOD,
             "LessThanThreshold", 1, "breaching", "a missing gauge is exactly what this alarm is for"),
)


def alarm_name(prefix: str, alarm: AlarmDef) -> str:
    return f"{prefix}powerx-agent-{alarm.name}"


def metrics_used() -> set[str]:
    """Every spec.METRICS key a panel or an alarm reads."""
    lines = [line for p in PANELS for line in p.lines] + [a.line for a in ALARMS]
    return {s.metric for line in lines for s in line.stats}
