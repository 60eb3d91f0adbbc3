"""The embedded runtime's DynamoDB patches (local/motopatch/: streams 6, dynamodb 7 and 11): stream records reach their
function in ordered batches off the write path, and a table query reads only its partition while
answering exactly as a full-table query would (order, limit, pagination, both directions), a
conditional write is atomic, and a read sees a whole update or none of it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from powerx_agent.adapters.dynamo import all_items, values
from powerx_agent.audit.records import AuditEntry
from powerx_agent.deps import get_deps
from powerx_agent.local import motopatch


def _forwarded(chain: str) -> list[dict[str, Any]]:
    logs = get_deps().client("logs")
    lines = [json.loads(e["message"])
             for page in logs.get_paginator("filter_log_events").paginate(
                 logGroupName=get_deps().settings.audit_log_group, filterPattern=f'"{chain}"')
             for e in page.get("events", [])]
    return [line for line in lines if line.get("chain") == chain]


def test_given_30_audit_writes_when_streamed_then_forwarded_in_order_in_fewer_invocations_than_records(rt, uid):
    chain = f"TEST#stream-{uid}"
    before = motopatch.stream_stats()
    for i in range(30):
        get_deps().audit.append(AuditEntry("flag.changed", chain, tenant_id="acme", data={"i": i}))
    assert rt.wait_idle(30)
    after = motopatch.stream_stats()
    forwarded = _forwarded(chain)
    assert sorted(line["seq"] for line in forwarded) == list(range(1, 31))  # every record, once
    assert [line["data"]["i"] for line in sorted(forwarded, key=lambda x: x["seq"])] == list(range(30))
    assert after["records"] - before["records"] >= 30
    assert after["invocations"] - before["invocations"] < 30  # batched, not one invocation per write
    assert after["dropped"] == before["dropped"]
    assert motopatch.stream_pending() == 0


def _page_all(ddb: Any, chain: str, forward: bool, limit: int) -> list[int]:
    out = list(all_items(ddb, "query", TableName=get_deps().settings.audit_table, Limit=limit,
                         KeyConditionExpression="pk = :pk", ExpressionAttributeValues=values(pk=chain),
                         ScanIndexForward=forward, ConsistentRead=True))
    return [int(i["seq"]) for i in out]


def test_given_many_partitions_when_one_is_queried_then_exact_items_in_order_with_pagination(rt, uid):
    ddb = get_deps().ddb
    chains = [f"TEST#part-{uid}-{n}" for n in range(3)]
    for n, chain in enumerate(chains):
        for _ in range(7 + n * 4):
            get_deps().audit.append(AuditEntry("flag.changed", chain, tenant_id="acme"))
    assert rt.wait_idle(30)
    for n, chain in enumerate(chains):
        count = 7 + n * 4
        assert _page_all(ddb, chain, True, 3) == list(range(1, count + 1))
        assert _page_all(ddb, chain, False, 4) == list(range(count, 0, -1))
        tail = ddb.query(TableName=get_deps().settings.audit_table, KeyConditionExpression="pk = :pk",
                         ExpressionAttributeValues=values(pk=chain), ScanIndexForward=False, Limit=1)
        assert [int(i["seq"]["N"]) for i in tail["Items"]] == [count] and "LastEvaluatedKey" in tail
        ranged = ddb.query(TableName=get_deps().settings.audit_table,
                           KeyConditionExpression="pk = :pk AND seq BETWEEN :a AND :b",
                           ExpressionAttributeValues=values(pk=chain, a=2, b=5))
        assert [int(i["seq"]["N"]) for i in ranged["Items"]] == [2, 3, 4, 5]
    missing = ddb.query(TableName=get_deps().settings.audit_table, KeyConditionExpression="pk = :pk",
                        ExpressionAttributeValues=values(pk=f"TEST#none-{uid}"))
    assert missing["Items"] == [] and missing["Count"] == 0


def _shape(value: Any) -> Any:
    """Keys and value types, recursively: what a consumer of the record relies on."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def _fail(event: Any, context: Any) -> None:
    raise RuntimeError("injected: the audit stream function fails on this batch")


def test_given_a_batch_that_keeps_failing_when_retries_run_out_then_its_metadata_reaches_the_on_failure_queue(
        rt, uid):
    from types import SimpleNamespace

    from powerx_agent import spec

    example = json.loads((Path(__file__).resolve().parents[1] / "aws_examples"
                          / "lambda-ddb-stream-on-failure-record.json").read_text())
    name = f"test-failing-stream-consumer-{uid}"
    motopatch.register_handler(name, f"{__name__}._fail")
    lam = rt.client("lambda")
    function_arn = lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=rt.deployment.lambda_role_arn, Handler="x.handler",
        Code={"ZipFile": _zip()})["FunctionArn"]
    dlq = spec.AUDIT_STREAM_DLQ.name
    esm = SimpleNamespace(batch_size=10, max_retry_attempts=1, bisect_on_error=False,
                          event_source_arn=rt.deployment.stream_arns[spec.AUDIT_TABLE.name],
                          destination_config={"OnFailure": {"Destination": rt.deployment.queue_arns[dlq]}})
    records = [{"eventID": str(i), "eventName": "INSERT", "dynamodb": {"SequenceNumber": str(100 + i)}}
               for i in range(3)]
    motopatch.streams._streams._deliver(function_arn, esm, records)
    messages = rt.client("sqs").receive_message(QueueUrl=rt.deployment.queue_urls[dlq], MaxNumberOfMessages=10,
                                                VisibilityTimeout=0).get("Messages", [])
    (sent,) = [json.loads(m["Body"]) for m in messages if function_arn in m["Body"]]
    assert _shape(sent) == _shape(example)  # the documented record, key for key and type for type
    assert sent["DDBStreamBatchInfo"]["batchSize"] == 3
    assert (sent["DDBStreamBatchInfo"]["startSequenceNumber"], sent["DDBStreamBatchInfo"]["endSequenceNumber"]) == (
        "100", "102")
    assert sent["requestContext"]["approximateInvokeCount"] == 2  # the first attempt and one retry
    lam.delete_function(FunctionName=name)


