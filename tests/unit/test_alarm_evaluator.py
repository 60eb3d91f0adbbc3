"""The alarm evaluator (tests/cloudwatch_alarms.py) against AWS's own documented examples.

Each row of the two tables of "How alarm state is evaluated when data is missing"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html), the metric
math examples of "Using metric math" (comparison operators, IF) and the EMF document structure.
In a row, the leftmost datapoint is the oldest: "0" within the threshold, "X" breaching, "-" missing.
"""

from __future__ import annotations

import pytest

from cloudwatch_alarms import (
    ALARM,
    INSUFFICIENT,
    OK,
    Alarm,
    MetricStat,
    MetricStore,
    Sample,
    alarms_of,
    dims,
    evaluate,
    evaluate_expression,
    run,
    samples_from_emf,
    statistic,
)

NOW = 1_800_000_000.0  # a whole minute
PERIOD = 300
RETAIN = "retain"


def alarm(n: int, m: int, treat: str, *, stat: str = "Maximum", expression: str | None = None,
          low_sample: str = "evaluate", metrics: dict[str, MetricStat] | None = None) -> Alarm:
    return Alarm(name="a", threshold=0, comparison="GreaterThanThreshold", evaluation_periods=n,
                 datapoints_to_alarm=m, treat_missing=treat, period=PERIOD,
                 metrics=metrics or {"m": MetricStat("NS", "metric", (), stat, PERIOD)}, expression=expression,
                 low_sample=low_sample)


def store_of(row: str, name: str = "metric") -> MetricStore:
    """Five periods, oldest first, ending at NOW: 'X' breaching (1), '0' within (0), '-' missing."""
    points = row.split()
    samples = []
    for i, point in enumerate(points):
        end = NOW - (len(points) - 1 - i) * PERIOD
        if point != "-":
            samples.append(Sample("NS", name, (), end - PERIOD / 2, 1.0 if point == "X" else 0.0))
    return MetricStore(samples)


TABLE_3_OF_3 = [  # Datapoints to Alarm 3, Evaluation Periods 3: MISSING, IGNORE, BREACHING, NOT BREACHING
    ("0 - X - X", OK, OK, OK, OK),
    ("0 - - - -", OK, OK, OK, OK),
    ("- - - - -", INSUFFICIENT, RETAIN, ALARM, OK),
    ("0 X X - X", ALARM, ALARM, ALARM, ALARM),
    ("- - - - X", INSUFFICIENT, RETAIN, ALARM, OK),
    ("X - - - -", ALARM, RETAIN, ALARM, OK),
]
TABLE_2_OF_3 = [  # Datapoints to Alarm 2, Evaluation Periods 3
    ("0 - X - X", ALARM, ALARM, ALARM, ALARM),
    ("0 0 X 0 X", ALARM, ALARM, ALARM, ALARM),
    ("0 - X - -", OK, OK, ALARM, OK),
    ("- - - - 0", OK, OK, ALARM, OK),
    ("- - - - X", INSUFFICIENT, RETAIN, ALARM, OK),
]


@pytest.mark.parametrize(("m", "row", "expected"),
                         [(3, r[0], r[1:]) for r in TABLE_3_OF_3] + [(2, r[0], r[1:]) for r in TABLE_2_OF_3])
def test_given_a_row_of_the_documented_missing_data_tables_when_evaluated_then_the_documented_state(m, row, expected):
    store = store_of(row)
    for treat, want in zip(("missing", "ignore", "breaching", "notBreaching"), expected, strict=True):
        for previous in (OK, ALARM):
            got = evaluate(alarm(3, m, treat), store, NOW, previous).state
            assert got == (previous if want == RETAIN else want), (row, treat, previous)


