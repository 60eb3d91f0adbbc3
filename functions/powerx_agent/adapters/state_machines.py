"""Step Functions version/alias bookkeeping per strategy: the state machines the matcher starts
executions on, and the alias ``live`` that ``strategy approve``/``rollback`` point.

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
"""

from __future__ import annotations

from typing import Any

from powerx_agent import spec
from powerx_agent.adapters.aws import error_code

ALIAS_NAME = "live"
VERSION_TAG = "powerx:v"


def state_machine_arn(settings: Any, name: str) -> str:
    """ARN in the deployment's partition and account, both read from the workflow role's ARN
    (``arn:<partition>:iam::<account>:role/...``), so GovCloud and China regions work too."""
    _, partition, _, _, account = settings.workflow_role_arn.split(":")[:5]
    return f"arn:{partition}:states:{settings.region}:{account}:stateMachine:{name}"


def _names(deps: Any, strategy_id: str) -> tuple[str, str]:
    name = f"{deps.settings.state_machine_prefix}{strategy_id}"
    return name, state_machine_arn(deps.settings, name)


def machine_name(deps: Any, flow: Any) -> str:
    """The hash-named state machine of a compiled flow, with the deployment's prefix."""
    return deps.settings.state_machine_prefix + flow.state_machine_name.removeprefix(spec.STATE_MACHINE_PREFIX)


def ensure_state_machine(deps: Any, flow: Any) -> dict[str, Any]:
    """Create the flow's immutable, hash-named state machine when missing (published as version 1)
    and publish the flow as a version of the strategy's alias machine with ``live`` pointing at it.

    Returns ``{"state_machine_arn", "state_machine_version_arn", "strategy_state_machine_arn",
    "strategy_alias_arn", "strategy_state_machine_version_arn"}``; idempotent."""
    settings = deps.settings
    sfn = deps.client("stepfunctions")
    name = machine_name(deps, flow)
    arn = state_machine_arn(settings, name)
    description = f"{flow.strategy_id} v{flow.strategy_version} {flow.hash8}"
    version_arn = f"{arn}:1"
    try:
        sfn.describe_state_machine(stateMachineArn=arn)
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
            sfn.create_state_machine(
                name=name, definition=flow.definition_json, roleArn=settings.workflow_role_arn, type=flow.type,
                publish=True, versionDescription=description,
                tags=[{"key": "powerx:definition-sha256", "value": flow.sha256},
                      {"key": "powerx:strategy", "value": f"{flow.strategy_id}@v{flow.strategy_version}"}])
        except Exception as create_exc:  # noqa: BLE001
            if error_code(create_exc) not in ("StateMachineAlreadyExists",):
                raise
    out = {"state_machine_arn": arn, "state_machine_version_arn": version_arn}
    if flow.strategy_id:
        out.update(_publish_strategy_version(deps, sfn, flow, description))
    return out


def _publish_strategy_version(deps: Any, sfn: Any, flow: Any, description: str) -> dict[str, Any]:
    name, arn = _names(deps, flow.strategy_id)
    tag = f"{VERSION_TAG}{flow.strategy_version}"
    tags = _tags(sfn, arn)
    if tags is None:
        try:
            version_arn = sfn.create_state_machine(
                name=name, definition=flow.definition_json, roleArn=deps.settings.workflow_role_arn,
                type=flow.type, publish=True, versionDescription=description,
                tags=[{"key": "powerx:strategy", "value": flow.strategy_id}])["stateMachineVersionArn"]
        except Exception as create_exc:  # noqa: BLE001
            if error_code(create_exc) != "StateMachineAlreadyExists":
                raise
            return _publish_strategy_version(deps, sfn, flow, description)  # created concurrently
        sfn.tag_resource(resourceArn=arn, tags=[{"key": tag, "value": version_arn}])
        tags = None
    if tags is not None:
        version_arn = tags.get(tag, "")
        if not version_arn or sfn.describe_state_machine(
                stateMachineArn=version_arn).get("definition") != flow.definition_json:
            version_arn = sfn.update_state_machine(
                stateMachineArn=arn, definition=flow.definition_json, roleArn=deps.settings.workflow_role_arn,
                publish=True, versionDescription=description)["stateMachineVersionArn"]
            _retag(sfn, arn, tags, tag, version_arn)
    alias_arn = _route_alias(sfn, arn, version_arn, f"{flow.strategy_id} v{flow.strategy_version}")
    return {"strategy_state_machine_arn": arn, "strategy_state_machine_version_arn": version_arn,
            "strategy_alias_arn": alias_arn}


