"""Creates every resource of ``powerx_agent.spec`` through boto3 against the embedded moto server.

The same specification drives the CDK stack (``infra/``); ``describe`` returns what was created so
an infrastructure test can compare both.
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from powerx_agent import spec
from powerx_agent.adapters.dynamo import to_item
from powerx_agent.adapters.strategies_store import StrategiesStore
from powerx_agent.settings import Env

ACCOUNT = "123456789012"
LOCAL_RELEASE = "embedded"  # the release the embedded runtime publishes at start
_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                               "Principal": {"Service": ["lambda.amazonaws.com",
                                                                                         "states.amazonaws.com"]}}]})


def _code_zip() -> bytes:
    """Placeholder code package: moto stores it; invocations run our handlers in process."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "PowerX Agent: code runs in process on the embedded runtime\n")
    return buffer.getvalue()


@dataclass
class Deployment:
    region: str
    queue_urls: dict[str, str] = field(default_factory=dict)
    queue_arns: dict[str, str] = field(default_factory=dict)
    function_arns: dict[str, str] = field(default_factory=dict)  # unqualified
    alias_arns: dict[str, str] = field(default_factory=dict)  # the live alias: what every trigger invokes
    table_arns: dict[str, str] = field(default_factory=dict)
    stream_arns: dict[str, str] = field(default_factory=dict)
    lambda_role_arn: str = ""
    workflow_role_arn: str = ""
    replay_keys: dict[str, dict[str, str]] = field(default_factory=dict)  # caller -> {"current", "previous"}
    callback_keys: dict[str, str] = field(default_factory=dict)  # {"current", "previous"}
    downstream_credentials: dict[str, str] = field(default_factory=dict)
    rest_api_id: str = ""


def deploy(client: Any, region: str, environment: dict[str, str], *, visibility_timeout: int | None = None,
           max_receive_count: int | None = None) -> Deployment:
    """``client(service)`` returns a boto3 client bound to the moto server."""
    out = Deployment(region)
    iam = client("iam")
    out.lambda_role_arn = iam.create_role(RoleName=spec.LAMBDA_ROLE_NAME, AssumeRolePolicyDocument=_TRUST)["Role"]["Arn"]
    out.workflow_role_arn = iam.create_role(RoleName=spec.WORKFLOW_ROLE_NAME,
                                            AssumeRolePolicyDocument=_TRUST)["Role"]["Arn"]
    _tables(client("dynamodb"), out)
    _queues(client("sqs"), out, visibility_timeout, max_receive_count)
    _secrets(client("secretsmanager"), out)
    logs = client("logs")
    for group in (spec.AUDIT_LOG_GROUP, environment.get(Env.METRICS_LOG_GROUP, spec.METRICS_LOG_GROUP),
                  spec.STATE_MACHINE_LOG_GROUP):
        logs.create_log_group(logGroupName=group)
    (machine_logs,) = [g for g in logs.describe_log_groups(logGroupNamePrefix=spec.STATE_MACHINE_LOG_GROUP)["logGroups"]
                       if g["logGroupName"] == spec.STATE_MACHINE_LOG_GROUP]
    env = {**environment, Env.WORKFLOW_ROLE_ARN: out.workflow_role_arn, Env.SFN_LOG_GROUP_ARN: machine_logs["arn"],
           Env.MATCH_QUEUE_URL: out.queue_urls[spec.MATCH_QUEUE.name],
           Env.INGEST_DLQ_URL: out.queue_urls[spec.INGEST_DLQ.name]}
    # compiled task ARNs: the node functions' live alias, as on AWS
    env.update({var: f"arn:aws:lambda:{region}:{ACCOUNT}:function:{spec.FUNCTIONS_BY_KEY[f].name}:{spec.LIVE_ALIAS}"
                for var, f in ((Env.NODE_PLUGIN_ARN, "node_plugin"), (Env.NODE_NOTIFY_ARN, "node_notify"),
                               (Env.NODE_REVIEW_ARN, "node_review"), (Env.WORKFLOW_FN_ARN, "workflow"))})
    _functions(client("lambda"), out, env)
    publish_release(client("lambda"), out, LOCAL_RELEASE)
    _async_config(client("lambda"), out)
    _event_sources(client("lambda"), out)
    _bus(client("events"), out)
    _api(client("apigateway"), out)
    environment.update(env)
    return out