def test_given_periods_when_evaluated_then_they_end_at_the_minute_the_alarm_runs():
    # the documented state-change example: evaluated at 11:26:05 with period 60, datapoints 11:23, 11:24, 11:25
    # (a datapoint is labelled with the start of its period)
    a = Alarm("a", 0, "GreaterThanThreshold", 3, 3, "missing", 60,
              {"m": MetricStat("NS", "metric", (), "Sum", 60)}, None)
    store = MetricStore([Sample("NS", "metric", (), NOW - 60 * k + 30, 20000.0) for k in (1, 2, 3)])
    store.add([Sample("NS", "metric", (), NOW + 2, -5.0)])  # in the minute still running: not evaluated
    result = evaluate(a, store, NOW + 5)
    assert [end - 60 for end, _ in result.values] == [NOW - 60, NOW - 120, NOW - 180]
    assert [v for _, v in result.values] == [20000.0] * 3
    assert result.state == ALARM


def test_given_statistics_when_computed_then_they_follow_the_statistics_definitions():
    values = [float(v) for v in range(1, 101)]
    assert statistic("SampleCount", values) == 100
    assert statistic("Sum", values) == 5050
    assert statistic("Average", values) == 50.5
    assert (statistic("Minimum", values), statistic("Maximum", values)) == (1, 100)
    assert statistic("p95", values) == 95  # 95 % of the values are at or below it
    assert statistic("p99.5", values) == 100
    assert statistic("p95", [1.0, -2.0]) is None  # not available when a value is negative
    assert statistic("Sum", []) is None


def test_given_a_percentile_alarm_with_low_samples_ignored_when_evaluated_then_the_state_does_not_change():
    a = alarm(1, 1, "notBreaching", stat="p95", low_sample="ignore")
    few = MetricStore([Sample("NS", "metric", (), NOW - 10, 5.0)] * 10)
    assert evaluate(a, few, NOW, OK).state == OK  # 10 < 10 / (1 - 0.95) = 200 samples
    many = MetricStore([Sample("NS", "metric", (), NOW - 10, 5.0)] * 200)
    assert evaluate(a, many, NOW, OK).state == ALARM
    assert evaluate(alarm(1, 1, "notBreaching", stat="p95"), few, NOW, OK).state == ALARM  # "evaluate"


def test_given_the_documented_comparison_examples_when_evaluated_then_the_documented_output():
    periods = [1.0, 2.0, 3.0, 4.0]
    m1 = {1.0: 30.0, 2.0: 20.0, 3.0: 0.0, 4.0: 0.0}
    m2 = {1.0: 20.0, 3.0: 20.0}  # [20, -, 20, -]
    variables = {"metric1": m1, "metric2": m2}
    assert evaluate_expression("(metric1 < metric2)", variables, periods) == {1.0: 0, 2.0: 0, 3.0: 1, 4.0: 0}
    assert evaluate_expression("(metric1 >= 30)", variables, periods) == {1.0: 1, 2.0: 0, 3.0: 0, 4.0: 0}
    assert evaluate_expression("(metric1 > 15 AND metric2 > 15)", variables, periods) == {
        1.0: 1, 2.0: 0, 3.0: 0, 4.0: 0}


def test_given_the_documented_if_examples_when_evaluated_then_the_documented_output():
    periods = [1.0, 2.0, 3.0, 4.0, 5.0]
    variables = {"metric1": {1.0: 1, 2.0: 1, 3.0: 0, 4.0: 0},  # [1, 1, 0, 0, -]
                 "metric2": {1.0: 30, 3.0: 0, 4.0: 0, 5.0: 30},  # [30, -, 0, 0, 30]
                 "metric3": {1.0: 0, 2.0: 0, 3.0: 20, 5.0: 20}}  # [0, 0, 20, -, 20]
    assert evaluate_expression("IF(metric1, metric2, metric3)", variables, periods) == {1.0: 30, 2.0: 0, 3.0: 20}
    assert evaluate_expression("IF(metric1, 5, metric3)", variables, periods) == {1.0: 5, 2.0: 5, 3.0: 20}
    assert evaluate_expression("IF(metric1, metric2, 5)", variables, periods) == {1.0: 30, 2.0: 0, 3.0: 5, 4.0: 5}


