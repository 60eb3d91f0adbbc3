"""CloudWatch metric alarms of the SYNTHESIZED TEMPLATE, evaluated the way CloudWatch documents it.

A test helper: it takes every ``AWS::CloudWatch::Alarm`` of the template (single-metric and metric
math alarms alike), the datapoints a run produced, and steps the alarms minute by minute, so a test
can say "this fault puts that alarm in ALARM" about the alarms that are deployed, not about a copy.

The semantics, with their sources (AWS documentation):

- Period, Evaluation Periods (N), Datapoints to Alarm (M), the evaluation range and missing data:
  "Evaluating an alarm" / "How alarm state is evaluated when data is missing",
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html
  (earlier: AlarmThatSendsEmail.html#alarms-evaluating-missing-data).
  * CloudWatch retrieves more datapoints than N, the *evaluation range*; the documented example
    retrieves 5 for N = 3: :data:`RANGE_EXTRA` periods are added to N.
  * N or more real datapoints in the range: the N most recent are evaluated, missing ones are not
    needed and the treatment is ignored.
  * Fewer: every real datapoint of the range is evaluated, the rest filled with the treatment
    (``breaching`` / ``notBreaching``); ALARM when at least M breach, else OK.
  * ``missing`` / ``ignore``: the two tables of that page define the outcome; :func:`_decide`
    implements rules that reproduce every row of both tables (tests/unit/test_alarm_evaluator.py
    checks each row): M breaching real points -> ALARM; a real non-breaching point -> OK; no real
    point -> INSUFFICIENT_DATA (``missing``) or the current state (``ignore``); only breaching
    real points, fewer than M -> the current state (``ignore``), INSUFFICIENT_DATA while the
    newest of them is within the N most recent periods, ALARM once it is older (``missing``).
  * Periods end at the evaluation minute: the documented state-change event evaluated at 11:26:05
    with period 60 lists the datapoints of 11:23, 11:24 and 11:25 (period ``[t-P, t)`` ends at the
    minute the alarm runs). Alarms are evaluated once a minute.
- Percentile alarms and low samples: with ``EvaluateLowSampleCountPercentile = ignore`` the state
  does not change while the evaluated periods hold fewer than 10 / (1 - p) samples (p >= 0.5);
  ``evaluate`` or absent: always evaluated.
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/percentiles-with-low-samples.html
- Statistics: SampleCount, Sum, Average = Sum / SampleCount, Minimum, Maximum, pNN(.NN) "95 percent
  of the data in the period is below this value" (computed here by nearest rank over the raw
  values; CloudWatch's own percentiles are approximations of the same quantity); no percentile when
  any value is negative.
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Statistics-definitions.html
- Metric math: arithmetic treats a missing value as 0 and drops a datapoint divided by zero;
  comparison and logical operators treat a missing value as 0 and yield 0 / 1; ``IF`` follows the
  per-timestamp rules of "Using IF expressions"; ``FILL(ts, S)`` fills every period of the range.
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html
- EMF: ``_aws.Timestamp`` (ms), ``_aws.CloudWatchMetrics[]`` with ``Namespace``, ``Dimensions``
  (each dimension set makes one metric, values from the root) and ``Metrics``; a value is a number
  or an array of numbers, each one raw sample.
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
A metric is identified by namespace, name and its exact dimension set.

What the embedded runtime cannot produce, AWS-published metrics (``AWS/SQS``, ``AWS/Events``), is
sampled from the runtime's resources through the AWS APIs by the caller and handed in as
:class:`Sample` like any other datapoint.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"
RANGE_EXTRA = 2
MAX_EXPRESSION = 1024  # metric math is at most 1024 characters (PutMetricAlarm MetricDataQuery.Expression)
MAX_DEPTH = 32
_COMPARE = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d{1,2})?|100)$")


# ------------------------------------------------------------------------------------------ data
@dataclass(frozen=True)
class Sample:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    at: float  # epoch seconds
    value: float


def dims(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def samples_from_emf(documents: Iterable[dict[str, Any]]) -> list[Sample]:
    out: list[Sample] = []
    for doc in documents:
        meta = doc.get("_aws") if isinstance(doc, dict) else None
        if not isinstance(meta, dict):
            continue
        at = float(meta["Timestamp"]) / 1000
        for directive in meta.get("CloudWatchMetrics", []):
            for dimension_set in directive["Dimensions"]:
                key = tuple(sorted((d, str(doc[d])) for d in dimension_set))
                for metric in directive["Metrics"]:
                    raw = doc[metric["Name"]]
                    for value in raw if isinstance(raw, list) else [raw]:
                        out.append(Sample(directive["Namespace"], metric["Name"], key, at, float(value)))
    return out


def read_emf_documents(logs: Any, log_group: str, since: float | None = None) -> list[dict[str, Any]]:
    """Every EMF document of a CloudWatch Logs group (the embedded runtime ships them there)."""
    kwargs: dict[str, Any] = {"logGroupName": log_group}
    if since is not None:
        kwargs["startTime"] = int(since * 1000)
    documents = []
    for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
        for event in page.get("events", []):
            try:
                doc = json.loads(event["message"])
            except ValueError:
                continue
            if isinstance(doc, dict) and "_aws" in doc:
                documents.append(doc)
    return documents


class MetricStore:
    def __init__(self, samples: Iterable[Sample] = ()) -> None:
        self._series: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[tuple[float, float]]] = {}
        self.add(samples)

    def add(self, samples: Iterable[Sample]) -> None:
        for s in samples:
            self._series.setdefault((s.namespace, s.name, s.dimensions), []).append((s.at, s.value))
        for values in self._series.values():
            values.sort()

    def names(self) -> set[tuple[str, str]]:
        return {(ns, name) for ns, name, _ in self._series}

    def window(self, namespace: str, name: str, dimensions: tuple[tuple[str, str], ...], start: float,
               end: float) -> list[float]:
        values = self._series.get((namespace, name, dimensions), [])
        lo = bisect.bisect_left(values, (start, -math.inf))
        hi = bisect.bisect_left(values, (end, -math.inf))
        return [v for _, v in values[lo:hi]]


def statistic(stat: str, values: list[float]) -> float | None:
    if not values:
        return None
    if stat == "SampleCount":
        return float(len(values))
    if stat == "Sum":
        return float(sum(values))
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Maximum":
        return max(values)
    match = _PERCENTILE.match(stat)
    if match:
        if any(v < 0 for v in values):
            return None  # "Percentile statistics are not available ... when any of the metric values are negative"
        ordered = sorted(values)
        rank = max(1, math.ceil(float(match.group(1)) / 100 * len(ordered)))
        return ordered[rank - 1]
    raise ValueError(f"statistic {stat!r} is not implemented by the evaluator")


# ------------------------------------------------------------------------------------ template
_NAME_PROPERTIES = ("QueueName", "Name", "FunctionName", "TableName", "TopicName", "AlarmName")


def resolve(value: Any, resources: dict[str, Any]) -> str:
    """A dimension value of the template with its intrinsic functions resolved to the deployed name."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            props = resources[arg].get("Properties", {})
            name = next(props[p] for p in _NAME_PROPERTIES if p in props)
            if resources[arg]["Type"] == "AWS::Events::Rule" and props.get("EventBusName"):
                # Ref of a rule on a custom bus is "<bus name>|<rule name>"
                return f"{resolve(props['EventBusName'], resources)}|{resolve(name, resources)}"
            return resolve(name, resources)
        if fn == "Fn::GetAtt":
            return resolve(resources[arg[0]]["Properties"][arg[1]], resources)
        if fn == "Fn::Join":
            sep, parts = arg
            return sep.join(resolve(p, resources) for p in parts)
    raise ValueError(f"cannot resolve {value!r}")


