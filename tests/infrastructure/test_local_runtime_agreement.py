"""One specification, no drift: what the embedded LOCAL RUNTIME creates == what the stack deploys.

Both sides are read back, not taken from the spec: the local side through the AWS APIs of the running
embedded runtime (session fixture ``runtime`` of tests/conftest.py: describe_table, time-to-live,
continuous backups, queue attributes, rules and targets, Lambda configuration, event source mappings,
API Gateway resources), the deployed side from the synthesized CloudFormation template.

Deliberate differences (asserted explicitly, documented in docs/architecture.md):
- queues: the local runtime uses a SHORTER visibility timeout and a LOWER maxReceiveCount
  (``LocalRuntime(visibility_timeout=3, max_receive_count=3)``) so redelivery and dead-lettering
  happen within a test's time; the stack uses the spec values (60 s / 5 receives).
- the SQS → matcher mapping exists locally but is disabled: the runtime's own poller
  (local/pollers.py) does Lambda's polling, because moto would invoke inside SendMessage and ignore
  partial batch responses.
- versions and aliases: moto serves them (publish, aliases, invoking an alias), but an event source
  mapping created on an alias ARN is stored on the version the alias pointed at then (AWS keeps the
  alias, so a mapping follows the alias when it moves), and an asynchronous invocation config put on
  the alias is stored on the function (moto ignores the qualifier). Both are asserted below as they are;
  on the embedded runtime every version runs the checkout's code in process anyway.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from powerx_agent import spec


# -- template side -------------------------------------------------------------------------------
def _name_of(synth: Any, logical_id: str) -> str:
    props = synth.resources[logical_id]["Properties"]
    for prop in ("TableName", "QueueName", "FunctionName", "Name", "LogGroupName"):
        if prop in props:
            return props[prop]
    raise AssertionError(f"{logical_id} has no name property")


def _template_tables(synth: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for props in (r["Properties"] for r in synth.of_type("AWS::DynamoDB::Table").values()):
        out[props["TableName"]] = {
            "keys": {k["KeyType"]: k["AttributeName"] for k in props["KeySchema"]},
            "types": {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]},
            "indexes": {
                i["IndexName"]: ({k["KeyType"]: k["AttributeName"] for k in i["KeySchema"]},
                                 i["Projection"]["ProjectionType"])
                for i in props.get("GlobalSecondaryIndexes", [])
            },
            "stream": props.get("StreamSpecification", {}).get("StreamViewType"),
            "ttl": (props.get("TimeToLiveSpecification") or {}).get("AttributeName"),
            "pitr": props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
            "billing": props["BillingMode"],
        }
    return out


def _template_queues(synth: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for props in (r["Properties"] for r in synth.of_type("AWS::SQS::Queue").values()):
        redrive = props.get("RedrivePolicy")
        out[props["QueueName"]] = {
            "visibility": props.get("VisibilityTimeout"),
            "retention": props.get("MessageRetentionPeriod"),
            "dlq": _name_of(synth, redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]) if redrive else None,
            "max_receive": redrive["maxReceiveCount"] if redrive else None,
        }
    return out


def _template_api_routes(synth: Any) -> dict[tuple[str, str], tuple[str, str]]:
    resources = synth.of_type("AWS::ApiGateway::Resource")

    def path(ref: Any) -> str:
        if "Fn::GetAtt" in ref:  # the root resource
            return ""
        props = resources[ref["Ref"]]["Properties"]
        return path(props["ParentId"]) + "/" + props["PathPart"]

    routes = {}
    for props in (r["Properties"] for r in synth.of_type("AWS::ApiGateway::Method").values()):
        if props["HttpMethod"] == "OPTIONS":
            continue
        parts = props["Integration"]["Uri"]["Fn::Join"][1]
        alias = next(p for p in parts if isinstance(p, dict) and "Ref" in p and "AWS::" not in p["Ref"])
        assert synth.invokes_alias(alias, spec.LIVE_ALIAS)
        routes[(props["HttpMethod"], path(props["ResourceId"]))] = (synth.function_name_of(alias),
                                                                   props["Integration"]["Type"])
    return routes


# -- local side ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local(runtime: Any) -> dict[str, Any]:
    """Everything the embedded runtime created, read back through the AWS APIs (once per module)."""
    ddb, sqs, events, lam, apigw = (runtime.client(s) for s in ("dynamodb", "sqs", "events", "lambda", "apigateway"))
    tables = {}
    for name in ddb.list_tables()["TableNames"]:
        described = ddb.describe_table(TableName=name)["Table"]
        ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        tables[name] = {
            "keys": {k["KeyType"]: k["AttributeName"] for k in described["KeySchema"]},
            "types": {a["AttributeName"]: a["AttributeType"] for a in described["AttributeDefinitions"]},
            "indexes": {
                i["IndexName"]: ({k["KeyType"]: k["AttributeName"] for k in i["KeySchema"]},
                                 i["Projection"]["ProjectionType"])
                for i in described.get("GlobalSecondaryIndexes", [])
            },
            "stream": (described.get("StreamSpecification") or {}).get("StreamViewType"),
            "ttl": ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") == "ENABLED" else None,
            "pitr": backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED",
            "billing": described["BillingModeSummary"]["BillingMode"],
        }
    arn_to_queue = {}
    queues = {}
    for url in sqs.list_queues()["QueueUrls"]:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        name = attributes["QueueArn"].rsplit(":", 1)[1]
        arn_to_queue[attributes["QueueArn"]] = name
        redrive = json.loads(attributes["RedrivePolicy"]) if "RedrivePolicy" in attributes else None
        queues[name] = {
            "visibility": int(attributes["VisibilityTimeout"]),
            "retention": int(attributes["MessageRetentionPeriod"]),
            "dlq_arn": redrive["deadLetterTargetArn"] if redrive else None,
            "max_receive": int(redrive["maxReceiveCount"]) if redrive else None,
        }
    for queue in queues.values():
        queue["dlq"] = arn_to_queue.get(queue.pop("dlq_arn")) if queue.get("dlq_arn") else None
    functions = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    fn_by_arn = {f["FunctionArn"]: name for name, f in functions.items()}
    aliases: dict[str, dict[str, Any]] = {}
    versions: dict[str, dict[str, str]] = {}
    for name in functions:
        for alias in lam.list_aliases(FunctionName=name)["Aliases"]:
            aliases.setdefault(name, {})[alias["Name"]] = alias
            fn_by_arn[alias["AliasArn"]] = name
        for version in lam.list_versions_by_function(FunctionName=name)["Versions"]:
            versions.setdefault(name, {})[version["Version"]] = version.get("Description", "")
            fn_by_arn[version["FunctionArn"]] = name
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    buses = [b["Name"] for b in events.list_event_buses()["EventBuses"] if b["Name"] != "default"]
    rules = {r["Name"]: r for r in events.list_rules(EventBusName=spec.BUS_NAME)["Rules"]
             if not r.get("ManagedBy")}  # the archive's own managed rule is EventBridge's, not ours
    targets = {name: events.list_targets_by_rule(Rule=name, EventBusName=spec.BUS_NAME)["Targets"] for name in rules}
    archives = events.list_archives()["Archives"]
    items = apigw.get_resources(restApiId=runtime.deployment.rest_api_id, embed=["methods"])["items"]
    routes = {}
    for item in items:
        for method, detail in (item.get("resourceMethods") or {}).items():
            integration = detail["methodIntegration"]
            fn_arn = integration["uri"].split("/functions/", 1)[1].removesuffix("/invocations")
            assert fn_arn.endswith(f":{spec.LIVE_ALIAS}"), fn_arn  # the integration invokes the alias
            routes[(method, item["path"])] = (fn_by_arn[fn_arn], integration["type"])
    async_config = lam.get_function_event_invoke_config(FunctionName=spec.FUNCTIONS_BY_KEY["ingest"].name,
                                                        Qualifier=spec.LIVE_ALIAS)
    return {"tables": tables, "queues": queues, "arn_to_queue": arn_to_queue, "functions": functions,
            "aliases": aliases, "versions": versions, "async_config": async_config,
            "fn_by_arn": fn_by_arn, "mappings": mappings, "buses": buses, "rules": rules, "targets": targets,
            "archives": archives, "routes": routes, "events": events}


# -- the comparisons -------------------------------------------------------------------------------
def test_given_both_runtimes_when_tables_are_described_then_keys_types_indexes_streams_ttl_agree(synth, local):
    template = _template_tables(synth)
    assert set(local["tables"]) == set(template) == {t.name for t in spec.TABLES}
    for name, deployed in template.items():
        assert local["tables"][name] == deployed, name


def test_given_the_audit_table_when_described_then_seq_is_a_number_key_on_both_sides(synth, local):
    # audit_store writes seq as an int: a string key in either runtime would reject every audit append
    assert _template_tables(synth)["agent_audit"]["types"]["seq"] == "N"
    assert local["tables"]["agent_audit"]["types"]["seq"] == "N"


def test_given_both_runtimes_when_queues_are_described_then_names_redrive_targets_and_retention_agree(
        synth, local):
    template = _template_queues(synth)
    assert set(local["queues"]) == set(template) == {q.name for q in spec.QUEUES}
    for name, deployed in template.items():
        mine = local["queues"][name]
        assert (mine["dlq"], mine["retention"]) == (deployed["dlq"], deployed["retention"]), name


def test_given_the_match_queue_when_compared_then_the_local_redrive_is_deliberately_faster_than_the_spec(
        synth, runtime, local):
    template = _template_queues(synth)
    for queue in spec.QUEUES:
        deployed, mine = template[queue.name], local["queues"][queue.name]
        # the stack deploys exactly the spec
        assert deployed["visibility"] == queue.visibility_timeout
        assert deployed["max_receive"] == queue.max_receive_count if queue.dlq else deployed["max_receive"] is None
        # the embedded runtime: the configured test values, never slower than the spec
        assert mine["visibility"] == runtime.visibility_timeout <= queue.visibility_timeout
        if queue.dlq:
            assert mine["max_receive"] == runtime.max_receive_count <= queue.max_receive_count
        else:
            assert mine["max_receive"] is None


def test_given_both_runtimes_when_the_bus_is_described_then_bus_archive_rule_and_target_agree(synth, local):
    assert local["buses"] == [synth.resources[k]["Properties"]["Name"]
                              for k in synth.of_type("AWS::Events::EventBus")] == [spec.BUS_NAME]
    (archive,) = local["archives"]
    (deployed_archive,) = (r["Properties"] for r in synth.of_type("AWS::Events::Archive").values())
    assert archive["ArchiveName"] == deployed_archive["ArchiveName"] == spec.ARCHIVE_NAME
    assert archive["EventSourceArn"].endswith(f":event-bus/{spec.BUS_NAME}")
    assert archive["RetentionDays"] == deployed_archive["RetentionDays"]
    deployed_rules = {r["Properties"]["Name"]: r["Properties"] for r in synth.of_type("AWS::Events::Rule").values()
                      if "EventBusName" in r["Properties"]}
    assert set(local["rules"]) == set(deployed_rules) == {r.name for r in spec.RULES}
    for name, deployed_rule in deployed_rules.items():
        assert json.loads(local["rules"][name]["EventPattern"]) == deployed_rule["EventPattern"]
        (target,) = local["targets"][name]
        (deployed_target,) = deployed_rule["Targets"]
        rule_spec = next(r for r in spec.RULES if r.name == name)
        if rule_spec.target_function:  # both invoke the live alias
            assert target["Arn"].endswith(f":{spec.LIVE_ALIAS}")
            assert synth.invokes_alias(deployed_target["Arn"], spec.LIVE_ALIAS)
            assert local["fn_by_arn"][target["Arn"]] == synth.function_name_of(deployed_target["Arn"]), name
        else:
            assert local["arn_to_queue"][target["Arn"]] == _name_of(synth, deployed_target["Arn"]["Fn::GetAtt"][0])
        assert target["RetryPolicy"] == deployed_target["RetryPolicy"]
        assert local["arn_to_queue"][target["DeadLetterConfig"]["Arn"]] == _name_of(
            synth, deployed_target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])


def test_given_both_runtimes_when_schedules_are_described_then_expression_and_target_agree(synth, local):
    events = local["events"]
    mine = {r["Name"]: r for r in events.list_rules()["Rules"] if r.get("ScheduleExpression")}
    deployed = {r["Properties"]["Name"]: r["Properties"] for r in synth.of_type("AWS::Events::Rule").values()
                if "ScheduleExpression" in r["Properties"]}
    assert set(mine) == set(deployed) == {s.name for s in spec.SCHEDULES}
    for name, props in deployed.items():
        assert mine[name]["ScheduleExpression"] == props["ScheduleExpression"]
        (target,) = events.list_targets_by_rule(Rule=name)["Targets"]
        (deployed_target,) = props["Targets"]
        assert target["Arn"].endswith(f":{spec.LIVE_ALIAS}") and synth.invokes_alias(deployed_target["Arn"],
                                                                                     spec.LIVE_ALIAS)
        assert local["fn_by_arn"][target["Arn"]] == synth.function_name_of(deployed_target["Arn"])
        assert target["RetryPolicy"] == deployed_target["RetryPolicy"]


def test_given_both_runtimes_when_functions_are_described_then_names_handlers_limits_and_arch_agree(synth, local):
    deployed = {r["Properties"]["FunctionName"]: r["Properties"] for r in synth.of_type("AWS::Lambda::Function").values()}
    assert set(local["functions"]) == set(deployed) == {f.name for f in spec.FUNCTIONS}
    for name, props in deployed.items():
        mine = local["functions"][name]
        assert (mine["Handler"], mine["Timeout"], mine["MemorySize"], mine["Architectures"], mine["Runtime"]) == (
            props["Handler"], props["Timeout"], props["MemorySize"], props["Architectures"], props["Runtime"]), name


def test_given_both_runtimes_when_event_source_mappings_are_listed_then_they_agree(synth, local):
    def source_name(arn: str) -> str:
        return arn.split(":table/", 1)[1].split("/", 1)[0] if ":table/" in arn else local["arn_to_queue"][arn]

    mine = {
        (local["fn_by_arn"][m["FunctionArn"]], source_name(m["EventSourceArn"]), m["BatchSize"],
         m.get("StartingPosition")): m for m in local["mappings"]
    }
    deployed = set()
    for props in (r["Properties"] for r in synth.of_type("AWS::Lambda::EventSourceMapping").values()):
        assert synth.invokes_alias(props["FunctionName"], spec.LIVE_ALIAS)  # AWS: the mapping invokes the alias
        source = props["EventSourceArn"]["Fn::GetAtt"][0]
        deployed.add((synth.function_name_of(props["FunctionName"]), _name_of(synth, source), props["BatchSize"],
                      props.get("StartingPosition")))
    assert set(mine) == deployed
    for (fn, _source, _batch, _start), mapping in mine.items():
        # deliberate: the local SQS mapping is disabled, the runtime's poller does Lambda's polling
        expected_state = "Disabled" if fn == spec.FUNCTIONS_BY_KEY["matcher"].name else "Enabled"
        assert mapping["State"] == expected_state
        # moto: created on the alias ARN, stored on the version the alias pointed at (see the module docstring)
        live = local["aliases"][fn][spec.LIVE_ALIAS]
        assert mapping["FunctionArn"] == f"{local['functions'][fn]['FunctionArn']}:{live['FunctionVersion']}"


def test_given_both_runtimes_when_functions_are_listed_then_each_is_invoked_through_a_live_alias_on_a_release(
        synth, local):
    deployed_aliases = {synth.function_name_of(a["Properties"]["FunctionName"]): a["Properties"]
                        for a in synth.of_type("AWS::Lambda::Alias").values()}
    assert set(deployed_aliases) == set(local["aliases"]) == {f.name for f in spec.FUNCTIONS}
    for name, props in deployed_aliases.items():
        assert props["Name"] == spec.LIVE_ALIAS
        version = synth.resources[props["FunctionVersion"]["Fn::GetAtt"][0]]["Properties"]
        assert spec.release_of(version["Description"]) is not None
        live = local["aliases"][name][spec.LIVE_ALIAS]
        assert spec.release_of(local["versions"][name][live["FunctionVersion"]]) is not None


def test_given_both_runtimes_when_async_configs_are_read_then_ingest_retries_twice_into_the_ingest_dlq(
        synth, local):
    (config,) = (c["Properties"] for c in synth.of_type("AWS::Lambda::EventInvokeConfig").values()
                 if "DestinationConfig" in c["Properties"])  # the schedule's config has none (test_aws_guidance)
    assert config["Qualifier"] == spec.LIVE_ALIAS
    assert local["async_config"]["MaximumRetryAttempts"] == config["MaximumRetryAttempts"] == 2
    destination = local["async_config"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert local["arn_to_queue"][destination] == _name_of(
        synth, config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0])
    # moto: the config put on the alias is stored on the function (see the module docstring)
    assert not local["async_config"]["FunctionArn"].endswith(f":{spec.LIVE_ALIAS}")


def test_given_both_runtimes_when_api_resources_are_listed_then_routes_agree(synth, local):
    expected = {(method, path): (spec.FUNCTIONS_BY_KEY[key].name, "AWS_PROXY")
                for key, (method, path) in spec.API_ROUTES.items()}
    assert local["routes"] == _template_api_routes(synth) == expected


def test_given_both_runtimes_when_the_matcher_environment_is_read_then_machines_log_to_the_same_group(
        synth, local, runtime):
    matcher = spec.FUNCTIONS_BY_KEY["matcher"].name
    mine = local["functions"][matcher]["Environment"]["Variables"]
    (deployed,) = [r["Properties"] for r in synth.of_type("AWS::Lambda::Function").values()
                   if r["Properties"]["FunctionName"] == matcher]
    group_id = deployed["Environment"]["Variables"]["SFN_LOG_GROUP_ARN"]["Fn::GetAtt"][0]
    assert _name_of(synth, group_id) == spec.STATE_MACHINE_LOG_GROUP
    assert mine["SFN_LOG_GROUP_ARN"].endswith(f":log-group:{spec.STATE_MACHINE_LOG_GROUP}:*")
    groups = runtime.client("logs").describe_log_groups(logGroupNamePrefix=spec.STATE_MACHINE_LOG_GROUP)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [spec.STATE_MACHINE_LOG_GROUP]
