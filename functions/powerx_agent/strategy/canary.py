"""Canary rollout of a strategy version (docs/strategies.md, "Canary rollout"): which arm decides an
event, the live comparison of the two arms, and when the canary is aborted by itself.

Pure logic. The canary's state lives in ``agent_strategies`` (:mod:`powerx_agent.adapters.
strategies_store`); the matcher routes events with :func:`arm_of`; the audit stream tallies each
arm (:mod:`powerx_agent.match.canary`) and applies :func:`verdict`.

- **Arm.** An event of an event type the canary covers (the baseline's event types and the canary
  version's) is in the canary arm when ``bucket(strategy id, idempotency key) < share``, out of
  :data:`BUCKETS`. The bucket is a SHA-256 of the two, so a replay of the same event (same key, or the
  replay tool's fresh ``<key>#replay-<n>``) lands on the same arm, every matcher agrees without coordination, and each event has exactly one arm.
- **Comparison.** Per arm: decisions and hits (hit rate), workflows settled and failed or escalated
  (failure rate), escalations per decision (escalation rate), generation latency (mean and a
  histogram). Each rate comes with a 95 % Wilson interval, the difference canary − baseline with
  Newcombe's interval (method 10, built from the two Wilson intervals), which behaves at 0 % and
  with small counts where the normal approximation does not.
- **Automatic abort.** Once both arms have at least ``min_events`` settled workflows (resp.
  decisions), the canary is aborted when the lower bound of the difference of its failure rate (or
  its escalation rate) over the baseline's exceeds ``margin``: the canary is worse by more than the
  margin with 95 % confidence, not by chance.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

BUCKETS = 10_000
"""Shares are set in hundredths of a percent: ``--canary 10%`` is 1,000 buckets of 10,000."""
Z95 = 1.959963984540054
LATENCY_BOUNDS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
"""Upper bounds (ms) of the generation latency histogram; one more bucket holds what exceeds the last."""
DEFAULT_MARGIN = 0.05
DEFAULT_MIN_EVENTS = 50
MAX_SHARE_PERCENT = 50.0
"""A canary decides at most half the events: beyond that it is the new version, approve it."""


def parse_share(text: str) -> float:
    """``"10%"`` or ``"10"`` or ``"2.5%"`` → percent of events, in (0, :data:`MAX_SHARE_PERCENT`],
    at most two decimals. Raises ValueError with a message for anything else."""
    raw = str(text).strip()
    number = raw[:-1].strip() if raw.endswith("%") else raw
    if not number or len(number) > 8 or not all(c.isdigit() or c == "." for c in number) or number.count(".") > 1:
        raise ValueError(f"canary share {raw[:20]!r} is not a percentage like 10% or 2.5%")
    share = float(number)
    if not 0 < share <= MAX_SHARE_PERCENT or round(share * 100) != share * 100:
        raise ValueError(f"canary share {raw[:20]!r} must be above 0% and at most {MAX_SHARE_PERCENT:g}%, "
                         "in steps of 0.01%")
    return share


REPLAY_MARK = "#replay-"


def original_key(idempotency_key: str) -> str:
    """The key an event was first sent with: a replay with a fresh key (``<key>#replay-<n>``, the
    replay tool's ``--new-key``) lands on the arm of the event it replays. (A key so long that the
    replay tool shortened it keeps only its shortened form.)"""
    base, mark, generation = idempotency_key.rpartition(REPLAY_MARK)
    return base if mark and generation.isdigit() else idempotency_key


def bucket(strategy_id: str, idempotency_key: str) -> int:
    """The event's bucket for ``strategy_id``'s canary, in [0, :data:`BUCKETS`); replays included."""
    digest = hashlib.sha256(f"{strategy_id}\x00{original_key(idempotency_key)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


@dataclass(frozen=True)
class CanaryPlan:
    """A running canary as the revision item holds it (``canaries.<strategy id>``)."""

    strategy_id: str
    version: int
    baseline: int
    percent: float
    started_at: str = ""

    @property
    def threshold(self) -> int:
        return round(self.percent * BUCKETS / 100)

    @classmethod
    def from_item(cls, strategy_id: str, item: dict[str, Any]) -> CanaryPlan:
        return cls(strategy_id, int(item["version"]), int(item["baseline"]), float(item["percent"]),
                   str(item.get("started_at", "")))

    def to_item(self) -> dict[str, Any]:
        return {"version": self.version, "baseline": self.baseline, "percent": self.percent,
                "started_at": self.started_at}


def arm_of(plan: CanaryPlan, idempotency_key: str) -> dict[str, Any]:
    """Which arm decides the event, and why: the record the decision carries (``Decision.arm``)."""
    b = bucket(plan.strategy_id, idempotency_key)
    canary = b < plan.threshold
    why = (f"bucket {b} of {BUCKETS} is {'below' if canary else 'at or above'} {plan.threshold} "
           f"({plan.percent:g}% canary share, from SHA-256 of strategy id and idempotency key)")
    return {"strategy_id": plan.strategy_id, "arm": "canary" if canary else "baseline",
            "version": plan.version if canary else plan.baseline, "canary_version": plan.version,
            "baseline_version": plan.baseline, "percent": plan.percent, "bucket": b, "why": why}


# -- the comparison ---------------------------------------------------------------------------

ARMS = ("canary", "baseline")
COUNTERS = ("decisions", "matched", "started", "succeeded", "failed", "escalated", "latency_ms_sum")
"""What each arm counts (item attributes ``<arm>_<counter>``), plus the latency histogram ``<arm>_lat_<i>``."""


def counter_names() -> list[str]:
    """Every counter attribute of a canary run item (all start at 0)."""
    return [f"{arm}_{name}" for arm in ARMS
            for name in (*COUNTERS, *(f"lat_{i}" for i in range(len(LATENCY_BOUNDS_MS) + 1)))]


def latency_bucket(ms: float) -> int:
    for i, bound in enumerate(LATENCY_BOUNDS_MS):
        if ms <= bound:
            return i
    return len(LATENCY_BOUNDS_MS)


def wilson(successes: int, n: int) -> tuple[float, float] | None:
    """95 % Wilson score interval of a proportion; None without observations."""
    if n <= 0:
        return None
    p = successes / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))  # p inside despite rounding


def difference(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float, float] | None:
    """p1 − p2 with Newcombe's 95 % interval (method 10); None unless both have observations."""
    a, b = wilson(x1, n1), wilson(x2, n2)
    if a is None or b is None:
        return None
    p1, p2 = x1 / n1, x2 / n2
    d = p1 - p2
    low = d - math.sqrt((p1 - a[0]) ** 2 + (b[1] - p2) ** 2)
    high = d + math.sqrt((a[1] - p1) ** 2 + (p2 - b[0]) ** 2)
    return d, low, high