@dataclass(frozen=True)
class MetricStat:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    period: int


@dataclass
class Alarm:
    name: str
    threshold: float
    comparison: str
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing: str
    period: int
    metrics: dict[str, MetricStat]
    expression: str | None  # None: the alarm watches metrics[the only id]
    low_sample: str = "evaluate"
    alarm_actions: list[Any] = field(default_factory=list)
    ok_actions: list[Any] = field(default_factory=list)

    @property
    def percentile(self) -> float | None:
        for metric in self.metrics.values():
            match = _PERCENTILE.match(metric.stat)
            if match:
                return float(match.group(1)) / 100
        return None

    def breaches(self, value: float) -> bool:
        return bool(_COMPARE[self.comparison](value, self.threshold))


def alarms_of(template: dict[str, Any]) -> dict[str, Alarm]:
    """Every CloudWatch alarm of a synthesized template, by AlarmName."""
    resources = template["Resources"]
    out = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        p = resource["Properties"]
        if p["ComparisonOperator"] not in _COMPARE:
            raise ValueError(f"{p['AlarmName']}: {p['ComparisonOperator']} is not implemented by the evaluator")
        if "Metrics" in p:
            metrics: dict[str, MetricStat] = {}
            returned = [q for q in p["Metrics"] if q.get("ReturnData", True)]
            if len(returned) != 1:
                raise ValueError(f"{p['AlarmName']}: exactly one query must return data")
            for q in p["Metrics"]:
                if "MetricStat" in q:
                    ms = q["MetricStat"]
                    metric = ms["Metric"]
                    metrics[q["Id"]] = MetricStat(
                        metric["Namespace"], metric["MetricName"],
                        tuple(sorted((d["Name"], resolve(d["Value"], resources)) for d in metric.get("Dimensions", []))),
                        ms["Stat"], int(ms["Period"]))
            result = returned[0]
            expression = result.get("Expression")
            if expression is None:  # an alarm on one MetricStat given in the Metrics form
                metrics = {result["Id"]: metrics[result["Id"]]}
            periods = {m.period for m in metrics.values()}
            if len(periods) != 1:
                raise ValueError(f"{p['AlarmName']}: every metric of a math alarm must use the same period")
            period = periods.pop()
        else:
            period = int(p["Period"])
            stat = p.get("Statistic") or p["ExtendedStatistic"]
            metrics = {"m": MetricStat(p["Namespace"], p["MetricName"],
                                       tuple(sorted((d["Name"], resolve(d["Value"], resources))
                                                    for d in p.get("Dimensions", []))), stat, period)}
            expression = None
        n = int(p["EvaluationPeriods"])
        out[p["AlarmName"]] = Alarm(
            name=p["AlarmName"], threshold=float(p["Threshold"]), comparison=p["ComparisonOperator"],
            evaluation_periods=n, datapoints_to_alarm=int(p.get("DatapointsToAlarm", n)),
            treat_missing=p.get("TreatMissingData", "missing"), period=period, metrics=metrics,
            expression=expression, low_sample=p.get("EvaluateLowSampleCountPercentile", "evaluate"),
            alarm_actions=p.get("AlarmActions", []), ok_actions=p.get("OKActions", []))
    return out


