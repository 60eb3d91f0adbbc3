"""The synthesized template and powerx_agent.spec (which the embedded runtime deploys) agree.

Names, keys, indexes, streams, TTL; queues and redrive; bus, archive and rule; functions and their
handlers; event source mappings; API routes. What the local runtime actually creates is compared
with the template in test_local_runtime_agreement.py; the code asset in test_code_asset.py.
"""

from __future__ import annotations

from conftest import ref_id as synth_ref
from powerx_agent import spec


def _props(synth, cfn_type: str, name_prop: str) -> dict[str, dict]:
    return {
        r["Properties"][name_prop]: r["Properties"]
        for r in synth.of_type(cfn_type).values()
        if isinstance(r["Properties"].get(name_prop), str)
    }


def test_same_table_names(synth):
    assert set(_props(synth, "AWS::DynamoDB::Table", "TableName")) == {t.name for t in spec.TABLES}


def test_tables_agree_on_keys_indexes_streams_and_ttl(synth):
    tables = _props(synth, "AWS::DynamoDB::Table", "TableName")
    for table_spec in spec.TABLES:
        props = tables[table_spec.name]
        schema = {k["KeyType"]: k["AttributeName"] for k in props["KeySchema"]}
        assert schema.get("HASH") == table_spec.partition_key
        assert schema.get("RANGE") == table_spec.sort_key
        assert {a["AttributeName"] for a in props["AttributeDefinitions"]} == set(table_spec.key_attributes)
        assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == {
            name: table_spec.attribute_type(name) for name in table_spec.key_attributes
        }
        indexes = {
            i["IndexName"]: ({k["KeyType"]: k["AttributeName"] for k in i["KeySchema"]},
                             i["Projection"]["ProjectionType"])
            for i in props.get("GlobalSecondaryIndexes", [])
        }
        assert indexes == {
            i.name: ({k: v for k, v in (("HASH", i.partition_key), ("RANGE", i.sort_key)) if v}, i.projection)
            for i in table_spec.indexes
        }
        assert props.get("StreamSpecification", {}).get("StreamViewType") == table_spec.stream
        assert props.get("TimeToLiveSpecification", {}).get("AttributeName") == table_spec.ttl_attribute


def test_queues_agree(synth):
    by_id = {k: r["Properties"] for k, r in synth.of_type("AWS::SQS::Queue").items()}
    names = {k: p["QueueName"] for k, p in by_id.items()}
    assert set(names.values()) == {q.name for q in spec.QUEUES}
    for logical, props in by_id.items():
        queue_spec = next(q for q in spec.QUEUES if q.name == names[logical])
        redrive = props.get("RedrivePolicy")
        if queue_spec.dlq is None:
            assert redrive is None
        else:
            assert names[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]] == queue_spec.dlq
            assert redrive["maxReceiveCount"] == queue_spec.max_receive_count


def test_bus_archive_rule_agree(synth):
    assert set(_props(synth, "AWS::Events::EventBus", "Name")) == {spec.BUS_NAME}
    assert set(_props(synth, "AWS::Events::Archive", "ArchiveName")) == {spec.ARCHIVE_NAME}
    rules = _props(synth, "AWS::Events::Rule", "Name")
    assert set(rules) == {r.name for r in spec.RULES} | {s.name for s in spec.SCHEDULES}
    for schedule in spec.SCHEDULES:
        rule = rules[schedule.name]
        assert rule["ScheduleExpression"] == schedule.expression and "EventBusName" not in rule  # default bus
        (target,) = rule["Targets"]
        assert synth.invokes_alias(target["Arn"], spec.LIVE_ALIAS)
        assert synth.function_name_of(target["Arn"]) == spec.FUNCTIONS_BY_KEY[schedule.target_function].name
    for rule_spec in spec.RULES:
        rule = rules[rule_spec.name]
        assert rule["EventPattern"] == rule_spec.pattern
        (target,) = rule["Targets"]
        target_props = synth.resources[synth_ref(target["Arn"])]["Properties"]
        if rule_spec.target_function:
            assert synth.function_name_of(target["Arn"]) == spec.FUNCTIONS_BY_KEY[rule_spec.target_function].name
        else:
            assert target_props["QueueName"] == rule_spec.target_queue
        dlq = synth.resources[target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]]["Properties"]["QueueName"]
        assert dlq == rule_spec.dlq


def test_functions_agree(synth):
    functions = _props(synth, "AWS::Lambda::Function", "FunctionName")
    assert set(functions) == {f.name for f in spec.FUNCTIONS}
    for fn_spec in spec.FUNCTIONS:
        props = functions[fn_spec.name]
        assert (props["Handler"], props["Timeout"], props["MemorySize"]) == (
            fn_spec.handler, fn_spec.timeout, fn_spec.memory,
        )


def test_event_source_mappings_agree(synth):
    names = {k: r["Properties"] for k, r in synth.resources.items()}
    actual = set()
    for mapping in synth.of_type("AWS::Lambda::EventSourceMapping").values():
        props = mapping["Properties"]
        fn = synth.function_name_of(props["FunctionName"])
        source_id, attribute = props["EventSourceArn"]["Fn::GetAtt"]
        source = names[source_id].get("QueueName") or names[source_id].get("TableName")
        kind = "dynamodb" if attribute == "StreamArn" else "sqs"
        actual.add((fn, source, kind, props["BatchSize"], props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]))
    expected = {
        (spec.FUNCTIONS_BY_KEY[m.function].name, m.source, m.kind, m.batch_size, m.report_batch_item_failures)
        for m in spec.EVENT_SOURCES_MAPPINGS
    }
    assert actual == expected


def test_workflow_role_and_state_machine_prefix_agree(synth):
    outputs = synth.json["Outputs"]
    assert outputs["StateMachinePrefix"]["Value"] == spec.STATE_MACHINE_PREFIX
    role = synth.resources[synth.logical_id(synth.stack.workflow.role)]["Properties"]
    assert role["RoleName"]["Fn::Join"][1][0] == f"{spec.WORKFLOW_ROLE_NAME}-"


def test_audit_log_group_and_secret_names_agree(synth):
    assert spec.AUDIT_LOG_GROUP in _props(synth, "AWS::Logs::LogGroup", "LogGroupName")
    secrets = _props(synth, "AWS::SecretsManager::Secret", "Name")
    assert {spec.REPLAY_SECRET_NAME, spec.CALLBACK_SECRET_NAME, spec.DOWNSTREAM_SECRET_NAME} <= set(secrets)