def _tables(ddb: Any, out: Deployment) -> None:
    for table in spec.TABLES:
        attributes = [{"AttributeName": name, "AttributeType": "N" if name == "seq" else "S"}
                      for name in table.key_attributes]
        schema = [{"AttributeName": table.partition_key, "KeyType": "HASH"}]
        if table.sort_key:
            schema.append({"AttributeName": table.sort_key, "KeyType": "RANGE"})
        kwargs: dict[str, Any] = {"TableName": table.name, "AttributeDefinitions": attributes, "KeySchema": schema,
                                  "BillingMode": "PAY_PER_REQUEST", "SSESpecification": {"Enabled": True}}
        if table.indexes:
            kwargs["GlobalSecondaryIndexes"] = [{
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
                + ([{"AttributeName": index.sort_key, "KeyType": "RANGE"}] if index.sort_key else []),
                "Projection": {"ProjectionType": index.projection}} for index in table.indexes]
        if table.stream:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": table.stream}
        described = ddb.create_table(**kwargs)["TableDescription"]
        out.table_arns[table.name] = described["TableArn"]
        if table.stream:
            out.stream_arns[table.name] = described["LatestStreamArn"]
        if table.ttl_attribute:
            ddb.update_time_to_live(TableName=table.name, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": table.ttl_attribute})
        ddb.update_continuous_backups(TableName=table.name, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})


def _queues(sqs: Any, out: Deployment, visibility_timeout: int | None, max_receive_count: int | None) -> None:
    for queue in spec.QUEUES:  # DLQs come first in spec.QUEUES
        attributes = {"VisibilityTimeout": str(visibility_timeout or queue.visibility_timeout),
                      "MessageRetentionPeriod": str(queue.retention_seconds),
                      "MaximumMessageSize": str(queue.max_message_bytes)}
        if queue.dlq:
            attributes["RedrivePolicy"] = json.dumps({
                "deadLetterTargetArn": out.queue_arns[queue.dlq],
                "maxReceiveCount": str(max_receive_count or queue.max_receive_count)})
        url = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
        out.queue_urls[queue.name] = url
        out.queue_arns[queue.name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]


LOCAL_REPLAY_CALLERS = {"operator": ["*"], "acme-backfill": ["acme"]}
"""The embedded runtime's replay callers: the operator (every tenant, what the stack creates) and a
caller scoped to one tenant, as a producer's backfill job would be."""


def _secrets(sm: Any, out: Deployment) -> None:
    # the stack's formats (infra/components/secrets.py): a key set is {"active": "k1", "k1": ..., "k2": ...}
    callers = {}
    for caller, tenants in LOCAL_REPLAY_CALLERS.items():
        k1, k2 = secrets.token_hex(32), secrets.token_hex(32)
        callers[caller] = {"tenants": tenants, "active": "k1", "k1": k1, "k2": k2}
        out.replay_keys[caller] = {"current": k1, "previous": k2}
    sm.create_secret(Name=spec.REPLAY_SECRET_NAME, SecretString=json.dumps({"callers": callers}))
    k1, k2 = secrets.token_hex(32), secrets.token_hex(32)
    sm.create_secret(Name=spec.CALLBACK_SECRET_NAME, SecretString=json.dumps({"active": "k1", "k1": k1, "k2": k2}))
    out.callback_keys = {"current": k1, "previous": k2}
    out.downstream_credentials = {"plugin_runtime_token": secrets.token_hex(16),
                                  "notifications_token": secrets.token_hex(16), "ops_token": secrets.token_hex(16)}
    sm.create_secret(Name=spec.DOWNSTREAM_SECRET_NAME, SecretString=json.dumps(out.downstream_credentials))