# ---------------------------------------------------------------------------------- metric math
Series = dict[float, float]  # period end -> value
Value = float | Series

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|==|!=|&&|\|\||[-+*/^(),<>]))")


def _tokens(text: str) -> list[str]:
    if len(text) > MAX_EXPRESSION:
        raise ValueError(f"expression longer than {MAX_EXPRESSION} characters")
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"unexpected character at {pos} in {text!r}")
        out.append(next(g for g in match.groups() if g is not None))
        pos = match.end()
    return out


def _binary(op: str, a: Value, b: Value) -> Value:
    def apply(x: float, y: float) -> float | None:
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op == "/":
            return None if y == 0 else x / y  # "the data point is dropped"
        if op == "^":
            return x ** y
        if op in ("AND", "&&"):
            return float(bool(x) and bool(y))
        if op in ("OR", "||"):
            return float(bool(x) or bool(y))
        return float({">": x > y, "<": x < y, ">=": x >= y, "<=": x <= y, "==": x == y, "!=": x != y}[op])

    if not isinstance(a, dict) and not isinstance(b, dict):
        result = apply(a, b)
        if result is None:
            raise ValueError("division by zero between scalars")
        return result
    keys = set(a) if isinstance(a, dict) else set()
    keys |= set(b) if isinstance(b, dict) else set()
    out: Series = {}
    for k in keys:
        # arithmetic: "Missing values in a time series are treated as 0"; comparisons: the same
        x = a.get(k, 0.0) if isinstance(a, dict) else a
        y = b.get(k, 0.0) if isinstance(b, dict) else b
        value = apply(x, y)
        if value is not None:
            out[k] = value
    return out


