"""Lambda functions from ``spec.FUNCTIONS``: one role each, only the environment and grants it uses.

Code asset: ``functions/powerx_agent`` (without the embedded runtime ``local/``, the console script
``cli/`` and its operator wing ``ops/``, tests and caches) plus the baseline strategy library ``strategies/*.yaml`` at
``/var/task/strategies`` (``STRATEGIES_DIR`` of the matcher, used when the flag
``agent-strategy-library`` is off), staged at synth time by :func:`stage_code`. Third-party
dependencies come from the layer built by ``layers/build.py``. arm64, X-Ray active, Powertools
settings, explicit log groups with retention. Every grant below is listed in docs/architecture.md and
asserted exactly by tests/infrastructure/test_least_privilege.py.

Releases: every function is published as a version and invoked through its ``live`` alias
(``spec.LIVE_ALIAS``) by every trigger: the rule target, the event source mappings, the API
integrations, the Step Functions tasks (the matcher's ``NODE_*_ARN``), and ingest's asynchronous
invocation config sits on the alias. All functions move together: the release id is a hash of every
function's code, layer and configuration (:meth:`Functions._release_id`), set as ``POWERX_RELEASE`` on
each function (so each one changes, and Lambda publishes a new version of each) and written into the
versions' description. A version's logical id carries the release id and is retained, so the versions
of earlier releases stay for ``powerx-agent release rollback``.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants
from infra.components.audit import Audit
from infra.components.flags import Flags
from infra.components.nag import acknowledge, logical_id
from infra.components.queues import Queues
from infra.components.secrets import Secrets
from infra.components.tables import Tables
from infra.components.workflow import Workflow
from powerx_agent import spec
from powerx_agent.settings import Env
from powerx_agent.strategy.loader import strategy_files

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "powerx_agent"
# never shipped: the embedded runtime (moto), the console script and the operator wing it drives run on
# operators' and developers' machines only (tests/infrastructure/test_grants_follow_the_code.py proves no
# handler imports them)
PACKAGE_EXCLUDE = ("local", "loadtest", "cli", "ops", "console", "testing")
CODE_EXCLUDE = [
    "tests",
    "**/tests",
    "**/__pycache__",
    "**/*.pyc",
    "*.egg-info",
    "**/.pytest_cache",
    "**/.mypy_cache",
    "**/.ruff_cache",
]
_IGNORE = shutil.ignore_patterns("tests", "__pycache__", "*.pyc", "*.egg-info", ".pytest_cache", ".mypy_cache",
                                 ".ruff_cache")


def stage_code(repo_root: Path = REPO_ROOT) -> Path:
    """A fresh directory with what the Lambda code asset holds:

    ``powerx_agent/`` (minus ``PACKAGE_EXCLUDE``), ``strategies/*.yaml`` (the baseline library) and
    ``event-types/*.schema.json`` (the payload contracts ingest applies).
    CDK copies it into the cloud assembly while the construct is built (the asset hash is computed
    from the content, so a changed strategy file changes the asset and is deployed).
    """
    staging = Path(tempfile.mkdtemp(prefix="powerx-agent-code-"))
    atexit.register(shutil.rmtree, staging, True)
    package = repo_root / "functions" / PACKAGE

    def ignore(directory: str, names: list[str]) -> set[str]:
        ignored = set(_IGNORE(directory, names))
        if Path(directory) == package:
            ignored |= set(PACKAGE_EXCLUDE) & set(names)
        return ignored

    shutil.copytree(package, staging / PACKAGE, ignore=ignore)
    strategies = staging / constants.ASSET_STRATEGIES_DIR
    strategies.mkdir()
    library = repo_root / "strategies"
    for path in strategy_files(library):  # the library's one listing rule, subfolders kept
        target = strategies / path.relative_to(library)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    contracts = staging / constants.ASSET_CONTRACTS_DIR
    contracts.mkdir()
    for path in sorted((repo_root / "config" / "event-types").glob("*.schema.json")):
        shutil.copy2(path, contracts / path.name)
    return staging
RUNTIME = getattr(lambda_.Runtime, "PYTHON_" + constants.PYTHON_VERSION.replace(".", "_"))

_WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
KMS_READ = ("kms:Decrypt", "kms:DescribeKey")
KMS_WRITE = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")


@dataclass(frozen=True)
class Downstream:
    plugin_runtime_url: str
    notifications_url: str
    ops_url: str


def _logical(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))


class Functions(Construct):
    """All functions; ``self.by_key[spec key]``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        layer_dir: Path,
        tables: Tables,
        queues: Queues,
        secrets: Secrets,
        flags: Flags,
        audit: Audit,
        workflow: Workflow,
        event_bus_name: str,
        event_bus_arn: str,
        downstream: Downstream,
        log_retention: logs.RetentionDays,
        idempotency_expiry_seconds: int,
        reserved_concurrency: dict[str, int],
    ) -> None:
        super().__init__(scope, id)
        self._tables = tables
        self.code_dir = stage_code()
        self.code = lambda_.Code.from_asset(str(self.code_dir), exclude=CODE_EXCLUDE)
        self.layer = lambda_.LayerVersion(
            self,
            "DependenciesLayer",
            # python/ only: the build's stamp and manifest stay out of /opt
            code=lambda_.Code.from_asset(str(layer_dir), exclude=[".stamp", "manifest.json"]),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description="PowerX Agent runtime dependencies (layers/requirements.txt, built by layers/build.py)",
        )
        self.by_key: dict[str, lambda_.Function] = {}
        self.aliases: dict[str, lambda_.Alias] = {}
        self.versions: dict[str, lambda_.Version] = {}
        self.environments: dict[str, dict[str, str]] = {}  # as given to each function (tokens unresolved)
        self.roles: dict[str, iam.Role] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}

        appconfig_env = {
            Env.APPCONFIG_APPLICATION: flags.application.application_id,
            Env.APPCONFIG_ENVIRONMENT: flags.environment.environment_id,
            Env.APPCONFIG_PROFILE: flags.profile.configuration_profile_id,
            Env.FLAGS_STORE: "appconfig",
        }
        urls = {
            Env.PLUGIN_RUNTIME_URL: downstream.plugin_runtime_url,
            Env.NOTIFICATIONS_URL: downstream.notifications_url,
            Env.OPS_URL: downstream.ops_url,
        }

        # node functions first: the matcher's environment carries their ARNs
        ordered = sorted(spec.FUNCTIONS, key=lambda f: (f.key not in constants.NODE_FUNCTIONS, f.key == "matcher"))
        for fn_spec in ordered:
            env: dict[str, str] = {}
            for table_name in constants.TABLE_ACCESS[fn_spec.key]:
                env[constants.TABLE_ENV[table_name]] = tables.by_name[table_name].table_name
            for table_name, _index in constants.INDEX_QUERIES.get(fn_spec.key, ()):
                env[constants.TABLE_ENV[table_name]] = tables.by_name[table_name].table_name
            if fn_spec.key in constants.RECORDS_METRICS:
                env[Env.METRICS_SINK] = "stdout"  # EMF lines on stdout; Lambda ships them to CloudWatch (no grant)
            for var in constants.DOWNSTREAM_URLS.get(fn_spec.key, ()):
                env[var] = urls[var]
            if fn_spec.key in constants.USES_DOWNSTREAM_SECRET:
                env[Env.DOWNSTREAM_SECRET_ARN] = secrets.downstream.secret_arn
            if fn_spec.key in constants.USES_REPLAY_SECRET:
                env[Env.REPLAY_SECRET_ARN] = secrets.replay.secret_arn
            if fn_spec.key in constants.USES_CALLBACK_SECRET:
                env[Env.CALLBACK_SECRET_ARN] = secrets.callback.secret_arn
            if fn_spec.key in constants.USES_APPCONFIG:
                env.update(appconfig_env)
            if fn_spec.key == "ingest":
                env[Env.MATCH_QUEUE_URL] = queues.match.queue_url
                env[Env.INGEST_DLQ_URL] = queues.ingest_dlq.queue_url
                env[Env.IDEMPOTENCY_EXPIRY_SECONDS] = str(idempotency_expiry_seconds)
                env[Env.EVENT_CONTRACTS_DIR] = f"{constants.LAMBDA_TASK_ROOT}/{constants.ASSET_CONTRACTS_DIR}"
            if fn_spec.key == "matcher":
                env[Env.LIBRARY_SOURCE] = "table"  # published versions; the shipped baseline when the flag is off
                env[Env.STRATEGIES_DIR] = f"{constants.LAMBDA_TASK_ROOT}/{constants.ASSET_STRATEGIES_DIR}"
                env[Env.WORKFLOW_ROLE_ARN] = workflow.role.role_arn
                env[Env.STATE_MACHINE_PREFIX] = f"{prefix}{spec.STATE_MACHINE_PREFIX}"
                env.update(workflow.state_machine_environment())  # logging + tracing of the machines it creates
                for node_key in constants.NODE_FUNCTIONS:  # compiled task ARNs: the node functions' live alias
                    env[constants.NODE_ARN_ENV[node_key]] = f"{self.by_key[node_key].function_arn}:{spec.LIVE_ALIAS}"
            if fn_spec.key == "replay_api":
                env[Env.EVENT_BUS_NAME] = event_bus_name
            if fn_spec.key == "audit_stream":
                env[Env.AUDIT_LOG_GROUP] = audit.log_group.log_group_name
            self._function(fn_spec, prefix, env, log_retention, reserved_concurrency.get(fn_spec.key))

        # grants besides the tables (those are added per function in _function)
        ingest = self.roles["ingest"]
        for queue in (queues.match, queues.ingest_dlq):
            ingest.add_to_policy(
                iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[queue.queue_arn])
            )
        workflow.grant_manage(self.roles["matcher"], constants.STATES_ACCESS["matcher"])
        for key, actions in constants.STATES_ACCESS.items():
            if key == "matcher":
                continue
            if "states:StartExecution" in actions:
                workflow.grant_start(self.roles[key])
            responses = [a for a in actions if a != "states:StartExecution"]
            if responses:
                workflow.grant_task_response(self.roles[key], responses)
        self.roles["replay_api"].add_to_policy(
            iam.PolicyStatement(actions=["events:PutEvents"], resources=[event_bus_arn])
        )
        self.roles["audit_stream"].add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[audit.log_group.log_group_arn],
            )
        )
        for key in constants.USES_DOWNSTREAM_SECRET:
            self.roles[key].add_to_policy(
                iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[secrets.downstream.secret_arn])
            )
        for keys, secret in ((constants.USES_REPLAY_SECRET, secrets.replay),
                             (constants.USES_CALLBACK_SECRET, secrets.callback)):
            for key in keys:
                self.roles[key].add_to_policy(
                    iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[secret.secret_arn])
                )
        for key in constants.USES_APPCONFIG:
            self.roles[key].add_to_policy(
                iam.PolicyStatement(
                    actions=["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"],
                    resources=[flags.configuration_arn],
                )
            )
        self.release_id = self._release_id()
        for key, fn in self.by_key.items():
            self._publish(key, fn)
        # ingest: a failed asynchronous invocation (after Lambda's own retries) lands in the ingest DLQ; the
        # config is on the alias, the qualifier EventBridge invokes
        async_config = lambda_.CfnEventInvokeConfig(
            self,
            "IngestAsyncConfig",
            function_name=self.by_key["ingest"].function_name,
            qualifier=spec.LIVE_ALIAS,
            maximum_retry_attempts=2,
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(destination=queues.ingest_dlq.queue_arn)
            ),
        )
        async_config.node.add_dependency(self.aliases["ingest"])
        workflow.allow_invoke(self.aliases[k] for k in constants.NODE_FUNCTIONS)

    def _release_id(self) -> str:
        """12 hex digits over what a version of any function is made of: code and layer assets (their
        hashes are in the S3 keys), handler, runtime, memory, timeout, environment, tracing, logging."""
        stack = Stack.of(self)
        layer = self.layer.node.default_child
        parts: dict[str, object] = {"layer": stack.resolve(layer.content)}  # type: ignore[union-attr]
        for key, fn in sorted(self.by_key.items()):
            cfn = fn.node.default_child
            assert isinstance(cfn, lambda_.CfnFunction)
            parts[key] = stack.resolve({
                "code": cfn.code, "handler": cfn.handler, "runtime": cfn.runtime, "memory": cfn.memory_size,
                "timeout": cfn.timeout, "environment": self.environments[key], "layers": cfn.layers,
                "architectures": cfn.architectures, "tracing": cfn.tracing_config, "logging": cfn.logging_config,
                "description": cfn.description,
            })
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def _publish(self, key: str, fn: lambda_.Function) -> None:
        """This release's version of ``fn`` (retained when a later release replaces it) and its alias."""
        fn.add_environment(str(Env.POWERX_RELEASE), self.release_id)
        logical = _logical(key)
        description = spec.release_description(self.release_id)
        version = lambda_.Version(
            self, f"{logical}Release{self.release_id}", lambda_=fn, description=description,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.versions[key] = version
        self.aliases[key] = lambda_.Alias(
            self, f"{logical}LiveAlias", alias_name=spec.LIVE_ALIAS, version=version, description=description,
        )

    def _function(
        self,
        fn_spec: spec.FunctionSpec,
        prefix: str,
        env: dict[str, str],
        log_retention: logs.RetentionDays,
        reserved: int | None,
    ) -> None:
        logical = _logical(fn_spec.key)
        function_name = f"{prefix}{fn_spec.name}"
        log_group = logs.LogGroup(
            self,
            f"{logical}Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{logical}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{function_name}: {fn_spec.description}"[:1000],
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            )
        )
        self._grant_tables(fn_spec.key, role)
        environment = {  # plain str keys: jsii would pass an Env member on as an enum
            str(name): value for name, value in {
                "POWERTOOLS_SERVICE_NAME": constants.SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": constants.METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                Env.AGENT_FUNCTION: fn_spec.key,
                **env,
            }.items()
        }
        self.environments[fn_spec.key] = environment
        fn = lambda_.Function(
            self,
            logical,
            function_name=function_name,
            description=fn_spec.description,
            code=self.code,
            handler=fn_spec.handler,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            memory_size=fn_spec.memory,
            timeout=Duration.seconds(fn_spec.timeout),
            layers=[self.layer],
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
            environment=environment,
            reserved_concurrent_executions=reserved,
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray (active tracing) supports no resource-level permissions: xray:PutTraceSegments and "
            "xray:PutTelemetryRecords need Resource '*'.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{logical_id(log_group)}.Arn>:*]",
            "The function writes log streams in its own log group only; Lambda names the streams, so the "
            "grant covers the streams of that one group.",
        )
        acknowledge(
            fn,
            "AwsSolutions-L1",
            f"Pinned to Python {constants.PYTHON_VERSION}: the dependency layer's compiled wheels (pydantic-core, "
            "google-re2) are built for this version by layers/build.py; runtime and layer move together.",
        )
        self.by_key[fn_spec.key] = fn
        self.roles[fn_spec.key] = role
        self.log_groups[fn_spec.key] = log_group

    def _grant_tables(self, key: str, role: iam.Role) -> None:
        writes = False
        for table_name, actions in constants.TABLE_ACCESS[key].items():
            table: dynamodb.Table = self._tables.by_name[table_name]
            role.add_to_policy(iam.PolicyStatement(actions=list(actions), resources=[table.table_arn]))
            writes = writes or bool(_WRITE_ACTIONS.intersection(actions))
        for table_name, index in constants.INDEX_QUERIES.get(key, ()):
            table = self._tables.by_name[table_name]
            role.add_to_policy(
                iam.PolicyStatement(actions=["dynamodb:Query"], resources=[f"{table.table_arn}/index/{index}"])
            )
        if constants.TABLE_ACCESS[key] or constants.INDEX_QUERIES.get(key):
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=list(KMS_WRITE if writes else KMS_READ), resources=[self._tables.key.key_arn]
                )
            )

