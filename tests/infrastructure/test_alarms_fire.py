"""The alarms fire when they should: every alarm of the SYNTHESIZED TEMPLATE, evaluated with CloudWatch's
documented semantics (tests/cloudwatch_alarms.py) over the EMF datapoints a fault-injection run emits on the
embedded runtime.

Each scenario runs on a fresh stack (``LocalRuntime.restart``), so levels (queue depths, the review backlog)
start from zero. The backlog schedule is fired for every minute the alarms look at, as EventBridge would:
the 15 minutes before the run (the schedule runs since deployment), each minute of the run, and, for the
stuck backlog, 30 minutes after it. AWS-published metrics are sampled from the runtime's resources: each
dead-letter queue's ApproximateNumberOfMessagesVisible, and the unrouted rule's MatchedEvents as the
messages that arrived in its target queue.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import pytest

from cloudwatch_alarms import (
    ALARM,
    MetricStore,
    Sample,
    Timeline,
    alarms_of,
    dims,
    read_emf_documents,
    run,
    samples_from_emf,
)
from powerx_agent import spec
from powerx_agent.adapters.dynamo import to_item
from powerx_agent.adapters.metrics import LogShipper
from powerx_agent.deps import get_deps

MINUTE = 60
A = "powerx-agent-"
DLQS = [q.name for q in spec.QUEUES if q.max_receive_count is None]


def body(uid: str, i: int, **payload: Any) -> dict[str, Any]:
    return {"tenant_id": "acme", "event_id": f"evt-{uid}-{i}", "idempotency_key": f"key-{uid}-{i}",
            "occurred_at": "2026-11-28T10:00:00Z", "context": {"actor": "alarm-tests"},
            "payload": payload or {"job": {"id": f"{uid}-{i}", "type": "report", "rows": 10}}}


class FaultRun:
    """One fault-injection run on a fresh stack, and the alarm timelines it produces."""

    def __init__(self, rt: Any, template: dict[str, Any]) -> None:
        self.rt = rt.restart()
        self.alarms = alarms_of(template)
        self.start = time.time()
        self.fired: set[int] = set()
        self.service: list[Sample] = []
        self.unrouted_seen = 0.0
        first = math.floor(self.start / MINUTE) * MINUTE
        self.gauge(first - 15 * MINUTE, first)  # the schedule has run every minute since deployment
        self.sample_services(self.start)

    def gauge(self, first: float, last: float) -> None:
        """Fire the backlog schedule for each whole minute in [first, last] (once per minute)."""
        minute = math.ceil(first / MINUTE) * MINUTE
        while minute <= last:
            if minute not in self.fired:
                payload, error = self.rt.fire_schedule(spec.BACKLOG_SCHEDULE, minute)
                assert error is None, payload
                self.fired.add(minute)
            minute += MINUTE

    def sample_services(self, at: float) -> None:
        sqs = self.rt.client("sqs")
        depth = {}
        for name in DLQS:
            attributes = sqs.get_queue_attributes(QueueUrl=self.rt.deployment.queue_urls[name],
                                                  AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
            depth[name] = float(attributes["ApproximateNumberOfMessages"])
            self.service.append(Sample("AWS/SQS", "ApproximateNumberOfMessagesVisible", dims(QueueName=name), at,
                                       depth[name]))
        # nothing consumes the unrouted queue during a run: what arrived since the last sample is what the
        # unrouted rule matched
        arrived = depth[spec.UNROUTED_QUEUE.name] - self.unrouted_seen
        self.unrouted_seen = depth[spec.UNROUTED_QUEUE.name]
        self.service.append(Sample("AWS/Events", "MatchedEvents",
                                   dims(EventBusName=spec.BUS_NAME, RuleName=spec.UNROUTED_RULE.name), at, arrived))

    def finish(self, minutes_after: int = 1) -> dict[str, Timeline]:
        assert self.rt.wait_idle(timeout=120), "the runtime did not become idle"
        end = time.time()
        until = math.floor(end / MINUTE) * MINUTE + minutes_after * MINUTE
        self.gauge(self.start, until)
        self.sample_services(end)
        for minute in range(math.ceil(end / MINUTE) * MINUTE, int(until), MINUTE):
            self.sample_services(minute)  # a level persists: CloudWatch gets it every minute
        self.store = MetricStore(emf_samples(self.rt) + self.service)
        return run(self.alarms, self.store, math.floor(self.start / MINUTE) * MINUTE, until)


def emf_samples(rt: Any) -> list[Sample]:
    # the runtime ships EMF lines in the background, like Lambda ships stdout (a shipper an earlier CLI
    # test left on a dead endpoint is logged, it does not fail this read)
    LogShipper.flush_all(reading=get_deps().client("logs"))
    return samples_from_emf(read_emf_documents(rt.client("logs"), get_deps().settings.metrics_log_group))


def in_alarm(timelines: dict[str, Timeline]) -> set[str]:
    return {name.removeprefix(A) for name, t in timelines.items() if t.ever(ALARM)}


@pytest.fixture(scope="module")
def template(synth: Any) -> dict[str, Any]:
    return synth.json


def test_given_every_alarm_of_the_template_when_read_then_the_evaluator_covers_each_one(template):
    alarms = alarms_of(template)
    names = {a["Properties"]["AlarmName"] for a in template["Resources"].values()
             if a["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == names and len(names) >= 12
    store = MetricStore()
    for timeline in run(alarms, store, 1_800_000_000, 1_800_000_600).values():  # no data at all
        assert timeline.evaluations  # every expression, statistic and treatment is implemented


def test_given_a_healthy_run_when_alarms_are_evaluated_then_none_fires(runtime, template):
    run_ = FaultRun(runtime, template)
    for i in range(6):
        runtime.put_event("plugin.job.completed", body("healthy", i))
    timelines = run_.finish()
    assert in_alarm(timelines) == set(), {n: t.evaluations[-1].reason for n, t in timelines.items() if t.ever(ALARM)}
    # and the run was seen: the success metrics have datapoints
    assert timelines[f"{A}automated-success-rate"].evaluations[-1].values
    assert timelines[f"{A}generation-latency-p95"].evaluations[-1].values


def test_given_plugins_answering_5xx_when_alarms_are_evaluated_then_the_automated_success_alarm_fires(runtime,
                                                                                                    template):
    run_ = FaultRun(runtime, template)
    runtime.sandbox.fail_always("report-renderer", 503)
    for i in range(4):
        runtime.put_event("plugin.job.completed", body("5xx", i))
    timelines = run_.finish()
    fired = in_alarm(timelines)
    assert "automated-success-rate" in fired  # 0 of 4 workflows finished without a person
    assert "manual-intervention-rate" in fired  # every decision ended with a person
    assert fired <= {"automated-success-rate", "manual-intervention-rate"}, fired
    assert [v for _, v in timelines[f"{A}automated-success-rate"].evaluations[-1].values][0] == 0


def test_given_a_broken_library_when_alarms_are_evaluated_then_the_library_alarm_fires(runtime, template):
    run_ = FaultRun(runtime, template)
    runtime.put_event("plugin.job.completed", body("lib", 0))  # the good library is loaded and served
    assert runtime.wait_idle(timeout=60)
    deps = get_deps()
    current = deps.strategies.revision()
    runtime.client("dynamodb").put_item(TableName=deps.settings.strategies_table, Item=to_item({
        **current, "revision": int(current["revision"]) + 1,
        "active": {**current["active"], "report-on-job-completed": 99}}))  # a version that does not exist
    for i in range(1, 4):
        time.sleep(1.1)  # past LIBRARY_REFRESH_SECONDS (1 s on the runtime): the matcher reloads and fails
        runtime.put_event("plugin.job.completed", body("lib", i))
    timelines = run_.finish()
    assert in_alarm(timelines) == {"strategy-library-errors"}  # the last good library keeps serving


def test_given_unmatched_events_when_alarms_are_evaluated_then_the_miss_rate_alarm_fires(runtime, template):
    run_ = FaultRun(runtime, template)
    for i in range(4):
        runtime.put_event("tenant.request.pending", body("miss", i, request={"id": f"r{i}", "kind": "quota-increase"}))
    timelines = run_.finish()
    fired = in_alarm(timelines)
    assert "strategy-miss-rate" in fired  # 100 % missed > 20 %
    assert fired <= {"strategy-miss-rate", "manual-intervention-rate"}, fired


def test_given_a_stuck_backlog_when_the_gauge_runs_every_minute_then_its_alarm_stays_in_alarm(runtime, template):
    run_ = FaultRun(runtime, template)
    for i in range(22):  # 22 unmatched events: 22 open reviews, and nobody closes them
        runtime.put_event("tenant.request.pending", body("stuck", i, request={"id": f"s{i}", "kind": "quota-increase"}))
    assert runtime.wait_idle(timeout=120)
    assert get_deps().workflows.count_open_reviews() == 22
    during_run = MetricStore(emf_samples(runtime))
    timelines = run_.finish(minutes_after=30)
    backlog = timelines[f"{A}manual-review-backlog"]
    first = backlog.states.index(ALARM)
    assert backlog.states[first:] == [ALARM] * (len(backlog.states) - first)  # 30 minutes later: still ALARM
    assert len(backlog.states) - first >= 30
    assert not timelines[f"{A}review-backlog-gauge-missing"].ever(ALARM)

    # Contrast: the gauge only as the run emitted it (on change) and missing data "not breaching", the way
    # the alarm was before: the same stuck backlog returns the alarm to OK, and its OK action would
    # resolve the page.
    before = dataclasses.replace(backlog.alarm, treat_missing="notBreaching")
    old = run({"old": before}, during_run, run_.start, run_.start + 30 * MINUTE)["old"]
    assert old.ever(ALARM) and old.final == "OK"


def test_given_an_event_of_an_unknown_source_when_alarms_are_evaluated_then_the_unrouted_alarms_fire(runtime,
                                                                                                  template):
    run_ = FaultRun(runtime, template)
    runtime.put_events([{"Source": "acme.unknown", "DetailType": "plugin.job.completed",
                         "Detail": '{"tenant_id": "acme"}', "EventBusName": spec.BUS_NAME}])
    timelines = run_.finish()
    # EventBridge's MatchedEvents of the unrouted rule (its RuleName dimension is the rule's plain name) and
    # the depth of the queue that keeps such events
    assert in_alarm(timelines) == {"unrouted-events", f"{spec.UNROUTED_QUEUE.name.removeprefix(A)}-depth"}