def _functions(lam: Any, out: Deployment, env: dict[str, str]) -> None:
    code = _code_zip()
    for function in spec.FUNCTIONS:
        arn = lam.create_function(
            FunctionName=function.name, Runtime="python3.11", Role=out.lambda_role_arn, Handler=function.handler,
            Code={"ZipFile": code}, Timeout=function.timeout, MemorySize=function.memory,
            Description=function.description, Architectures=["arm64"],
            Environment={"Variables": {k: v for k, v in env.items() if not k.startswith("AWS_")}},
        )["FunctionArn"]
        out.function_arns[function.key] = arn


def publish_release(lam: Any, out: Deployment, release_id: str) -> dict[str, str]:
    """What a deploy does to every function (infra/components/functions.py): ``POWERX_RELEASE`` in its
    environment, a new version described with the release, the ``live`` alias pointed at it. Returns
    {function key: version}. (On the embedded runtime every version runs the checkout's code in process.)"""
    published = {}
    for function in spec.FUNCTIONS:
        config = lam.get_function_configuration(FunctionName=function.name)
        variables = {**(config.get("Environment") or {}).get("Variables", {}), Env.POWERX_RELEASE: release_id}
        lam.update_function_configuration(FunctionName=function.name, Environment={"Variables": variables})
        description = spec.release_description(release_id)
        version = lam.publish_version(FunctionName=function.name, Description=description)["Version"]
        try:
            alias = lam.update_alias(FunctionName=function.name, Name=spec.LIVE_ALIAS, FunctionVersion=version,
                                     Description=description)
        except lam.exceptions.ResourceNotFoundException:
            alias = lam.create_alias(FunctionName=function.name, Name=spec.LIVE_ALIAS, FunctionVersion=version,
                                     Description=description)
        out.alias_arns[function.key] = alias["AliasArn"]
        published[function.key] = version
    return published