MAX_VERSION_TAGS = 40
"""A resource has at most 50 tags: keep the newest 40 strategy-version mappings."""


def _tags(sfn: Any, arn: str) -> dict[str, str] | None:
    """The machine's tags, or None when the machine does not exist (moto lists tags of any ARN)."""
    try:
        sfn.describe_state_machine(stateMachineArn=arn)
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) in ("StateMachineDoesNotExist", "ResourceNotFound"):
            return None
        raise
    return {t["key"]: t["value"] for t in sfn.list_tags_for_resource(resourceArn=arn)["tags"]}


def _retag(sfn: Any, arn: str, tags: dict[str, str], tag: str, version_arn: str) -> None:
    versions = sorted(int(k.removeprefix(VERSION_TAG)) for k in tags
                      if k.startswith(VERSION_TAG) and k.removeprefix(VERSION_TAG).isdigit() and k != tag)
    stale = versions[: max(0, len(versions) + 1 - MAX_VERSION_TAGS)]
    if stale:
        sfn.untag_resource(resourceArn=arn, tagKeys=[f"{VERSION_TAG}{v}" for v in stale])
    sfn.tag_resource(resourceArn=arn, tags=[{"key": tag, "value": version_arn}])


def _route_alias(sfn: Any, machine_arn: str, version_arn: str, description: str) -> str:
    alias_arn = f"{machine_arn}:{ALIAS_NAME}"
    routing = [{"stateMachineVersionArn": version_arn, "weight": 100}]
    try:
        current = sfn.describe_state_machine_alias(stateMachineAliasArn=alias_arn)
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) not in ("ResourceNotFound", "StateMachineDoesNotExist"):
            raise
        try:
            return sfn.create_state_machine_alias(name=ALIAS_NAME, routingConfiguration=routing,
                                                  description=description)["stateMachineAliasArn"]
        except Exception as create_exc:  # noqa: BLE001
            if error_code(create_exc) != "ConflictException":
                raise
            current = {"routingConfiguration": []}
    if current.get("routingConfiguration") != routing:
        sfn.update_state_machine_alias(stateMachineAliasArn=alias_arn, routingConfiguration=routing,
                                       description=description)
    return alias_arn


def alias_target(deps: Any, strategy_id: str) -> dict[str, Any] | None:
    """Where the strategy's alias points: ``{"alias_arn", "version_arn", "strategy_version"}``."""
    _, arn = _names(deps, strategy_id)
    sfn = deps.client("stepfunctions")
    tags = _tags(sfn, arn)
    if tags is None:
        return None
    try:
        alias = sfn.describe_state_machine_alias(stateMachineAliasArn=f"{arn}:{ALIAS_NAME}")
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) in ("ResourceNotFound", "StateMachineDoesNotExist"):
            return None
        raise
    version_arn = alias["routingConfiguration"][0]["stateMachineVersionArn"]
    strategy_version = next((int(k.removeprefix(VERSION_TAG)) for k, v in tags.items()
                             if k.startswith(VERSION_TAG) and v == version_arn), None)
    return {"alias_arn": f"{arn}:{ALIAS_NAME}", "version_arn": version_arn, "strategy_version": strategy_version}


def point_alias(deps: Any, strategy_id: str, version: int) -> dict[str, Any]:
    """Point the strategy's alias at the state-machine version of strategy ``version`` if the
    matcher has created it; otherwise say why not (the matcher points it on the next event)."""
    _, arn = _names(deps, strategy_id)
    sfn = deps.client("stepfunctions")
    tags = _tags(sfn, arn)
    if tags is None:
        return {"pointed": False, "why": "the strategy has no state machine yet"}
    version_arn = tags.get(f"{VERSION_TAG}{version}")
    if version_arn is None:
        return {"pointed": False, "why": f"no state-machine version for v{version} yet"}
    alias_arn = _route_alias(sfn, arn, version_arn, f"{strategy_id} v{version}")
    return {"pointed": True, "alias_arn": alias_arn, "version_arn": version_arn}