class _Parser:
    def __init__(self, text: str, variables: dict[str, Series], periods: list[float]) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.variables = variables
        self.periods = periods
        self.depth = 0

    def parse(self) -> Value:
        value = self._or()
        if self.pos != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.pos]!r}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> str:
        token = self._peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"expected {expected or 'a token'}, found {token!r}")
        self.pos += 1
        return token

    def _nested(self, fn: Callable[[], Value]) -> Value:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ValueError("expression nested too deeply")
        try:
            return fn()
        finally:
            self.depth -= 1

    def _left_assoc(self, ops: tuple[str, ...], operand: Callable[[], Value]) -> Value:
        value = operand()
        while self._peek() in ops:
            op = self._take()
            value = _binary(op, value, operand())
        return value

    def _or(self) -> Value:
        return self._left_assoc(("OR", "||"), self._and)

    def _and(self) -> Value:
        return self._left_assoc(("AND", "&&"), self._compare)

    def _compare(self) -> Value:
        return self._left_assoc((">", "<", ">=", "<=", "==", "!="), self._sum)

    def _sum(self) -> Value:
        return self._left_assoc(("+", "-"), self._product)

    def _product(self) -> Value:
        return self._left_assoc(("*", "/"), self._power)

    def _power(self) -> Value:
        return self._left_assoc(("^",), self._unary)

    def _unary(self) -> Value:
        if self._peek() == "-":
            self._take()
            return _binary("*", -1.0, self._nested(self._unary))
        return self._primary()

    def _primary(self) -> Value:
        token = self._take()
        if token == "(":
            value = self._nested(self._or)
            self._take(")")
            return value
        if re.fullmatch(r"\d+(?:\.\d+)?", token):
            return float(token)
        if self._peek() == "(" and token.isupper():
            self._take("(")
            args = [self._nested(self._or)]
            while self._peek() == ",":
                self._take(",")
                args.append(self._nested(self._or))
            self._take(")")
            return self._call(token, args)
        if token in self.variables:
            return dict(self.variables[token])
        raise ValueError(f"unknown id or function {token!r}")

    def _call(self, name: str, args: list[Value]) -> Value:
        if name == "IF":
            return _if(*args)
        if name == "FILL" and len(args) == 2 and isinstance(args[0], dict) and not isinstance(args[1], dict):
            return {k: args[0].get(k, args[1]) for k in self.periods}
        raise ValueError(f"function {name} is not implemented by the evaluator")


def _if(cond: Value, true: Value, false: Value | None = None) -> Value:
    """``IF(condition, trueValue[, falseValue])`` as "Using IF expressions" defines it per timestamp."""
    if not isinstance(cond, dict):
        chosen = true if cond else false
        return {} if chosen is None else chosen
    out: Series = {}
    for k, c in cond.items():
        if c:
            out[k] = true.get(k, 0.0) if isinstance(true, dict) else true
        elif false is None:
            continue  # dropped
        elif isinstance(false, dict):
            if k in false:
                out[k] = false[k]
        else:
            out[k] = false
    return out


def evaluate_expression(text: str, variables: dict[str, Series], periods: list[float]) -> Series:
    value = _Parser(text, variables, periods).parse()
    if not isinstance(value, dict):
        raise ValueError(f"{text!r} yields a scalar; an alarm needs a time series")
    return value


# ---------------------------------------------------------------------------------- evaluation
@dataclass
class Evaluation:
    at: float
    state: str
    values: list[tuple[float, float]]  # (period end, value), most recent first, within the range
    reason: str