def test_given_arithmetic_when_a_value_is_missing_or_divided_by_zero_then_zero_or_dropped():
    variables = {"a": {1.0: 4.0, 2.0: 6.0}, "b": {1.0: 2.0, 3.0: 0.0}}
    assert evaluate_expression("a + b", variables, [1.0, 2.0, 3.0]) == {1.0: 6.0, 2.0: 6.0, 3.0: 0.0}
    assert evaluate_expression("100 * a / b", variables, [1.0, 2.0, 3.0]) == {1.0: 200.0}  # 6/0 and 0/0 dropped
    assert evaluate_expression("FILL(b, 7)", variables, [1.0, 2.0, 3.0]) == {1.0: 2.0, 2.0: 7.0, 3.0: 0.0}
    with pytest.raises(ValueError):
        evaluate_expression("ANOMALY_DETECTION_BAND(a)", variables, [1.0])  # not silently wrong
    with pytest.raises(ValueError):
        evaluate_expression("(" * 40 + "a" + ")" * 40, variables, [1.0])


def test_given_a_math_alarm_when_run_over_time_then_it_alarms_and_recovers():
    metrics = {"failures": MetricStat("NS", "f", (), "Sum", PERIOD), "total": MetricStat("NS", "t", (), "Sum", PERIOD)}
    a = alarm(1, 1, "notBreaching", expression="100 * failures / total", metrics=metrics)
    a.threshold = 10
    store = MetricStore([Sample("NS", "t", (), NOW - 100, 10.0), Sample("NS", "f", (), NOW - 100, 2.0)])
    timeline = run({"a": a}, store, NOW, NOW + 900)["a"]
    assert timeline.states[0] == ALARM  # 20 % > 10 %
    # "alarms may repeatedly re-evaluate the last set of data points ... after the metric has stopped
    # flowing": the breaching datapoint counts while it is within the evaluation range (3 periods) ...
    assert timeline.states[:11] == [ALARM] * 11
    assert timeline.final == OK  # ... then nothing is left, and missing data is not breaching
    assert [t[1:] for t in timeline.transitions()] == [(INSUFFICIENT, ALARM), (ALARM, OK)]


def test_given_an_emf_document_when_read_then_one_sample_per_value_and_dimension_set():
    doc = {"_aws": {"Timestamp": int(NOW * 1000), "CloudWatchMetrics": [{
        "Namespace": "PowerX/Agent", "Dimensions": [["tenant", "service"], ["service"]],
        "Metrics": [{"Name": "agent.workflow.latency_p95", "Unit": "Milliseconds"}]}]},
        "tenant": "acme", "service": "powerx-agent", "agent.workflow.latency_p95": [12.5, 40.0]}
    samples = samples_from_emf([doc, {"not": "emf"}])
    assert {(s.dimensions, s.value) for s in samples} == {
        (dims(service="powerx-agent", tenant="acme"), 12.5), (dims(service="powerx-agent", tenant="acme"), 40.0),
        (dims(service="powerx-agent"), 12.5), (dims(service="powerx-agent"), 40.0)}
    assert all(s.at == NOW for s in samples)


def test_given_a_template_alarm_when_read_then_intrinsics_resolve_to_deployed_names():
    template = {"Resources": {
        "Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "dlq"}},
        "A": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "AlarmName": "dlq-depth", "ComparisonOperator": "GreaterThanThreshold", "Threshold": 0,
            "EvaluationPeriods": 1, "Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["Q", "QueueName"]}}],
            "Statistic": "Maximum", "Period": 300}}}}
    parsed = alarms_of(template)["dlq-depth"]
    assert parsed.metrics["m"].dimensions == (("QueueName", "dlq"),)
    assert parsed.treat_missing == "missing" and parsed.datapoints_to_alarm == 1