@dataclass
class Arm:
    decisions: int = 0
    matched: int = 0
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    escalated: int = 0
    latency_ms_sum: float = 0.0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))

    @property
    def settled(self) -> int:
        return self.succeeded + self.failed

    @classmethod
    def from_item(cls, item: dict[str, Any], arm: str) -> Arm:
        def count(name: str) -> int:
            return int(item.get(f"{arm}_{name}", 0))

        found = cls(count("decisions"), count("matched"), count("started"), count("succeeded"), count("failed"),
                    count("escalated"), float(item.get(f"{arm}_latency_ms_sum", 0)))
        for i in range(len(found.latency)):
            found.latency[i] = count(f"lat_{i}")
        return found

    def latency_quantile(self, q: float) -> float | None:
        """Upper bound (ms) of the histogram bucket holding the q-quantile; inf beyond the last bound."""
        total = sum(self.latency)
        if not total:
            return None
        rank, seen = math.ceil(q * total), 0
        for i, count in enumerate(self.latency):
            seen += count
            if seen >= rank:
                return float(LATENCY_BOUNDS_MS[i]) if i < len(LATENCY_BOUNDS_MS) else math.inf
        return math.inf

    def rates(self) -> dict[str, Any]:
        def rate(x: int, n: int) -> dict[str, Any]:
            interval = wilson(x, n)
            return {"count": x, "of": n, "rate": round(x / n, 4) if n else None,
                    "ci95": [round(interval[0], 4), round(interval[1], 4)] if interval else None}

        return {"hit_rate": rate(self.matched, self.decisions),
                "success_rate": rate(self.succeeded, self.settled),
                "failure_rate": rate(self.failed, self.settled),
                "escalation_rate": rate(self.escalated, self.decisions),
                "latency_ms": {"count": self.started,
                               "mean": round(self.latency_ms_sum / self.started, 3) if self.started else None,
                               # JSON and DynamoDB hold no infinity: beyond the last bound is null + "beyond"
                               "p50_at_most": _finite(self.latency_quantile(0.5)),
                               "p95_at_most": _finite(self.latency_quantile(0.95)),
                               "beyond": LATENCY_BOUNDS_MS[-1]}}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class Rules:
    """When a canary aborts by itself: worse than the baseline by more than ``margin`` (absolute rate),
    with 95 % confidence, once each arm has ``min_events`` observations."""

    margin: float = DEFAULT_MARGIN
    min_events: int = DEFAULT_MIN_EVENTS


def comparison(canary: Arm, baseline: Arm) -> dict[str, Any]:
    """Both arms' rates and, for each rate, the difference canary − baseline with its interval."""
    out: dict[str, Any] = {"canary": canary.rates(), "baseline": baseline.rates(), "difference": {}}
    pairs = {"hit_rate": ("matched", "decisions"), "success_rate": ("succeeded", "settled"),
             "failure_rate": ("failed", "settled"), "escalation_rate": ("escalated", "decisions")}
    for name, (x, n) in pairs.items():
        found = difference(getattr(canary, x), getattr(canary, n), getattr(baseline, x), getattr(baseline, n))
        out["difference"][name] = ({"value": round(found[0], 4), "ci95": [round(found[1], 4), round(found[2], 4)]}
                                   if found else None)
    return out


def verdict(canary: Arm, baseline: Arm, rules: Rules) -> tuple[bool, str]:
    """(abort?, why). Aborts only on evidence: enough observations in both arms and the lower bound of
    the difference above the margin."""
    reasons = []
    waiting = []
    for name, x, n in (("failure rate", "failed", "settled"), ("escalation rate", "escalated", "decisions")):
        nc, nb = getattr(canary, n), getattr(baseline, n)
        if min(nc, nb) < rules.min_events:
            waiting.append(f"{name}: {nc} canary / {nb} baseline observations, {rules.min_events} needed in each")
            continue
        found = difference(getattr(canary, x), nc, getattr(baseline, x), nb)
        assert found is not None
        d, low, _ = found
        if low > rules.margin:
            reasons.append(f"{name} {getattr(canary, x)}/{nc} vs baseline {getattr(baseline, x)}/{nb}: "
                           f"worse by {d:.1%} (95% CI lower bound {low:.1%} > margin {rules.margin:.1%})")
    if reasons:
        return True, "; ".join(reasons)
    return False, "; ".join(waiting) if waiting else (f"no rate worse than the baseline's by more than the margin "
                                                      f"of {rules.margin:.1%} with 95% confidence")