def datapoints(alarm: Alarm, store: MetricStore, ends: list[float]) -> tuple[Series, int]:
    """The alarm's datapoint per period end (missing ones absent) and the raw sample count of the N
    most recent periods (for the low-sample rule of percentile alarms)."""
    n_recent = set(ends[:alarm.evaluation_periods])
    series: dict[str, Series] = {}
    samples = 0
    for mid, metric in alarm.metrics.items():
        s: Series = {}
        for end in ends:
            values = store.window(metric.namespace, metric.name, metric.dimensions, end - metric.period, end)
            if end in n_recent:
                samples += len(values)
            value = statistic(metric.stat, values)
            if value is not None:
                s[end] = value
        series[mid] = s
    if alarm.expression is None:
        return next(iter(series.values())), samples
    return evaluate_expression(alarm.expression, series, ends), samples


def _decide(alarm: Alarm, existing: list[tuple[int, bool]], previous: str) -> tuple[str, str]:
    """``existing``: (index of the period, 0 = most recent; breaching) of each real datapoint of the
    evaluation range, most recent first."""
    n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm
    if len(existing) >= n:
        breaching = sum(b for _, b in existing[:n])
        return (ALARM if breaching >= m else OK), f"{breaching} of the {n} most recent datapoints breach"
    count, breaching = len(existing), sum(b for _, b in existing)
    missing = n - count
    if alarm.treat_missing == "breaching":
        return (ALARM if breaching + missing >= m else OK), f"{breaching} breach + {missing} missing as breaching"
    if alarm.treat_missing == "notBreaching":
        return (ALARM if breaching >= m else OK), f"{breaching} breach, {missing} missing as not breaching"
    if breaching >= m:
        return ALARM, f"{breaching} real datapoints breach"
    if count > breaching:
        return OK, f"{count - breaching} real datapoint(s) within the threshold"
    if alarm.treat_missing == "ignore":
        return previous, f"{missing} missing datapoint(s) ignored: state kept"
    if count == 0:
        return INSUFFICIENT, "no datapoint in the evaluation range"
    newest = existing[0][0]
    if newest >= n:
        return ALARM, "only breaching datapoints, none newer in the evaluation periods"
    return INSUFFICIENT, "too few datapoints to decide"


def evaluate(alarm: Alarm, store: MetricStore, at: float, previous: str = INSUFFICIENT) -> Evaluation:
    now = math.floor(at / 60) * 60
    ends = [now - k * alarm.period for k in range(alarm.evaluation_periods + RANGE_EXTRA)]
    series, samples = datapoints(alarm, store, ends)
    p = alarm.percentile
    values = [(end, series[end]) for end in ends if end in series]
    if p is not None and alarm.low_sample == "ignore":
        needed = 10 / (1 - p) if p >= 0.5 else 10 / p
        if samples < needed:
            return Evaluation(at, previous, values, f"{samples} samples < {needed:g}: low sample count ignored")
    existing = [(ends.index(end), alarm.breaches(v)) for end, v in values]
    state, reason = _decide(alarm, existing, previous)
    return Evaluation(at, state, values, reason)


@dataclass
class Timeline:
    alarm: Alarm
    evaluations: list[Evaluation]

    @property
    def states(self) -> list[str]:
        return [e.state for e in self.evaluations]

    @property
    def final(self) -> str:
        return self.evaluations[-1].state

    def ever(self, state: str) -> bool:
        return state in self.states

    def transitions(self) -> list[tuple[float, str, str]]:
        out, before = [], INSUFFICIENT
        for e in self.evaluations:
            if e.state != before:
                out.append((e.at, before, e.state))
                before = e.state
        return out


def run(alarms: dict[str, Alarm], store: MetricStore, start: float, end: float, step: float = 60) -> dict[str, Timeline]:
    """Evaluate every alarm once a minute from ``start`` to ``end`` (inclusive), each keeping its state."""
    out = {}
    for name, alarm in alarms.items():
        state, evaluations = INSUFFICIENT, []
        t = start
        while t <= end + 1e-9:
            e = evaluate(alarm, store, t, state)
            evaluations.append(e)
            state = e.state
            t += step
        out[name] = Timeline(alarm, evaluations)
    return out
