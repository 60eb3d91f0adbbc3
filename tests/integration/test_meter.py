"""The meter counts what AWS would bill, on the embedded runtime: requests by operation, write units
with failed conditions included, index writes (two when an update moves the index key, none when
nothing projected changed), the harness's own requests left out; and the cost command prices a profile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from powerx_agent.cli.main import app
from powerx_agent.local.meter import Meter, forget_schemas

TABLE = "meter-probe"


@pytest.fixture(scope="module")
def probe(runtime: Any) -> Any:
    ddb = runtime.client("dynamodb")
    ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "g", "AttributeType": "S"}],
                     GlobalSecondaryIndexes=[{"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                              "Projection": {"ProjectionType": "KEYS_ONLY"}}])
    forget_schemas()
    yield ddb
    ddb.delete_table(TableName=TABLE)
    forget_schemas()


def test_given_writes_to_an_indexed_table_when_metered_then_units_and_index_writes_follow_dynamodb_rules(
        runtime: Any, probe: Any, uid: str) -> None:
    big = "x" * 1500
    with Meter() as meter:
        probe.put_item(TableName=TABLE, Item={"pk": {"S": uid}, "g": {"S": "a"}, "body": {"S": big}})
        with pytest.raises(probe.exceptions.ConditionalCheckFailedException):
            probe.put_item(TableName=TABLE, Item={"pk": {"S": uid}, "g": {"S": "a"}},
                           ConditionExpression="attribute_not_exists(pk)")
        probe.update_item(TableName=TABLE, Key={"pk": {"S": uid}}, UpdateExpression="SET body = :b",
                          ExpressionAttributeValues={":b": {"S": "y"}})  # nothing the index holds changed
        probe.update_item(TableName=TABLE, Key={"pk": {"S": uid}}, UpdateExpression="SET g = :g",
                          ExpressionAttributeValues={":g": {"S": "b"}})  # the index key moves
        probe.get_item(TableName=TABLE, Key={"pk": {"S": uid}}, ConsistentRead=True)
        runtime.harness("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": uid}})  # not the product's
    use = meter.tables[TABLE]
    # this table's requests only: the shared runtime may still be finishing an earlier test's workflow
    assert use.write_requests == 2 + 2
    assert use.read_requests == 1  # the harness's read is left out
    assert use.failed_conditions == 1
    # 1.5 KB put = 2 units; the failed put is sized by the stored item = 2; 2 + 1 for the updates
    assert use.wru == 2 + 2 + 2 + 1
    assert use.index_writes["by_g"] == 1 + 2
    assert use.strongly_consistent["GetItem"] == 1
    keys = {(h.index, h.key) for h in meter.heat.values()}
    assert ("by_g", "a") in keys and ("by_g", "b") in keys and ("", uid) in keys



def _echo(event: Any, context: Any) -> dict[str, Any]:
    return {"echo": event}


def test_given_a_function_run_in_process_when_invoked_directly_and_by_its_stream_then_the_meter_times_both(
        runtime: Any, uid: str) -> None:
    from types import SimpleNamespace

    from powerx_agent.local import motopatch

    name = f"meter-probe-fn-{uid}"
    motopatch.register_handler(name, f"{__name__}._echo")
    lam = runtime.client("lambda")
    arn = lam.create_function(FunctionName=name, Runtime="python3.11", Role=runtime.deployment.lambda_role_arn,
                              Handler="x.handler", Code={"ZipFile": _zip()})["FunctionArn"]
    esm = SimpleNamespace(batch_size=10, max_retry_attempts=0, bisect_on_error=False, event_source_arn="stream",
                          destination_config=None)
    original = motopatch.lambdas.invoke_in_process
    try:
        with Meter() as meter:
            answer = lam.invoke(FunctionName=name, Payload=b'{"a": 1}')
            motopatch.streams._streams._deliver(arn, esm, [{"eventID": "1"}])
    finally:
        lam.delete_function(FunctionName=name)
    assert json.loads(answer["Payload"].read()) == {"echo": {"a": 1}}
    assert len(meter.lambdas[name]) == 2  # the Invoke and the stream batch both went through the dispatch
    assert motopatch.lambdas.invoke_in_process is original  # put back on exit


def _zip() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "test function\n")
    return buffer.getvalue()

def test_given_a_profile_when_costing_then_the_product_and_the_anchor_are_printed_per_service(tmp_path: Path) -> None:
    profile = {"requests": {"sqs:SendMessage": 1.0}, "requests_total": 20.0, "wru": 10.0, "index_wru": 3.0,
               "rru": 0.1, "lambda": {"powerx-agent-ingest": {"invocations": 1.0}}, "log_bytes": 1000.0,
               "sfn": {"express_executions": 1.0, "express_states": 6.0, "express_critical_nodes": 2.0,
                       "express_critical_actions": 1.0}, "run": {"events": 10}}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    result = CliRunner().invoke(app, ["cost", "--profile", str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["comparison"]["anchor"] > 0 and out["comparison"]["product"] > out["comparison"]["anchor"]
    assert {r["service"] for r in out["comparison"]["rows"]} >= {"DynamoDB", "Step Functions", "Lambda", "SQS"}


@pytest.mark.parametrize("args", [["cost", "--rate", "0"], ["cost", "--events", "0"],
                                  ["cost", "--profile", "/nonexistent/profile.json"],
                                  ["local", "load", "--heat", "--stack", "prod"]])
def test_given_bad_arguments_when_costing_or_measuring_then_a_usage_error(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