def _async_config(lam: Any, out: Deployment) -> None:
    """Ingest's asynchronous invocation config on its live alias, as in the stack. (moto stores it on the
    function whatever the qualifier; the runtime's own EventBridge delivery applies the retries.)"""
    lam.put_function_event_invoke_config(
        FunctionName=spec.FUNCTIONS_BY_KEY["ingest"].name, Qualifier=spec.LIVE_ALIAS, MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": out.queue_arns[spec.INGEST_DLQ.name]}})


def _event_sources(lam: Any, out: Deployment) -> None:
    for mapping in spec.EVENT_SOURCES_MAPPINGS:
        if mapping.kind == "sqs":
            # created for fidelity but disabled in moto: moto would invoke inside SendMessage and ignore
            # partial batch responses; the runtime's poller (local/pollers.py) does Lambda's polling instead
            lam.create_event_source_mapping(EventSourceArn=out.queue_arns[mapping.source],
                                            FunctionName=out.alias_arns[mapping.function],
                                            BatchSize=mapping.batch_size, Enabled=False,
                                            MaximumBatchingWindowInSeconds=mapping.batching_window,
                                            FunctionResponseTypes=["ReportBatchItemFailures"])
        else:
            kwargs: dict[str, Any] = {}
            if mapping.on_failure:
                kwargs["DestinationConfig"] = {"OnFailure": {"Destination": out.queue_arns[mapping.on_failure]}}
            lam.create_event_source_mapping(EventSourceArn=out.stream_arns[mapping.source],
                                            FunctionName=out.alias_arns[mapping.function],
                                            BatchSize=mapping.batch_size, StartingPosition="TRIM_HORIZON",
                                            MaximumBatchingWindowInSeconds=mapping.batching_window,
                                            BisectBatchOnFunctionError=mapping.bisect_on_error,
                                            MaximumRetryAttempts=mapping.retry_attempts, **kwargs)


def _bus(events: Any, out: Deployment) -> None:
    bus_arn = events.create_event_bus(Name=spec.BUS_NAME)["EventBusArn"]
    events.create_archive(ArchiveName=spec.ARCHIVE_NAME, EventSourceArn=bus_arn, RetentionDays=30)
    for rule in spec.RULES:
        events.put_rule(Name=rule.name, EventBusName=rule.bus, EventPattern=json.dumps(rule.pattern), State="ENABLED")
        arn = out.alias_arns[rule.target_function] if rule.target_function else out.queue_arns[str(rule.target_queue)]
        events.put_targets(Rule=rule.name, EventBusName=rule.bus, Targets=[{
            "Id": rule.target_function or "queue", "Arn": arn,
            "RetryPolicy": {"MaximumRetryAttempts": rule.max_retry_attempts,
                            "MaximumEventAgeInSeconds": rule.max_event_age_seconds},
            "DeadLetterConfig": {"Arn": out.queue_arns[rule.dlq]}}])
    for schedule in spec.SCHEDULES:  # on the default bus; local/pollers.py Scheduler fires them (moto does not)
        events.put_rule(Name=schedule.name, ScheduleExpression=schedule.expression, State="ENABLED")
        events.put_targets(Rule=schedule.name, Targets=[{
            "Id": schedule.target_function, "Arn": out.alias_arns[schedule.target_function],
            "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 60}}])


def _api(apigw: Any, out: Deployment) -> None:
    api = apigw.create_rest_api(name="powerx-agent-internal")
    out.rest_api_id = api["id"]
    resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=api["id"])["items"]}
    for function_key, (method, path) in spec.API_ROUTES.items():
        parent = resources["/"]
        built = ""
        for part in path.strip("/").split("/"):
            built += f"/{part}"
            if built not in resources:
                resources[built] = apigw.create_resource(restApiId=api["id"], parentId=parent, pathPart=part)["id"]
            parent = resources[built]
        apigw.put_method(restApiId=api["id"], resourceId=parent, httpMethod=method, authorizationType="NONE")
        apigw.put_integration(
            restApiId=api["id"], resourceId=parent, httpMethod=method, type="AWS_PROXY", integrationHttpMethod="POST",
            uri=f"arn:aws:apigateway:{out.region}:lambda:path/2015-03-31/functions/"
                f"{out.alias_arns[function_key]}/invocations")


def seed_tenants(ddb: Any, tenants_file: Path) -> list[dict[str, Any]]:
    """The registry file, validated as ``powerx-agent tenants apply`` validates it, written as revision 1."""
    from powerx_agent.tenant_registry import load_tenants

    tenants = [t.record() for t in load_tenants(tenants_file.read_bytes(), str(tenants_file))]
    for tenant in tenants:
        item = {**tenant, "revision": 1, "updated_by": "local-runtime"}
        ddb.put_item(TableName=spec.TENANTS_TABLE.name, Item=to_item(item))
    return tenants


def publish_directory(store: StrategiesStore, directory: Path, actor: str = "local-runtime") -> list[dict[str, Any]]:
    """Publish and approve every strategy file whose YAML says ``status: approved`` (local seeding),
    each approval publishing the library revision with its compiled artifact."""
    from powerx_agent.ops.library import builder
    from powerx_agent.strategy.loader import load_strategy_text, strategy_files

    results = []
    for path in strategy_files(directory):
        text = path.read_text()
        compiled, findings = load_strategy_text(text, str(path))
        errors = [f for f in findings if f.severity == "error"]
        if compiled is None or errors:
            raise ValueError(f"{path} does not load: " + "; ".join(str(f) for f in errors))
        strategy = compiled.strategy
        store.publish(strategy.id, strategy.version, text, actor)
        if strategy.status == "approved":
            results.append(store.approve(strategy.id, strategy.version, actor, "seeded by the local runtime",
                                         build=builder(store)))
    return results
