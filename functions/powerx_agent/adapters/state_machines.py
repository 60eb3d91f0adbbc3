"""Step Functions, the one place the engine calls it: executions, task tokens, and the version/alias
bookkeeping per strategy. Botocore error codes become results here (``None`` for an execution that
does not exist, ``False`` for a task token that is no longer valid, :class:`Started` saying whether
the execution already existed); logic modules never see them.

State machines, versions and aliases
------------------------------------
Each strategy version compiles to a deterministic definition whose hash names its state machine
(``agent-<strategy>-v<version>-<hash8>``). That machine is created once with ``publish=True``
(version 1, described ``<id> v<version> <hash8>``) and never updated, so its unqualified ARN and
its version 1 always run the same definition; executions start on it.

Step Functions aliases route only to versions *of their own state machine*, so the alias per
strategy lives on one more machine per strategy, named ``<prefix><strategy-id>``: every strategy
version the matcher runs is published as a version of it (``update_state_machine(publish=True)``)
and its alias ``live`` is pointed at that version. ``rollback`` points ``live`` back at the older
strategy version's state-machine version when that one exists. The machine's tags map strategy
versions to its versions (``powerx:v<N>`` → version ARN), because ListStateMachineVersions is not
available on the embedded runtime.

Locally (moto 5.2.5) StartExecution fails on a version ARN (a 500) and on an alias ARN
(StateMachineDoesNotExist), so executions start on the unqualified ARN of the immutable,
hash-named machine, which is the same definition as its version 1.

Logging, tracing, Express executions
------------------------------------
Every machine is created with the deployment's logging configuration and X-Ray tracing
(:func:`observability`, from the settings the stack gives the matcher); a machine met with other
settings is updated to them without publishing a version (they are not part of the definition). An
execution started from a Lambda invocation carries its X-Ray trace header.

Express executions (ARN ``...:express:...``) have no history in Step Functions: ``DescribeExecution``,
``GetExecutionHistory`` and ``StopExecution`` do not serve them. Their status, input and events are read
from the state machines' log group (:mod:`powerx_agent.adapters.execution_logs`); ``UNKNOWN`` while no
record says more, never "gone".
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from powerx_agent import spec
from powerx_agent.adapters.aws import error_code
from powerx_agent.adapters.execution_logs import (
    ExpressHistory,
    is_express_execution,
    machine_arn,
    read_express_history,
)
from powerx_agent.errors import AgentError

ALIAS_NAME = "live"
VERSION_TAG = "powerx:v"
MAX_VERSION_TAGS = 40
"""A resource has at most 50 tags: keep the newest 40 strategy-version mappings."""

# what each answer of Step Functions means to us
_NO_EXECUTION = ("ExecutionDoesNotExist", "StateMachineDoesNotExist", "InvalidArn")
_NO_MACHINE = ("StateMachineDoesNotExist", "ResourceNotFound")
_TOKEN_GONE = ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken")
_NOT_RUNNING = ("ExecutionDoesNotExist", "ExecutionNotRunning")


class Flow(Protocol):
    """What the bookkeeping needs of a compiled flow (:class:`powerx_agent.taskflow.asl.CompiledFlow`)."""

    strategy_id: str
    strategy_version: int
    state_machine_name: str
    definition_json: str
    type: str
    sha256: str
    hash8: str
    continuation: str  # an Express head's Standard machine (compiled name), "" for a full flow


class Settings(Protocol):
    region: str
    workflow_role_arn: str
    state_machine_prefix: str
    state_machine_log_group_arn: str
    state_machine_log_level: str
    state_machine_log_execution_data: bool
    state_machine_tracing: bool

    @property
    def state_machine_log_group(self) -> str: ...


@dataclass(frozen=True)
class Started:
    execution_arn: str
    already: bool  # the execution existed (a redelivery): Step Functions refused a second start


@dataclass(frozen=True)
class ExecutionRecord:
    """An execution as described, every page of its history, and its state machine's definition
    (``{}`` when the machine is gone)."""

    described: dict[str, Any]
    events: list[dict[str, Any]]
    definition: dict[str, Any]


def observability(settings: Settings) -> dict[str, Any]:
    """``loggingConfiguration`` and ``tracingConfiguration`` for CreateStateMachine/UpdateStateMachine."""
    level = settings.state_machine_log_level if settings.state_machine_log_group_arn else "OFF"
    logging: dict[str, Any] = {"level": level, "includeExecutionData": bool(settings.state_machine_log_execution_data)}
    if level != "OFF":
        logging["destinations"] = [{"cloudWatchLogsLogGroup": {"logGroupArn": settings.state_machine_log_group_arn}}]
    return {"loggingConfiguration": logging, "tracingConfiguration": {"enabled": bool(settings.state_machine_tracing)}}


def _observed(described: dict[str, Any]) -> dict[str, Any]:
    """The same two settings as DescribeStateMachine reports them (absent ones as AWS's defaults)."""
    logging = described.get("loggingConfiguration") or {"level": "OFF", "includeExecutionData": False}
    out = {"level": logging.get("level", "OFF"), "includeExecutionData": bool(logging.get("includeExecutionData"))}
    if logging.get("destinations"):
        out["destinations"] = logging["destinations"]
    return {"loggingConfiguration": out,
            "tracingConfiguration": {"enabled": bool((described.get("tracingConfiguration") or {}).get("enabled"))}}


def _trace_header() -> dict[str, str]:
    """The X-Ray trace of the Lambda invocation that starts an execution (Lambda sets it), if valid."""
    header = os.environ.get("_X_AMZN_TRACE_ID", "")
    return {"traceHeader": header} if header and len(header) <= 256 and header.isascii() else {}


def state_machine_arn(settings: Settings, name: str, identity_arn: str | None = None) -> str:
    """ARN in the deployment's partition and account, both read from the workflow role's ARN
    (``arn:<partition>:iam::<account>:role/...``), so GovCloud and China regions work too; where no
    workflow role is configured (an operator's shell), from the caller's own identity ARN."""
    parts = (settings.workflow_role_arn or identity_arn or "").split(":")
    if len(parts) < 5 or not parts[1] or not parts[4]:
        raise AgentError("the account of the state machines is unknown: give --stack NAME (its outputs name the "
                         "workflow role) or set WORKFLOW_ROLE_ARN", code="config.account_unknown")
    return f"arn:{parts[1]}:states:{settings.region}:{parts[4]}:stateMachine:{name}"


class StateMachines:
    """The engine's port to Step Functions (``deps.state_machines``). ``identity`` gives the caller's
    ARN, read once and only when no workflow role ARN is configured."""

    def __init__(self, client: Any, settings: Settings, logs: Callable[[], Any] | None = None,
                 identity: Callable[[], str] | None = None) -> None:
        self._sfn = client
        self._settings = settings
        self._logs = logs  # a CloudWatch Logs client, made when an Express execution is first read
        self._identity = identity
        self._identity_arn: str | None = None

    def arn(self, name: str) -> str:
        """The ARN of the state machine ``name`` in this deployment."""
        if not self._settings.workflow_role_arn and self._identity is not None and self._identity_arn is None:
            self._identity_arn = self._identity()
        return state_machine_arn(self._settings, name, self._identity_arn)

    # -- executions ------------------------------------------------------------------------------
    def start(self, state_machine_arn: str, name: str, input_json: str) -> Started:
        """StartExecution. For a Standard machine a second start of one name is refused (``already``);
        an Express machine starts every call (the caller must not start one twice)."""
        try:
            arn = self._sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=input_json,
                                            **_trace_header())
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ExecutionAlreadyExists":
                raise
            return Started(state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}", True)
        return Started(arn["executionArn"], False)

    def express(self, execution_arn: str, started_after: float | None = None) -> ExpressHistory:
        """An Express execution's log records (none when the deployment configures no log group)."""
        group = self._settings.state_machine_log_group
        if not group or self._logs is None:
            return ExpressHistory(execution_arn)
        return read_express_history(self._logs(), group, execution_arn, started_after)

    def describe(self, execution_arn: str | None, started_after: float | None = None) -> dict[str, Any] | None:
        """DescribeExecution, or None when there is no such execution. An Express execution is described
        from its log records (status ``UNKNOWN`` without any); ``started_after`` bounds that search."""
        if not execution_arn:
            return None
        if is_express_execution(execution_arn):
            express = self.express(execution_arn, started_after)
            return {"executionArn": execution_arn, "stateMachineArn": machine_arn(execution_arn),
                    "status": express.status or "UNKNOWN", "startDate": express.started,
                    "stopDate": express.stopped, "input": json.dumps(express.input), "error": express.error,
                    "source": "logs"}
        try:
            return dict(self._sfn.describe_execution(executionArn=execution_arn))
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) in _NO_EXECUTION:
                return None
            raise

    def status(self, execution_arn: str | None, started_after: float | None = None) -> str | None:
        """RUNNING / SUCCEEDED / FAILED / TIMED_OUT / ABORTED, or None when there is no such execution
        (``UNKNOWN``: an Express execution no log record speaks of yet; nothing can be concluded)."""
        described = self.describe(execution_arn, started_after)
        return str(described["status"]) if described else None

    def record(self, execution_arn: str, started_after: float | None = None) -> ExecutionRecord | None:
        if is_express_execution(execution_arn):
            express = self.express(execution_arn, started_after)
            machine = machine_arn(execution_arn)
            summary: dict[str, Any] = {"executionArn": execution_arn, "stateMachineArn": machine,
                                       "status": express.status or "UNKNOWN", "input": json.dumps(express.input),
                                       "error": express.error}
            return ExecutionRecord(summary, express.events, self.definition(machine) or {})
        described = self.describe(execution_arn)
        if described is None:
            return None
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            out = self._sfn.get_execution_history(**kwargs)
            events += out.get("events", [])
            if not out.get("nextToken"):
                break
            kwargs["nextToken"] = out["nextToken"]
        definition = self.definition(str(described["stateMachineArn"]))
        return ExecutionRecord(described, events, definition if definition is not None else {})

    def definition(self, state_machine_arn: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self._sfn.describe_state_machine(stateMachineArn=state_machine_arn)["definition"]))
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) in _NO_MACHINE:
                return None
            raise

    def stop(self, execution_arn: str, error: str, cause: str) -> bool:
        """StopExecution; False when the execution is not running (or does not exist), or is Express
        (StopExecution does not serve Express executions: they run to their end, 5 minutes at most)."""
        if is_express_execution(execution_arn):
            return False
        try:
            self._sfn.stop_execution(executionArn=execution_arn, error=error, cause=cause[:256])
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) not in _NOT_RUNNING:
                raise
            return False
        return True

    def machines(self, prefix: str) -> list[dict[str, Any]]:
        """Every state machine whose name starts with ``prefix`` (ListStateMachines, every page)."""
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {}
        while True:
            out = self._sfn.list_state_machines(**kwargs)
            found += [m for m in out.get("stateMachines", []) if m["name"].startswith(prefix)]
            if not out.get("nextToken"):
                return found
            kwargs["nextToken"] = out["nextToken"]

    def executions(self, state_machine_arn: str) -> Iterator[dict[str, Any]]:
        """ListExecutions of one machine, every page."""
        kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn}
        while True:
            out = self._sfn.list_executions(**kwargs)
            yield from out.get("executions", [])
            if not out.get("nextToken"):
                return
            kwargs["nextToken"] = out["nextToken"]

    def tags(self, resource_arn: str) -> dict[str, str] | None:
        """The resource's tags, or None when they cannot be read."""
        try:
            listed = self._sfn.list_tags_for_resource(resourceArn=resource_arn).get("tags", [])
        except Exception:  # noqa: BLE001 - unreadable tags are reported as unknown, not as an error
            return None
        return {t["key"]: t["value"] for t in listed}

    # -- task tokens -----------------------------------------------------------------------------
    def succeed_task(self, task_token: str, output: str) -> bool:
        """SendTaskSuccess; False when the token is no longer valid (timed out, unknown, malformed)."""
        return self._answer(self._sfn.send_task_success, taskToken=task_token, output=output)

    def fail_task(self, task_token: str, error: str, cause: str) -> bool:
        return self._answer(self._sfn.send_task_failure, taskToken=task_token, error=error, cause=cause[:256])

    def heartbeat(self, task_token: str) -> bool:
        return self._answer(self._sfn.send_task_heartbeat, taskToken=task_token)

    @staticmethod
    def _answer(call: Any, **kwargs: Any) -> bool:
        try:
            call(**kwargs)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) not in _TOKEN_GONE:
                raise
            return False
        return True

    # -- versions and the alias per strategy -----------------------------------------------------
    def machine_name(self, flow: Flow) -> str:
        """The hash-named state machine of a compiled flow, with the deployment's prefix."""
        return self._settings.state_machine_prefix + flow.state_machine_name.removeprefix(spec.STATE_MACHINE_PREFIX)

    def _strategy_machine(self, strategy_id: str) -> tuple[str, str]:
        name = f"{self._settings.state_machine_prefix}{strategy_id}"
        return name, self.arn(name)

    def ensure(self, flow: Flow, point_alias: bool = True) -> dict[str, Any]:
        """Create the flow's immutable, hash-named state machine when missing (published as version 1)
        and publish the flow as a version of the strategy's alias machine with ``live`` pointing at it
        (not with ``point_alias=False``: a canary's flow leaves ``live`` on the active version).

        Returns ``{"state_machine_arn", "state_machine_version_arn", "strategy_state_machine_arn",
        "strategy_alias_arn", "strategy_state_machine_version_arn"}``; idempotent."""
        sfn = self._sfn
        name = self.machine_name(flow)
        arn = self.arn(name)
        description = f"{flow.strategy_id} v{flow.strategy_version} {flow.hash8}"
        version_arn = f"{arn}:1"
        wanted = observability(self._settings)
        try:
            described = sfn.describe_state_machine(stateMachineArn=arn)
            if _observed(described) != wanted:  # created before the settings changed
                sfn.update_state_machine(stateMachineArn=arn, **wanted)
            try:
                sfn.describe_state_machine(stateMachineArn=version_arn)
            except Exception as exc:  # noqa: BLE001 - created before versions were published
                if error_code(exc) != "StateMachineDoesNotExist":
                    raise
                version_arn = sfn.update_state_machine(stateMachineArn=arn, definition=flow.definition_json,
                                                       publish=True, versionDescription=description
                                                       )["stateMachineVersionArn"]
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "StateMachineDoesNotExist":
                raise
            try:
                tags = [{"key": "powerx:definition-sha256", "value": flow.sha256},
                        {"key": "powerx:strategy", "value": f"{flow.strategy_id}@v{flow.strategy_version}"}]
                if flow.continuation:  # an Express head names the Standard machine it continues in
                    tags.append({"key": "powerx:continues-in", "value": self.arn_of(flow.continuation)})
                sfn.create_state_machine(
                    name=name, definition=flow.definition_json, roleArn=self._settings.workflow_role_arn,
                    type=flow.type, publish=True, versionDescription=description, **wanted, tags=tags)
            except Exception as create_exc:  # noqa: BLE001
                if error_code(create_exc) != "StateMachineAlreadyExists":
                    raise
        out = {"state_machine_arn": arn, "state_machine_version_arn": version_arn}
        if flow.strategy_id and not flow.continuation:  # the alias routes to the full flow, never to a head
            out.update(self._publish_strategy_version(flow, description, point_alias))
        return out

    def arn_of(self, compiled_name: str) -> str:
        """The ARN of the machine a compiled flow named ``compiled_name`` runs on in this deployment."""
        return state_machine_arn(self._settings, self._settings.state_machine_prefix
                                 + compiled_name.removeprefix(spec.STATE_MACHINE_PREFIX))

    def _publish_strategy_version(self, flow: Flow, description: str, point_alias: bool = True) -> dict[str, Any]:
        sfn = self._sfn
        name, arn = self._strategy_machine(flow.strategy_id)
        tag = f"{VERSION_TAG}{flow.strategy_version}"
        tags = self._machine_tags(arn)
        if tags is None:
            try:
                version_arn = sfn.create_state_machine(
                    name=name, definition=flow.definition_json, roleArn=self._settings.workflow_role_arn,
                    type=flow.type, publish=True, versionDescription=description, **observability(self._settings),
                    tags=[{"key": "powerx:strategy", "value": flow.strategy_id}])["stateMachineVersionArn"]
            except Exception as create_exc:  # noqa: BLE001
                if error_code(create_exc) != "StateMachineAlreadyExists":
                    raise
                return self._publish_strategy_version(flow, description, point_alias)  # created concurrently
            sfn.tag_resource(resourceArn=arn, tags=[{"key": tag, "value": version_arn}])
        else:
            version_arn = tags.get(tag, "")
            if not version_arn or sfn.describe_state_machine(
                    stateMachineArn=version_arn).get("definition") != flow.definition_json:
                version_arn = sfn.update_state_machine(
                    stateMachineArn=arn, definition=flow.definition_json, roleArn=self._settings.workflow_role_arn,
                    publish=True, versionDescription=description,
                    **observability(self._settings))["stateMachineVersionArn"]
                self._retag(arn, tags, tag, version_arn)
        alias_arn = (self._route_alias(arn, version_arn, f"{flow.strategy_id} v{flow.strategy_version}")
                     if point_alias else f"{arn}:{ALIAS_NAME}")
        return {"strategy_state_machine_arn": arn, "strategy_state_machine_version_arn": version_arn,
                "strategy_alias_arn": alias_arn}

    def _machine_tags(self, arn: str) -> dict[str, str] | None:
        """The machine's tags, or None when the machine does not exist (moto lists tags of any ARN)."""
        try:
            self._sfn.describe_state_machine(stateMachineArn=arn)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) in _NO_MACHINE:
                return None
            raise
        return {t["key"]: t["value"] for t in self._sfn.list_tags_for_resource(resourceArn=arn)["tags"]}

    def _retag(self, arn: str, tags: dict[str, str], tag: str, version_arn: str) -> None:
        versions = sorted(int(k.removeprefix(VERSION_TAG)) for k in tags
                          if k.startswith(VERSION_TAG) and k.removeprefix(VERSION_TAG).isdigit() and k != tag)
        stale = versions[: max(0, len(versions) + 1 - MAX_VERSION_TAGS)]
        if stale:
            self._sfn.untag_resource(resourceArn=arn, tagKeys=[f"{VERSION_TAG}{v}" for v in stale])
        self._sfn.tag_resource(resourceArn=arn, tags=[{"key": tag, "value": version_arn}])

    def _route_alias(self, machine_arn: str, version_arn: str, description: str) -> str:
        alias_arn = f"{machine_arn}:{ALIAS_NAME}"
        routing = [{"stateMachineVersionArn": version_arn, "weight": 100}]
        try:
            current = self._sfn.describe_state_machine_alias(stateMachineAliasArn=alias_arn)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) not in _NO_MACHINE:
                raise
            try:
                return str(self._sfn.create_state_machine_alias(
                    name=ALIAS_NAME, routingConfiguration=routing, description=description)["stateMachineAliasArn"])
            except Exception as create_exc:  # noqa: BLE001
                if error_code(create_exc) != "ConflictException":
                    raise
                current = {"routingConfiguration": []}
        if current.get("routingConfiguration") != routing:
            self._sfn.update_state_machine_alias(stateMachineAliasArn=alias_arn, routingConfiguration=routing,
                                                 description=description)
        return alias_arn

    def alias_target(self, strategy_id: str) -> dict[str, Any] | None:
        """Where the strategy's alias points: ``{"alias_arn", "version_arn", "strategy_version"}``."""
        _, arn = self._strategy_machine(strategy_id)
        tags = self._machine_tags(arn)
        if tags is None:
            return None
        try:
            alias = self._sfn.describe_state_machine_alias(stateMachineAliasArn=f"{arn}:{ALIAS_NAME}")
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) in _NO_MACHINE:
                return None
            raise
        version_arn = alias["routingConfiguration"][0]["stateMachineVersionArn"]
        strategy_version = next((int(k.removeprefix(VERSION_TAG)) for k, v in tags.items()
                                 if k.startswith(VERSION_TAG) and v == version_arn), None)
        return {"alias_arn": f"{arn}:{ALIAS_NAME}", "version_arn": version_arn, "strategy_version": strategy_version}

    def point_alias(self, strategy_id: str, version: int) -> dict[str, Any]:
        """Point the strategy's alias at the state-machine version of strategy ``version`` if the
        matcher has created it; otherwise say why not (the matcher points it on the next event).
        ``previous_version_arn`` is where the alias pointed before (for :meth:`route_alias`)."""
        _, arn = self._strategy_machine(strategy_id)
        tags = self._machine_tags(arn)
        if tags is None:
            return {"pointed": False, "why": "the strategy has no state machine yet"}
        version_arn = tags.get(f"{VERSION_TAG}{version}")
        if version_arn is None:
            return {"pointed": False, "why": f"no state-machine version for v{version} yet"}
        before = self.alias_target(strategy_id)
        alias_arn = self._route_alias(arn, version_arn, f"{strategy_id} v{version}")
        return {"pointed": True, "alias_arn": alias_arn, "version_arn": version_arn,
                "previous_version_arn": before["version_arn"] if before else None}

    def route_alias(self, strategy_id: str, version_arn: str) -> str:
        """Point the strategy's alias at a state-machine version ARN (undoing :meth:`point_alias`)."""
        _, arn = self._strategy_machine(strategy_id)
        return self._route_alias(arn, version_arn, f"{strategy_id} (restored)")
