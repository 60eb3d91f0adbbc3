"""The synthesized template: tables, queues, functions, rule, API, alarms, dashboard, secrets, AppConfig."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from infra import constants, monitoring
from powerx_agent import spec


def _by_prop(synth, cfn_type: str, prop: str) -> dict[str, dict]:
    return {r["Properties"][prop]: r for r in synth.of_type(cfn_type).values()
            if isinstance(r["Properties"].get(prop), str)}


# --- tables -----------------------------------------------------------------------------------
@pytest.mark.parametrize("table_spec", spec.TABLES, ids=lambda t: t.name)
def test_table_is_on_demand_pitr_kms_with_spec_keys(synth, table_spec):
    table = _by_prop(synth, "AWS::DynamoDB::Table", "TableName")[table_spec.name]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    sse = table["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS"
    assert sse["KMSMasterKeyId"]["Fn::GetAtt"][0] == synth.logical_id(synth.stack.tables.key)
    keys = [{"AttributeName": table_spec.partition_key, "KeyType": "HASH"}]
    if table_spec.sort_key:
        keys.append({"AttributeName": table_spec.sort_key, "KeyType": "RANGE"})
    assert table["KeySchema"] == keys
    if table_spec.ttl_attribute:
        assert table["TimeToLiveSpecification"] == {"AttributeName": table_spec.ttl_attribute, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in table
    if table_spec.stream:
        assert table["StreamSpecification"] == {"StreamViewType": table_spec.stream}
    else:
        assert "StreamSpecification" not in table


def test_tables_key_rotates_and_tables_are_retained_by_default(synth):
    key = synth.resources[synth.logical_id(synth.stack.tables.key)]
    assert key["Properties"]["EnableKeyRotation"] is True
    for table in synth.of_type("AWS::DynamoDB::Table").values():
        assert table["DeletionPolicy"] == "Retain"
        assert table["Properties"]["DeletionProtectionEnabled"] is True


GSI1_AS_DEPLOYED = {"IndexName": "gsi1", "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                                                       {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
                    "Projection": {"ProjectionType": "ALL"}}


def test_workflows_table_keeps_gsi1_as_deployed_and_adds_the_keys_only_tenant_index_in_place(synth):
    # written out, not derived from spec: gsi1 is what deployed stacks have (open reviews and workflows created
    # before by_tenant are read from it; changing its keys or projection would drop and rebuild it); the
    # table's logical id and name stay, so adding one index is an in-place update (CloudFormation adds one
    # GSI per update)
    resource = synth.resources["TablesAgentWorkflowsA6BF2458"]
    table = resource["Properties"]
    assert table["TableName"] == "agent_workflows"
    assert table["GlobalSecondaryIndexes"] == [GSI1_AS_DEPLOYED, {
        "IndexName": "by_tenant", "KeySchema": [{"AttributeName": "tpk", "KeyType": "HASH"},
                                                {"AttributeName": "tsk", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"}}]
    assert {"AttributeName": "tpk", "AttributeType": "S"} in table["AttributeDefinitions"]
    assert {"AttributeName": "tsk", "AttributeType": "S"} in table["AttributeDefinitions"]


# --- queues -----------------------------------------------------------------------------------
@pytest.mark.parametrize("queue_spec", spec.QUEUES, ids=lambda q: q.name)
def test_queue_matches_spec_with_redrive(synth, queue_spec):
    queues = _by_prop(synth, "AWS::SQS::Queue", "QueueName")
    queue = queues[queue_spec.name]["Properties"]
    assert queue["VisibilityTimeout"] == queue_spec.visibility_timeout
    assert queue["MessageRetentionPeriod"] == queue_spec.retention_seconds
    assert queue["MaximumMessageSize"] == queue_spec.max_message_bytes == 1024 * 1024
    assert queue["SqsManagedSseEnabled"] is True
    if queue_spec.dlq:
        dlq_id = next(k for k, v in synth.of_type("AWS::SQS::Queue").items()
                      if v["Properties"]["QueueName"] == queue_spec.dlq)
        assert queue["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
            "maxReceiveCount": queue_spec.max_receive_count,
        }
    else:
        assert "RedrivePolicy" not in queue


def test_queues_enforce_tls(synth):
    for policy in synth.of_type("AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in statements)
    assert len(synth.of_type("AWS::SQS::QueuePolicy")) == len(spec.QUEUES)


# --- functions ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fn_spec", spec.FUNCTIONS, ids=lambda f: f.key)
def test_function_is_arm64_traced_with_powertools_env(synth, fn_spec):
    fn = _by_prop(synth, "AWS::Lambda::Function", "FunctionName")[fn_spec.name]["Properties"]
    assert fn["Architectures"] == ["arm64"]
    assert fn["Runtime"] == f"python{constants.PYTHON_VERSION}"
    assert fn["TracingConfig"] == {"Mode": "Active"}
    assert fn["Handler"] == fn_spec.handler
    assert fn["Timeout"] == fn_spec.timeout
    assert fn["MemorySize"] == fn_spec.memory
    env = fn["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "powerx-agent"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "PowerX/Agent"
    assert fn["Layers"] == [{"Ref": synth.logical_id(synth.stack.functions.layer)}]
    log_group = synth.resources[fn["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
    assert log_group["LogGroupName"] == f"/aws/lambda/{fn_spec.name}"
    assert log_group["RetentionInDays"] == 30


APPCONFIG = {"APPCONFIG_APPLICATION", "APPCONFIG_ENVIRONMENT", "APPCONFIG_PROFILE", "FLAGS_STORE"}
# what each function's code reads through powerx_agent.settings (docs/architecture.md: the table)
CALLBACK_URLS = {"CALLBACK_SECRET_ARN", "CALLBACKS_URL"}  # signs a callback URL per plugin call / work order
EXPECTED_ENV = {
    "ingest": {"EVENTS_TABLE", "TENANTS_TABLE", "AUDIT_TABLE", "MATCH_QUEUE_URL", "INGEST_DLQ_URL",
               "IDEMPOTENCY_EXPIRY_SECONDS", "EVENT_CONTRACTS_DIR", "METRICS_SINK", *APPCONFIG},
    "matcher": {"EVENTS_TABLE", "WORKFLOWS_TABLE", "STRATEGIES_TABLE", "AUDIT_TABLE",
                "WORKFLOW_ROLE_ARN", "STATE_MACHINE_PREFIX", "NODE_PLUGIN_ARN", "NODE_NOTIFY_ARN", "NODE_REVIEW_ARN",
                "WORKFLOW_FN_ARN", "NOTIFICATIONS_URL", "OPS_URL", "DOWNSTREAM_SECRET_ARN", "METRICS_SINK",
                "LIBRARY_SOURCE", "STRATEGIES_DIR", "SFN_LOG_GROUP_ARN", "SFN_LOG_LEVEL",
                "SFN_LOG_INCLUDE_EXECUTION_DATA", "SFN_TRACING", *APPCONFIG, *CALLBACK_URLS},
    "node_plugin": {"WORKFLOWS_TABLE", "TENANTS_TABLE", "AUDIT_TABLE", "PLUGIN_RUNTIME_URL", "DOWNSTREAM_SECRET_ARN",
                    "METRICS_SINK", *CALLBACK_URLS},
    "node_notify": {"WORKFLOWS_TABLE", "AUDIT_TABLE", "NOTIFICATIONS_URL", "DOWNSTREAM_SECRET_ARN", "METRICS_SINK"},
    "node_review": {"WORKFLOWS_TABLE", "TENANTS_TABLE", "AUDIT_TABLE", "NOTIFICATIONS_URL", "OPS_URL",
                    "DOWNSTREAM_SECRET_ARN", "METRICS_SINK", *CALLBACK_URLS},
    "workflow": {"WORKFLOWS_TABLE", "TENANTS_TABLE", "AUDIT_TABLE", "NOTIFICATIONS_URL", "OPS_URL",
                 "DOWNSTREAM_SECRET_ARN", "METRICS_SINK", *CALLBACK_URLS},
    "audit_stream": {"AUDIT_LOG_GROUP", "METRICS_SINK", "STRATEGIES_TABLE", "AUDIT_TABLE", "NOTIFICATIONS_URL",
                     "DOWNSTREAM_SECRET_ARN", *APPCONFIG},
    "callbacks_api": {"WORKFLOWS_TABLE", "AUDIT_TABLE", "CALLBACK_SECRET_ARN", "METRICS_SINK"},
    "replay_api": {"EVENTS_TABLE", "TENANTS_TABLE", "AUDIT_TABLE", "REPLAY_SECRET_ARN", "EVENT_BUS_NAME",
                   "METRICS_SINK", *APPCONFIG},
}
COMMON_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL", "AGENT_FUNCTION",
              "POWERX_RELEASE"}


@pytest.mark.parametrize("key", sorted(EXPECTED_ENV))
def test_function_gets_only_the_environment_it_needs(synth, key):
    name = spec.FUNCTIONS_BY_KEY[key].name
    env = _by_prop(synth, "AWS::Lambda::Function", "FunctionName")[name]["Properties"]["Environment"]["Variables"]
    assert set(env) - COMMON_ENV == EXPECTED_ENV[key]
    if "FLAGS_STORE" in env:
        assert env["FLAGS_STORE"] == "appconfig"
    if "METRICS_SINK" in env:
        assert env["METRICS_SINK"] == "stdout"
    if key == "matcher":
        assert (env["LIBRARY_SOURCE"], env["STRATEGIES_DIR"]) == ("table", "/var/task/strategies")


def test_matcher_node_arns_point_at_the_live_alias_of_the_node_functions(synth):
    functions = synth.stack.functions.by_key
    env = synth.resources[synth.logical_id(functions["matcher"])]["Properties"]["Environment"]["Variables"]
    for key, var in constants.NODE_ARN_ENV.items():
        assert env[var] == {"Fn::Join": ["", [{"Fn::GetAtt": [synth.logical_id(functions[key]), "Arn"]}, ":live"]]}
    assert env["WORKFLOW_ROLE_ARN"] == {"Fn::GetAtt": [synth.logical_id(synth.stack.workflow.role), "Arn"]}


def test_code_asset_excludes_tests_and_caches():
    from infra.components.functions import CODE_EXCLUDE

    for pattern in ("tests", "**/__pycache__", "*.egg-info"):
        assert pattern in CODE_EXCLUDE


def test_event_source_mappings_report_batch_item_failures(synth):
    mappings = synth.of_type("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == len(spec.EVENT_SOURCES_MAPPINGS)
    for mapping in mappings.values():
        props = mapping["Properties"]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    by_fn = {synth.function_name_of(m["Properties"]["FunctionName"]): m["Properties"] for m in mappings.values()}
    for source in spec.EVENT_SOURCES_MAPPINGS:
        props = by_fn[spec.FUNCTIONS_BY_KEY[source.function].name]
        assert props["BatchSize"] == source.batch_size
        if source.kind == "dynamodb":
            assert props["EventSourceArn"]["Fn::GetAtt"][1] == "StreamArn"
            assert props["BisectBatchOnFunctionError"] is True
        else:
            assert props["EventSourceArn"]["Fn::GetAtt"][1] == "Arn"


# --- events -------------------------------------------------------------------------------------
def test_bus_archive_and_ingest_rule_with_retry_policy_and_dlq(synth):
    bus_id = synth.logical_id(synth.stack.events.bus)
    synth.template.has_resource_properties("AWS::Events::EventBus", {"Name": spec.BUS_NAME})
    synth.template.has_resource_properties(
        "AWS::Events::Archive",
        {"ArchiveName": spec.ARCHIVE_NAME, "SourceArn": {"Fn::GetAtt": [bus_id, "Arn"]}, "RetentionDays": 30},
    )
    props = _by_prop(synth, "AWS::Events::Rule", "Name")[spec.INGEST_RULE.name]["Properties"]
    assert props["EventBusName"] == {"Ref": bus_id}
    assert props["EventPattern"] == spec.INGEST_RULE.pattern
    (target,) = props["Targets"]
    assert target["Arn"] == {"Ref": synth.logical_id(synth.stack.functions.aliases["ingest"])}
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": spec.INGEST_RULE.max_retry_attempts,
        "MaximumEventAgeInSeconds": spec.INGEST_RULE.max_event_age_seconds,
    }
    dlq_id = synth.logical_id(synth.stack.queues.ingest_dlq)
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}


def test_ingest_async_failures_go_to_the_ingest_dlq(synth):
    (config,) = [c for c in synth.of_type("AWS::Lambda::EventInvokeConfig").values()
                 if "DestinationConfig" in c["Properties"]]
    dlq_id = synth.logical_id(synth.stack.queues.ingest_dlq)
    assert config["Properties"]["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [dlq_id, "Arn"]}}}


# --- API ----------------------------------------------------------------------------------------
def test_api_routes_are_lambda_proxy_integrations(synth):
    resources = synth.of_type("AWS::ApiGateway::Resource")
    methods = synth.of_type("AWS::ApiGateway::Method")
    assert len(methods) == len(spec.API_ROUTES)

    def path_of(resource_ref: dict) -> str:
        if "Fn::GetAtt" in resource_ref:  # the root resource
            return ""
        resource = resources[resource_ref["Ref"]]["Properties"]
        return f"{path_of(resource['ParentId'])}/{resource['PathPart']}"

    routes = {}
    for method in methods.values():
        props = method["Properties"]
        integration = props["Integration"]
        assert integration["Type"] == "AWS_PROXY" and integration["IntegrationHttpMethod"] == "POST"
        uri_parts = integration["Uri"]["Fn::Join"][1]
        alias = next(p for p in uri_parts if isinstance(p, dict) and "Ref" in p and "AWS::" not in p["Ref"])
        assert synth.invokes_alias(alias, "live")
        fn_name = synth.function_name_of(alias)
        routes[fn_name] = (props["HttpMethod"], path_of(props["ResourceId"]))
    assert routes == {spec.FUNCTIONS_BY_KEY[k].name: route for k, route in spec.API_ROUTES.items()}


def test_api_stage_has_access_logs_throttling_and_tracing(synth):
    (stage,) = synth.of_type("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    assert props["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][1] == "Arn"
    assert json.loads(props["AccessLogSetting"]["Format"])["status"] == "$context.status"
    (settings,) = props["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == 50 and settings["ThrottlingBurstLimit"] == 100
    assert settings["LoggingLevel"] == "INFO" and settings["DataTraceEnabled"] is False


# --- alarms and dashboard -----------------------------------------------------------------------
def _alarm(synth, suffix: str) -> dict:
    alarms = _by_prop(synth, "AWS::CloudWatch::Alarm", "AlarmName")
    return alarms[f"powerx-agent-{suffix}"]["Properties"]


def _metric_stats(alarm: dict) -> dict[str, dict]:
    return {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}


def _expression(alarm: dict) -> str:
    return next(m["Expression"] for m in alarm["Metrics"] if "Expression" in m)


def _topic_id(synth) -> str:
    return synth.logical_id(synth.stack.observability.topic)


def test_strategy_miss_rate_alarm_uses_metric_math_over_15_minutes(synth):
    alarm = _alarm(synth, "strategy-miss-rate")
    assert _expression(alarm) == "100 * (1 - hit)"
    stat = _metric_stats(alarm)["hit"]
    assert stat["Metric"]["MetricName"] == spec.METRICS["hit_rate"]
    assert stat["Metric"]["Namespace"] == spec.NAMESPACE
    assert stat["Stat"] == "Average" and stat["Period"] == 900
    assert alarm["Threshold"] == 20 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["AlarmActions"] == [{"Ref": _topic_id(synth)}]


def test_automated_success_alarm_is_per_workflow_below_95(synth):
    alarm = _alarm(synth, "automated-success-rate")
    assert _expression(alarm) == "100 * automated / finished"
    stats = _metric_stats(alarm)
    assert stats["automated"]["Metric"]["MetricName"] == spec.METRICS["workflow_automated"]
    assert stats["finished"]["Metric"]["MetricName"] == spec.METRICS["workflow_finished"]
    assert {s["Stat"] for s in stats.values()} == {"Sum"} and {s["Period"] for s in stats.values()} == {900}
    assert alarm["Threshold"] == 95 and alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": _topic_id(synth)}]


def test_manual_intervention_alarm_is_escalations_over_decisions_at_10_percent(synth):
    alarm = _alarm(synth, "manual-intervention-rate")
    assert _expression(alarm) == "100 * escalations / decisions"
    stats = _metric_stats(alarm)
    assert (stats["escalations"]["Metric"]["MetricName"], stats["escalations"]["Stat"]) == (
        spec.METRICS["escalations"], "Sum")
    # every decision emits one hit-rate value (1 or 0): their count is the number of decisions
    assert (stats["decisions"]["Metric"]["MetricName"], stats["decisions"]["Stat"]) == (
        spec.METRICS["hit_rate"], "SampleCount")
    assert alarm["Threshold"] == 10 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_generation_latency_alarm_is_the_p95_of_raw_values_above_10_s(synth):
    alarm = _alarm(synth, "generation-latency-p95")
    assert alarm["MetricName"] == spec.METRICS["latency"]
    assert alarm["ExtendedStatistic"] == "p95" and "Statistic" not in alarm
    assert alarm["Threshold"] == 10_000 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["EvaluateLowSampleCountPercentile"] == "evaluate"


def test_library_errors_alarm_on_the_metric_the_matcher_emits(synth):
    alarm = _alarm(synth, "strategy-library-errors")
    assert (alarm["MetricName"], alarm["Statistic"]) == (spec.METRICS["library_errors"], "Sum")
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_manual_backlog_alarm_on_the_gauge_keeps_its_state_when_the_gauge_is_missing(synth):
    alarm = _alarm(synth, "manual-review-backlog")
    assert alarm["MetricName"] == spec.METRICS["review_backlog"]
    assert alarm["Namespace"] == spec.NAMESPACE
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Threshold"] == 20 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "ignore"  # a gap never resolves the page (docs/operations.md)
    assert alarm["AlarmActions"] == [{"Ref": _topic_id(synth)}]
    gauge = _alarm(synth, "review-backlog-gauge-missing")
    assert (gauge["MetricName"], gauge["Statistic"], gauge["TreatMissingData"]) == (
        spec.METRICS["review_backlog"], "SampleCount", "breaching")
    assert gauge["Threshold"] == 1 and gauge["ComparisonOperator"] == "LessThanThreshold"


def test_every_alarm_states_its_missing_data_treatment(synth):
    alarms = _by_prop(synth, "AWS::CloudWatch::Alarm", "AlarmName")
    assert all("TreatMissingData" in a["Properties"] for a in alarms.values())


def test_every_dlq_has_a_depth_alarm_to_the_topic(synth):
    alarms = _by_prop(synth, "AWS::CloudWatch::Alarm", "AlarmName")
    dlqs = [q for q in spec.QUEUES if q.max_receive_count is None]
    for queue_spec in dlqs:
        alarm = alarms[f"{queue_spec.name}-depth"]["Properties"]
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["AlarmActions"] == [{"Ref": _topic_id(synth)}]
    assert len(alarms) == len(monitoring.ALARMS) + len(dlqs) + 1  # + unrouted events


def test_flag_store_errors_alarm_on_any_unreadable_flag_read(synth):
    alarm = _alarm(synth, "flag-store-errors")
    assert alarm["MetricName"] == spec.METRICS["flag_store_errors"]
    assert alarm["Namespace"] == spec.NAMESPACE and alarm["Statistic"] == "Sum" and alarm["Period"] == 300
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["AlarmActions"] == [{"Ref": _topic_id(synth)}]


def test_canary_aborted_alarm_on_any_aborted_canary(synth):
    alarm = _alarm(synth, "canary-aborted")
    assert alarm["MetricName"] == spec.METRICS["canary_aborted"]
    assert alarm["Namespace"] == spec.NAMESPACE and alarm["Statistic"] == "Sum" and alarm["Period"] == 300
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["AlarmActions"] == [{"Ref": _topic_id(synth)}]


def test_unrouted_events_are_kept_in_their_queue_counted_and_alarmed(synth):
    rule = _by_prop(synth, "AWS::Events::Rule", "Name")[spec.UNROUTED_RULE.name]["Properties"]
    assert rule["EventPattern"] == {"source": [{"anything-but": list(spec.EVENT_SOURCES)}]}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [synth.logical_id(synth.stack.queues.by_name[spec.UNROUTED_QUEUE.name]),
                                            "Arn"]}
    # EventBridge may send to the queue: a queue policy for events.amazonaws.com, scoped to this rule
    rule_id = synth.logical_id(synth.stack.events.rules[spec.UNROUTED_RULE.name])
    synth.template.has_resource_properties("AWS::SQS::QueuePolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                           "Action": "sqs:SendMessage",
                           "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}})])}})
    alarm = _by_prop(synth, "AWS::CloudWatch::Alarm", "AlarmName")["powerx-agent-unrouted-events"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Events", "MatchedEvents", "Sum")
    dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    # the rule's plain name: Ref of a rule on a custom bus is "<bus>|<rule>", which EventBridge never publishes
    assert dims == {"EventBusName": {"Ref": synth.logical_id(synth.stack.events.bus)},
                    "RuleName": spec.UNROUTED_RULE.name}
    assert rule_id in synth.resources
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["AlarmActions"] == [{"Ref": _topic_id(synth)}]


def test_alarm_topic_is_kms_encrypted_and_tls_only(synth):
    topic = synth.resources[_topic_id(synth)]["Properties"]
    assert topic["KmsMasterKeyId"]["Fn::GetAtt"][0] == synth.logical_id(synth.stack.observability.key)
    synth.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {"PolicyDocument": {"Statement": Match.array_with([Match.object_like(
            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}},
    )


def _dashboard_body(synth) -> str:
    (board,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    assert board["Properties"]["DashboardName"] == "Agent-Automation"
    body = board["Properties"]["DashboardBody"]
    return body if isinstance(body, str) else "".join(p if isinstance(p, str) else json.dumps(p)
                                                       for p in body["Fn::Join"][1])


def test_dashboard_shows_the_five_metrics_alarms_dlqs_and_top_failing_strategies(synth):
    body = _dashboard_body(synth)
    assert "# Agent Automation" in body
    for key in ("hit_rate", "generated", "node_success", "escalations", "latency"):
        assert f'"{spec.METRICS[key]}"' in body, key
    assert '"type":"alarm"' in body
    assert "ApproximateNumberOfMessagesVisible" in body
    assert f"SOURCE '{spec.AUDIT_LOG_GROUP}'" in body
    assert "stats count(*) as failures by strategy_id" in body


# --- secrets, flags, audit ----------------------------------------------------------------------
def test_replay_and_callback_key_sets_are_separate_each_with_two_generated_keys(synth):
    secrets = _by_prop(synth, "AWS::SecretsManager::Secret", "Name")
    for name in (spec.REPLAY_SECRET_NAME, spec.CALLBACK_SECRET_NAME):
        parts = secrets[name]["Properties"]["SecretString"]["Fn::Join"][1]
        text = "".join(p if isinstance(p, str) else "<ref>" for p in parts)
        assert '"active":"k1"' in text and '"k1":"{{resolve:secretsmanager:<ref>' in text, name
        assert '"k2":"{{resolve:secretsmanager:<ref>' in text, name
        seeds = [secrets[f"{name}/seed-{k}"]["Properties"] for k in ("k1", "k2")]
        assert all(s["GenerateSecretString"]["PasswordLength"] == 64 for s in seeds)
    replay = "".join(p if isinstance(p, str) else "<ref>"
                     for p in secrets[spec.REPLAY_SECRET_NAME]["Properties"]["SecretString"]["Fn::Join"][1])
    assert replay.startswith('{"callers":{"operator":{"tenants":["*"],')
    downstream = secrets[spec.DOWNSTREAM_SECRET_NAME]["Properties"]
    assert downstream["GenerateSecretString"]["GenerateStringKey"] == "token"


def test_appconfig_feature_flags_all_on_and_deployed(synth):
    synth.template.has_resource_properties("AWS::AppConfig::Application", {"Name": constants.APPCONFIG_APPLICATION})
    synth.template.has_resource_properties("AWS::AppConfig::Environment", {"Name": "prod"})
    synth.template.has_resource_properties(
        "AWS::AppConfig::ConfigurationProfile",
        {"Name": constants.APPCONFIG_PROFILE, "Type": "AWS.Freeform", "LocationUri": "hosted"},
    )
    (version,) = synth.of_type("AWS::AppConfig::HostedConfigurationVersion").values()
    document = json.loads(version["Properties"]["Content"])
    assert document == {name: {"default": True} for name in spec.FEATURE_FLAGS}
    assert len(synth.of_type("AWS::AppConfig::DeploymentStrategy")) == 1
    assert len(synth.of_type("AWS::AppConfig::Deployment")) == 1
    outputs = synth.json["Outputs"]
    assert outputs["AppConfigDeploymentStrategy"]["Value"] == {
        "Ref": synth.logical_id(synth.stack.flags.strategy)}


def test_audit_log_group_has_retention_and_kms(synth):
    groups = _by_prop(synth, "AWS::Logs::LogGroup", "LogGroupName")
    audit = groups[spec.AUDIT_LOG_GROUP]["Properties"]
    assert audit["RetentionInDays"] == 365
    assert audit["KmsKeyId"]["Fn::GetAtt"][0] == synth.logical_id(synth.stack.audit.key)


def test_outputs_for_the_cli(synth):
    outputs = synth.json["Outputs"]
    for name in ("EventBusName", "ApiUrl", "MatchQueueUrl", "WorkflowRoleArn", "AlarmTopicArn", "StrategiesTable",
                 "EventsTable", "WorkflowsTable", "TenantsTable", "AuditTable", "ArchiveName", "AuditLogGroup",
                 "ReplaySecretArn", "CallbackSecretArn", "CallbacksUrl", "StateMachinePrefix",
                 "DashboardName"):
        assert name in outputs, name


def test_every_function_variable_is_named_by_the_settings_schema(synth):
    """Names come from powerx_agent.settings.Env (or are Powertools' own): a variable infra sets that
    nothing reads, or reads under another spelling, cannot be deployed."""
    from powerx_agent.settings import Env

    names = {member.value for member in Env}
    for fn in _by_prop(synth, "AWS::Lambda::Function", "FunctionName").values():
        for var in fn["Properties"]["Environment"]["Variables"]:
            assert var in names or var.startswith("POWERTOOLS_"), var