def _zip() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "test function\n")
    return buffer.getvalue()


def test_given_many_threads_putting_one_item_conditionally_when_raced_then_exactly_one_write_wins(
        rt, uid, monkeypatch):
    """motopatch 11: DynamoDB applies a conditional write atomically; so does the embedded runtime. The
    window between moto's condition check and its write is widened to 10 ms, so without the patch every
    racer passes the check."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from moto.dynamodb.models import table as moto_table

    original = moto_table.get_filter_expression

    class Slow:
        def __init__(self, op: Any) -> None:
            self.op = op

        def expr(self, item: Any) -> Any:
            found = self.op.expr(item)
            time.sleep(0.01)
            return found

    monkeypatch.setattr(moto_table, "get_filter_expression", lambda *a, **k: Slow(original(*a, **k)))
    ddb = rt.client("dynamodb")
    table = get_deps().settings.audit_table
    gate = threading.Barrier(16)

    def put(i: int) -> bool:
        gate.wait(timeout=30)
        try:
            ddb.put_item(TableName=table, Item={"pk": {"S": f"TEST#race-{uid}"}, "seq": {"N": "1"},
                                                "writer": {"N": str(i)}},
                         ConditionExpression="attribute_not_exists(pk)")
            return True
        except ddb.exceptions.ConditionalCheckFailedException:
            return False

    for _ in range(3):
        ddb.delete_item(TableName=table, Key={"pk": {"S": f"TEST#race-{uid}"}, "seq": {"N": "1"}})
        with ThreadPoolExecutor(max_workers=16) as pool:
            won = list(pool.map(put, range(16)))
        assert won.count(True) == 1


def test_given_an_update_of_two_attributes_when_read_meanwhile_then_every_read_sees_both_or_neither(
        rt, uid, monkeypatch):
    """motopatch 11: moto applies an update's SET actions one by one; a read answered in between saw
    half of the update. The gap between two actions is widened to 20 ms, and readers poll through it."""
    import threading

    from moto.dynamodb.parsing import executors

    original = executors.SetExecutor.execute

    def slow(self: Any, item: Any) -> None:
        original(self, item)
        time.sleep(0.02)

    monkeypatch.setattr(executors.SetExecutor, "execute", slow)
    ddb, table = rt.client("dynamodb"), get_deps().settings.workflows_table
    key = {"pk": {"S": f"TEST#torn-{uid}"}, "sk": {"S": "META"}}
    ddb.put_item(TableName=table, Item={**key, "status": {"S": "RUNNING"}})
    seen: list[tuple[str, bool]] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            item = ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
            seen.append((item["status"]["S"], "failure_reason" in item))

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    time.sleep(0.05)
    ddb.update_item(TableName=table, Key=key, UpdateExpression="SET #s = :s, updated_at = :t, failure_reason = :r",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":s": {"S": "FAILED"}, ":t": {"N": "1"}, ":r": {"S": "review_rejected"}})
    time.sleep(0.05)
    done.set()
    for reader in readers:
        reader.join()
    assert ("RUNNING", False) in seen and ("FAILED", True) in seen
    assert set(seen) == {("RUNNING", False), ("FAILED", True)}


def test_given_a_transaction_whose_last_condition_fails_when_written_then_nothing_changed(rt, uid):
    ddb, table = get_deps().ddb, get_deps().settings.workflows_table
    pk = f"TEST#tx-{uid}"
    ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "A"}, "v": {"N": "1"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "C"}, "v": {"N": "1"}})
    items = [
        {"Update": {"TableName": table, "Key": {"pk": {"S": pk}, "sk": {"S": "A"}},
                    "UpdateExpression": "SET v = :two", "ExpressionAttributeValues": {":two": {"N": "2"}}}},
        {"Put": {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": "B"}, "v": {"N": "1"}}}},
        {"Put": {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": "C"}, "v": {"N": "9"}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
    ]
    try:
        ddb.transact_write_items(TransactItems=items)
    except ddb.exceptions.TransactionCanceledException as exc:
        codes = [r.get("Code") for r in exc.response["CancellationReasons"]]
    else:
        raise AssertionError("the transaction should have been cancelled")
    assert codes == ["None", "None", "ConditionalCheckFailed"]
    rows = {i["sk"]["S"]: i["v"]["N"] for i in ddb.query(
        TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": pk}},
        ConsistentRead=True)["Items"]}
    assert rows == {"A": "1", "C": "1"}  # the update undone, the new item gone, the old one untouched
    items[2]["Put"]["Item"]["sk"] = {"S": "D"}
    ddb.transact_write_items(TransactItems=items)
    rows = {i["sk"]["S"]: i["v"]["N"] for i in ddb.query(
        TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": pk}},
        ConsistentRead=True)["Items"]}
    assert rows == {"A": "2", "B": "1", "C": "1", "D": "9"}
