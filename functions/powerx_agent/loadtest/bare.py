"""A bare pipeline of the product's shape on the same moto server (PutEvents → rule → SQS → poller →
Lambda doing a conditional PutItem + StartExecution → a 3-task state machine whose Lambda handlers do
nothing): moto's own ceiling on this machine, measured in the same process and run."""

from __future__ import annotations

import io
import json
import os
import threading
import time
import zipfile
from typing import Any

from powerx_agent.adapters.aws import error_code
from powerx_agent.loadtest.runs import LoadResult, Progress, drain, make_result, produce, rss_mb
from powerx_agent.settings import Env

BARE = "powerx-bare"
_bare_times: dict[str, tuple[float, float]] = {}
_bare_lock = threading.Lock()


def bare_task_handler(event: Any, context: Any) -> dict[str, Any]:
    """A node that does nothing (the bare pipeline's 3 tasks)."""
    return {"ok": True}


def bare_consume_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch → conditional PutItem → StartExecution, nothing else (the bare pipeline's matcher)."""
    from powerx_agent.adapters import aws

    region = os.environ.get(Env.AWS_REGION, "us-east-1")
    endpoint = os.environ.get(Env.AWS_ENDPOINT_URL)
    ddb = aws.client("dynamodb", region, endpoint)
    sfn = aws.client("stepfunctions", region, endpoint)
    machine = os.environ["POWERX_BARE_MACHINE_ARN"]
    for record in event.get("Records", []):
        received = time.time()
        bus_event = json.loads(record["body"])
        key = bus_event["detail"]["idempotency_key"]
        try:
            ddb.put_item(TableName=BARE, Item={"pk": {"S": key}, "received_at": {"N": str(received)}},
                         ConditionExpression="attribute_not_exists(pk)")
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            continue
        try:
            sfn.start_execution(stateMachineArn=machine, name=key, input=json.dumps({"key": key}))
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ExecutionAlreadyExists":
                raise
        with _bare_lock:
            _bare_times[key] = (received, time.time())
    return {"batchItemFailures": []}


def _bare_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("bare.py", "def handler(event, context):\n    return {}\n")
    return buf.getvalue()


def setup_bare(rt: Any) -> dict[str, Any]:
    """Create the bare pipeline's bus, rule, queue, table, functions and 3-task state machine (once)."""
    from powerx_agent.local import motopatch
    from powerx_agent.local.pollers import SqsPoller

    if getattr(rt, "_bare", None):
        return rt._bare
    assert rt.deployment is not None
    motopatch.register_handler(f"{BARE}-consume", "powerx_agent.loadtest.bare.bare_consume_handler")
    motopatch.register_handler(f"{BARE}-task", "powerx_agent.loadtest.bare.bare_task_handler")
    events, sqs, ddb, lam, sfn = (rt.client(s) for s in ("events", "sqs", "dynamodb", "lambda", "stepfunctions"))
    events.create_event_bus(Name=BARE)
    queue_url = sqs.create_queue(QueueName=BARE, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=BARE, EventBusName=BARE, EventPattern=json.dumps({"source": ["powerx.plugins"]}))
    events.put_targets(Rule=BARE, EventBusName=BARE, Targets=[{"Id": "queue", "Arn": queue_arn}])
    ddb.create_table(TableName=BARE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    arns = {}
    for name in ("consume", "task"):
        arns[name] = lam.create_function(FunctionName=f"{BARE}-{name}", Runtime="python3.11",
                                         Role=rt.deployment.lambda_role_arn, Handler="bare.handler",
                                         Code={"ZipFile": _bare_zip()}, Timeout=30)["FunctionArn"]
    task = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": arns["task"], "Payload": {"key.$": "$.key"}}, "ResultPath": None}
    definition = {"StartAt": "One", "States": {"One": {**task, "Next": "Two"}, "Two": {**task, "Next": "Three"},
                                               "Three": {**task, "End": True}}}
    machine = sfn.create_state_machine(name=BARE, definition=json.dumps(definition),
                                       roleArn=rt.deployment.workflow_role_arn)["stateMachineArn"]
    os.environ["POWERX_BARE_MACHINE_ARN"] = machine
    poller = SqsPoller(rt._poller_client, queue_url, f"{BARE}-consume", batch_size=10).start()
    rt._bare = {"queue_url": queue_url, "machine": machine, "poller": poller}
    return rt._bare


def teardown_bare(rt: Any) -> None:
    """Stop the bare pipeline's poller (call before ``rt.stop()``)."""
    bare = getattr(rt, "_bare", None)
    if bare:
        bare["poller"].stop()
        rt._bare = None


def run_bare(rt: Any, rate: float, duration: float, *, drain_timeout: float = 300.0,
             progress: Progress | None = None) -> LoadResult:
    from powerx_agent.local import motopatch

    bare = setup_bare(rt)
    sqs = rt.harness("sqs")
    t0 = time.monotonic()

    def sample() -> dict[str, Any]:
        attrs = sqs.get_queue_attributes(QueueUrl=bare["queue_url"], AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return {"ingest_pending": 0, "queue": int(attrs["ApproximateNumberOfMessages"])
                + int(attrs["ApproximateNumberOfMessagesNotVisible"]), "running": motopatch.sfn_running(),
                "threads": threading.active_count(), "rss_mb": rss_mb()}

    events = rt.client("events")
    produced = produce(lambda entries: events.put_events(Entries=entries), rate=rate, duration=duration, bus=BARE,
                       progress=progress, sample=sample)

    class _Idle:  # the bare pipeline has its own poller
        poller = bare["poller"]
        _inflight = 0

    drained, drain_seconds = drain(_Idle(), bare["queue_url"], drain_timeout, progress, produced.sent,
                                   produced.samples, sample, t0)
    sfn = rt.harness("stepfunctions")
    stops: dict[str, float] = {}
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=bare["machine"],
                                                               statusFilter="SUCCEEDED"):
        for execution in page["executions"]:
            if execution["name"] in produced.sent_at and execution.get("stopDate"):
                stops[execution["name"]] = execution["stopDate"].timestamp()
    gen, e2e = [], []
    for key, stopped in stops.items():
        received, started = _bare_times.get(key, (None, None))
        if received is not None and started is not None:
            gen.append((started - received) * 1000)
            e2e.append((stopped - received) * 1000)
    return make_result("bare moto", produced, rate, duration, gen, e2e, stops, drained, drain_seconds)
