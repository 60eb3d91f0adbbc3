"""Events whose source no rule routes: kept in the unrouted queue, refused up front by the replay paths.

The catch-all rule is the ingest rule's complement (``anything-but`` the accepted sources); moto's
EventBridge serves SQS targets, so the event really goes bus -> rule -> queue here. Which events each
rule matches under AWS's semantics is proven in tests/infrastructure/test_aws_guidance.py.
"""

from __future__ import annotations

import json

from helpers import detail
from typer.testing import CliRunner

from powerx_agent import spec
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps


def _unrouted(rt, marker: str) -> list[dict]:
    sqs = rt.client("sqs")
    url = rt.deployment.queue_urls[spec.UNROUTED_QUEUE.name]
    found = []
    for _ in range(5):
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                           WaitTimeSeconds=0).get("Messages", []):
            if marker in message["Body"]:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if found:
            break
    return found


def test_given_an_unknown_source_when_put_on_the_bus_then_it_is_kept_in_the_unrouted_queue_not_ingested(rt, uid):
    body = detail(uid)
    out = rt.put_event("plugin.job.completed", body, source="acme.billing")
    assert out["FailedEntryCount"] == 0  # PutEvents accepts any source: only the rules decide
    assert rt.wait_idle(30)
    (kept,) = _unrouted(rt, f"evt-{uid}")
    assert kept["source"] == "acme.billing" and kept["detail"]["event_id"] == f"evt-{uid}"
    assert get_deps().events.get("acme", body["idempotency_key"]) is None  # ingest never saw it


def test_given_an_accepted_source_when_put_on_the_bus_then_nothing_lands_in_the_unrouted_queue(rt, uid):
    rt.put_event("plugin.job.completed", detail(uid), source="powerx.plugins")
    assert rt.wait_idle(60)
    assert _unrouted(rt, f"evt-{uid}") == []
    assert get_deps().events.get("acme", f"key-{uid}") is not None


def test_given_a_replay_file_with_an_unrouted_source_when_dry_run_then_the_line_is_refused_naming_the_sources(
        rt, uid, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"source": "acme.billing", "detail-type": "plugin.job.completed",
                                "detail": detail(uid)}) + "\n")
    result = CliRunner().invoke(app, ["replay", "--file", str(path), "--dry-run", "--format", "json"])
    assert result.exit_code == 1, result.output
    (problem,) = json.loads(result.output)["invalid"]
    assert problem["code"] == "source.not_routed"
    assert all(source in problem["message"] for source in spec.EVENT_SOURCES)
