"""How CLI commands reach an engine: the embedded runtime, a deployed stack, or the environment.

Root options (``powerx-agent --endpoint-url URL --region R --profile P --stack NAME <command>``) or
the usual AWS variables select the target:

- ``--endpoint-url http://127.0.0.1:PORT`` (what ``powerx-agent local serve`` prints): the embedded
  runtime; resources have their logical names, queue URLs are looked up, flags live in DynamoDB.
- ``--stack NAME``: a deployed stack; names, URLs and ARNs come from its CloudFormation outputs.
- neither: whatever the environment already says (inside tests the runtime has set it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlparse

import typer

from powerx_agent import spec
from powerx_agent.adapters.stack import stack_outputs
from powerx_agent.deps import Deps, get_deps
from powerx_agent.settings import Env, load_settings

# CloudFormation output key -> environment variable read by powerx_agent.settings
STACK_OUTPUTS = {
    "EventBusName": Env.EVENT_BUS_NAME, "MatchQueueUrl": Env.MATCH_QUEUE_URL, "IngestDlqUrl": Env.INGEST_DLQ_URL,
    "WorkflowRoleArn": Env.WORKFLOW_ROLE_ARN, "StateMachinePrefix": Env.STATE_MACHINE_PREFIX,
    "AuditLogGroup": Env.AUDIT_LOG_GROUP, "ReplaySecretArn": Env.REPLAY_SECRET_ARN,
    "CallbackSecretArn": Env.CALLBACK_SECRET_ARN, "CallbacksUrl": Env.CALLBACKS_URL,
    "DownstreamSecretArn": Env.DOWNSTREAM_SECRET_ARN, "AppConfigApplication": Env.APPCONFIG_APPLICATION,
    "AppConfigEnvironment": Env.APPCONFIG_ENVIRONMENT, "AppConfigProfile": Env.APPCONFIG_PROFILE,
    "AppConfigDeploymentStrategy": Env.APPCONFIG_DEPLOYMENT_STRATEGY,
    "ApiUrl": Env.POWERX_API_URL, "ArchiveName": Env.POWERX_ARCHIVE_NAME, "EventsTable": Env.EVENTS_TABLE,
    "WorkflowsTable": Env.WORKFLOWS_TABLE, "StrategiesTable": Env.STRATEGIES_TABLE, "TenantsTable": Env.TENANTS_TABLE,
    "AuditTable": Env.AUDIT_TABLE, "ResourcePrefix": Env.RESOURCE_PREFIX, "StateMachineLogGroupArn": Env.SFN_LOG_GROUP_ARN,
}


@dataclass
class Target:
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    stack: str | None = None


def is_loopback(url: str | None) -> bool:
    host = urlparse(url or "").hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def configure(target: Target) -> None:
    """Put the target into the environment the settings are read from."""
    if target.endpoint_url:
        if not urlparse(target.endpoint_url).scheme.startswith("http"):
            raise typer.BadParameter(f"{target.endpoint_url!r} is not an http(s) URL", param_hint="--endpoint-url")
        os.environ[Env.AWS_ENDPOINT_URL] = target.endpoint_url
    if target.region:
        os.environ[Env.AWS_REGION] = os.environ[Env.AWS_DEFAULT_REGION] = target.region
    if target.profile:
        os.environ["AWS_PROFILE"] = target.profile
    os.environ.setdefault(Env.AWS_REGION, os.environ.get(Env.AWS_DEFAULT_REGION, "us-east-1"))
    endpoint = os.environ.get(Env.AWS_ENDPOINT_URL)
    if is_loopback(endpoint):
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                            ("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled"), (Env.FLAGS_STORE, "dynamodb"),
                            (Env.METRICS_SINK, "logs")):
            os.environ.setdefault(name, value)
    if target.stack:
        _from_stack(target.stack)
    elif is_loopback(endpoint) and not os.environ.get(Env.MATCH_QUEUE_URL):
        _local_queue_urls()


def _from_stack(stack: str) -> None:
    from powerx_agent.cli.failures import describe
    from powerx_agent.errors import ConfigurationError

    deps = Deps(load_settings())
    try:
        outputs = stack_outputs(deps.client("cloudformation"), stack)
    except Exception as exc:  # noqa: BLE001 - reported as an unusable target with the cause
        raise ConfigurationError(f"cannot read stack {stack!r} (--stack): {describe(exc)[0]}",
                                 code="stack.unreadable") from None
    for key, value in outputs.items():
        env = STACK_OUTPUTS.get(key)
        if env:
            os.environ[env] = value


def _local_queue_urls() -> None:
    deps = get_deps()
    for queue, env in ((spec.MATCH_QUEUE.name, Env.MATCH_QUEUE_URL), (spec.INGEST_DLQ.name, Env.INGEST_DLQ_URL)):
        url = deps.queues.url(queue)
        if url:  # a queue that is not there: the commands that need it say so
            os.environ[env] = url


_target = Target()


def set_target(target: Target) -> None:
    global _target
    _target = target


def current_target() -> Target:
    return _target


def connect() -> Deps:
    """Configure from the root options and return the Deps the logic modules take."""
    configure(_target)
    return get_deps()
