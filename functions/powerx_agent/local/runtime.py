"""The embedded local runtime: moto in server mode on 127.0.0.1 with the Step Functions executor on,
every resource of the design created through boto3, every Lambda invocation dispatched in process
to our handlers, the sandbox downstream services and the internal APIs on loopback.

    with LocalRuntime.start() as rt:
        rt.put_event({...})
        rt.wait_idle()
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from powerx_agent import spec, telemetry
from powerx_agent.adapters import aws
from powerx_agent.clock import SYSTEM_CLOCK, AdjustableClock
from powerx_agent.deps import get_deps, use_clock
from powerx_agent.local import motopatch
from powerx_agent.local.apiserver import ApiServer
from powerx_agent.local.deployer import Deployment, deploy, publish_directory, seed_tenants
from powerx_agent.local.pollers import Scheduler, SqsPoller
from powerx_agent.local.ports import service_ports
from powerx_agent.local.sandbox import Sandbox
from powerx_agent.local.state import StateDir
from powerx_agent.settings import Env

REPO_ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"


class LocalRuntime:
    def __init__(self, *, strategies_dir: Path | None = None, tenants_file: Path | None = None,
                 async_retry_delays: tuple[float, ...] = (6.0, 12.0), visibility_timeout: int = 3, max_receive_count: int = 3,
                 idempotency_lease_seconds: float = 5.0, max_executions_in_flight: int | None = None,
                 port: int = 0, state_dir: Path | None = None, log_level: str = "ERROR") -> None:
        self.strategies_dir = Path(strategies_dir or REPO_ROOT / "strategies")
        self.tenants_file = Path(tenants_file or REPO_ROOT / "config" / "tenants.yaml")
        self.async_retry_delays = tuple(async_retry_delays)
        self.visibility_timeout = visibility_timeout
        self.max_receive_count = max_receive_count
        self.idempotency_lease_seconds = idempotency_lease_seconds
        # the in-process functions' clock: advance() ages leases and caches without waiting for them
        self.clock = AdjustableClock()
        self.sandbox = Sandbox()
        self.server: Any = None
        self.port = 0
        # port > 0: moto on it, the sandbox on port + 1, the internal API on port + 2 (ports.py)
        self.requested_port = port
        self.state = StateDir(Path(state_dir)) if state_dir else None
        self.log_level = log_level
        self.restored: dict[str, int] = {}
        self.deployment: Deployment | None = None
        self.api: ApiServer | None = None
        self.poller: SqsPoller | None = None
        self.scheduler: Scheduler | None = None
        self._async = ThreadPoolExecutor(max_workers=4, thread_name_prefix="eventbridge-lambda")
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self.environment: dict[str, str] = {}
        # moto's Step Functions executor starts threads per execution without limit; the matcher
        # poller stops taking work while this many executions run (see _poller_client)
        self.max_executions_in_flight = int(max_executions_in_flight or
                                            os.environ.get(Env.POWERX_LOCAL_MAX_EXECUTIONS) or 64)
        self.poller_paused_seconds = 0.0
        self._harness: dict[tuple[str, int], Any] = {}

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def start(cls, **kwargs: Any) -> LocalRuntime:
        runtime = cls(**kwargs)
        runtime._start()
        return runtime

    def __enter__(self) -> LocalRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        ports = service_ports(self.requested_port)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=ports.moto, verbose=False)
        self.server.start()
        self.port = self.server.get_host_and_port()[1]
        endpoint = f"http://127.0.0.1:{self.port}"
        motopatch.apply(self._deliver_rule_target)
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        requests.post(f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}},
                      timeout=10)
        self.sandbox.start(ports.sandbox)
        self.api = ApiServer(self.invoke).start(ports.api)
        self.environment = {
            Env.CALLBACKS_URL: f"{self.api.url}/internal/agent/callbacks",
            Env.AWS_ENDPOINT_URL: endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing", Env.AWS_REGION: REGION, Env.AWS_DEFAULT_REGION: REGION,
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "MOTO_PORT": str(self.port),
            Env.PLUGIN_RUNTIME_URL: self.sandbox.url, Env.NOTIFICATIONS_URL: self.sandbox.url, Env.OPS_URL: self.sandbox.url,
            Env.METRICS_SINK: "logs", Env.METRICS_LOG_GROUP: spec.METRICS_LOG_GROUP, Env.FLAGS_STORE: "dynamodb",
            Env.LIBRARY_SOURCE: "table", Env.LIBRARY_REFRESH_SECONDS: "1", Env.STRATEGIES_DIR: str(self.strategies_dir),
            Env.IDEMPOTENCY_LEASE_SECONDS: str(self.idempotency_lease_seconds),
            Env.HTTP_CONNECT_TIMEOUT: "1", Env.HTTP_READ_TIMEOUT: "2",
            "POWERTOOLS_SERVICE_NAME": "powerx-agent", "POWERTOOLS_LOG_LEVEL": self.log_level,
            "POWERTOOLS_METRICS_NAMESPACE": spec.NAMESPACE, "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_DEV": "false",
        }
        os.environ.update(self.environment)
        telemetry.configure(self.environment["POWERTOOLS_LOG_LEVEL"])  # the logger exists since import
        aws.reset_clients()
        use_clock(self.clock)
        self.deployment = deploy(self.client, REGION, self.environment, visibility_timeout=self.visibility_timeout,
                                 max_receive_count=self.max_receive_count)
        os.environ.update(self.environment)
        seed_tenants(self.client("dynamodb"), self.tenants_file)
        publish_directory(get_deps().strategies, self.strategies_dir)
        if self.state:  # what the last run left wins over the seeds
            self.restored = self.state.restore(self.client("dynamodb"))
        self.poller = SqsPoller(self._poller_client, self.deployment.queue_urls[spec.MATCH_QUEUE.name],
                                self.deployment.alias_arns["matcher"], batch_size=spec.MATCH_MAPPING.batch_size).start()
        self.scheduler = Scheduler(self.fire_schedule, spec.SCHEDULES).start()

    def restart(self) -> LocalRuntime:
        """A fresh stack in place: everything stopped, then a new moto server with every resource created
        again and nothing from before (tests that judge levels, e.g. queue depths, start from zero)."""
        self.stop()
        self.sandbox.reset()
        self._async = ThreadPoolExecutor(max_workers=4, thread_name_prefix="eventbridge-lambda")
        self._start()
        return self

    def stop(self) -> None:
        from powerx_agent.adapters.metrics import LogShipper

        if self.scheduler:
            self.scheduler.stop()
        if self.poller:
            self.poller.stop()
        self._async.shutdown(wait=True, cancel_futures=True)
        LogShipper.close_all()
        if self.state and self.server:
            self.state.save(self.client("dynamodb"))
        if self.api:
            self.api.stop()
        self.sandbox.stop()
        if self.server:
            try:
                requests.post(f"http://127.0.0.1:{self.port}/moto-api/reset", timeout=10)
            except requests.RequestException:
                pass
            self.server.stop()
            self.server = None
        aws.reset_clients()
        use_clock(SYSTEM_CLOCK)

    # -- clients and invocations -----------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str) -> Any:
        return aws.client(service, REGION, self.endpoint)

    def harness(self, service: str) -> Any:
        """A client for the runtime's own checks (idle, samples, accounting): requests a
        :class:`~powerx_agent.local.meter.Meter` leaves out of what the product costs."""
        from powerx_agent.local.meter import harness_client

        key = (service, self.port)
        found = self._harness.get(key)
        if found is None:
            found = self._harness[key] = harness_client(service, self.endpoint, REGION)
        return found

    def _poller_client(self, service: str) -> Any:
        """The matcher poller's clients; its SQS client waits before each receive while the number of
        executions in flight (a counter kept by motopatch, not a ListExecutions scan) is at the cap,
        so under overload the backlog stays in the queue instead of becoming unbounded threads."""
        client = self.client(service)
        return _CappedReceive(client, self) if service == "sqs" else client

    def invoke(self, function_key: str, event: dict[str, Any]) -> tuple[dict[str, Any] | Any, str | None]:
        """Invoke a function's live alias through the Lambda API (RequestResponse): (payload, function error)."""
        out = self.client("lambda").invoke(FunctionName=spec.FUNCTIONS_BY_KEY[function_key].name,
                                           Qualifier=spec.LIVE_ALIAS, Payload=json.dumps(event).encode())
        payload = json.loads(out["Payload"].read() or b"null")
        return payload, out.get("FunctionError")

    def fire_schedule(self, schedule: spec.ScheduleSpec, at: float) -> tuple[Any, str | None]:
        """What EventBridge does when a schedule rule is due at ``at``: invoke its target with a
        "Scheduled Event" whose ``time`` is that minute. Tests call it to run a schedule for a given time."""
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": "123456789012", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
                 "region": REGION, "resources": [f"arn:aws:events:{REGION}:123456789012:rule/{schedule.name}"],
                 "detail": {}}
        return self.invoke(schedule.target_function, event)

    def _deliver_rule_target(self, target: dict[str, Any], event: dict[str, Any]) -> None:
        """EventBridge → Lambda: asynchronous, retried with backoff and jitter, then the target DLQ."""
        with self._inflight_lock:
            self._inflight += 1
        try:
            self._async.submit(self._deliver, target, event)
        except RuntimeError:  # shutting down
            with self._inflight_lock:
                self._inflight -= 1

    def _deliver(self, target: dict[str, Any], event: dict[str, Any]) -> None:
        """EventBridge → Lambda is an asynchronous invocation. Once Lambda has accepted the event, a
        function error is Lambda's to retry (the function's EventInvokeConfig: MaximumRetryAttempts
        2, on AWS about one and then two minutes later; here ``async_retry_delays``, one tenth of
        that by default, still longer than the local idempotency lease as AWS's are longer than
        its lease), and after the last attempt the invocation record goes to the on-failure
        destination, the ingest DLQ. (The rule's own RetryPolicy covers events EventBridge could
        not hand to Lambda at all, e.g. throttling, which cannot happen in process.)"""
        try:
            from moto.awslambda.utils import get_backend

            function_arn = target["Arn"]
            function = get_backend(function_arn.split(":")[4], REGION).get_function(function_arn)
            last = ""
            for attempt in range(1 + len(self.async_retry_delays)):
                if attempt:
                    delay = self.async_retry_delays[attempt - 1]
                    time.sleep(delay + random.uniform(0, delay / 10))
                result, errored, _ = motopatch.lambdas.invoke_in_process(function, event)
                if not errored:
                    return
                last = result
            if self.deployment:
                self.client("sqs").send_message(
                    QueueUrl=self.deployment.queue_urls[spec.INGEST_DLQ.name],
                    MessageBody=json.dumps(_invocation_record(function_arn, str(function.version), event, last,
                                                              1 + len(self.async_retry_delays))))
        finally:
            with self._inflight_lock:
                self._inflight -= 1

    # -- what a producer and an operator do ------------------------------------------------
    def put_event(self, event_type: str, detail: dict[str, Any], source: str = "powerx.plugins") -> dict[str, Any]:
        return self.put_events([{"Source": source, "DetailType": event_type, "Detail": json.dumps(detail),
                                 "EventBusName": spec.BUS_NAME}])

    def put_events(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        return self.client("events").put_events(Entries=entries)

    def running_executions(self) -> int:
        sfn = self.harness("stepfunctions")
        count = 0
        for machine in sfn.list_state_machines().get("stateMachines", []):
            count += len(sfn.list_executions(stateMachineArn=machine["stateMachineArn"],
                                             statusFilter="RUNNING").get("executions", []))
        return count

    def wait_idle(self, timeout: float = 60.0, settle: float = 0.3, allow_running: bool = False) -> bool:
        """Wait until no delivery, queued message or running execution is left (True) or timeout."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        sqs = self.harness("sqs")
        assert self.deployment is not None
        url = self.deployment.queue_urls[spec.MATCH_QUEUE.name]
        while time.monotonic() < deadline:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            busy = (self._inflight > 0 or int(attrs["ApproximateNumberOfMessages"]) > 0
                    or int(attrs["ApproximateNumberOfMessagesNotVisible"]) > 0
                    or (self.poller is not None and self.poller.busy)
                    or motopatch.stream_pending() > 0
                    or (not allow_running and self.running_executions() > 0))
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return True
            time.sleep(0.05)
        return False

    def dlq_messages(self, queue_name: str) -> list[dict[str, Any]]:
        assert self.deployment is not None
        sqs = self.client("sqs")
        url = self.deployment.queue_urls[queue_name]
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        return messages


def _invocation_record(function_arn: str, version: str, event: dict[str, Any], error: str,
                       attempts: int) -> dict[str, Any]:
    """What Lambda sends to an asynchronous invocation's on-failure destination: the ARN invoked (the
    live alias) and the version it ran."""
    try:
        response: Any = json.loads(error)
    except ValueError:
        response = {"errorMessage": error}
    return {"version": "1.0", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": function_arn,
                               "condition": "RetriesExhausted", "approximateInvokeCount": attempts},
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": version, "functionError": "Unhandled"},
            "responsePayload": response}


class _CappedReceive:
    """An SQS client whose ``receive_message`` pauses while executions in flight ≥ the runtime's cap."""

    def __init__(self, client: Any, runtime: LocalRuntime) -> None:
        self._client = client
        self._runtime = runtime

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def receive_message(self, **kwargs: Any) -> Any:
        started = None
        while motopatch.sfn_running() >= self._runtime.max_executions_in_flight:
            if self._runtime.poller is not None and self._runtime.poller._stop.is_set():
                break
            started = started or time.monotonic()
            time.sleep(0.02)
        if started is not None:
            self._runtime.poller_paused_seconds += time.monotonic() - started
        return self._client.receive_message(**kwargs)
