"""A payload that breaks its event type's contract: ingest rejects it (payload.schema_violation, into the
ingest DLQ, audited, counted); `strategy test` shows the same rejection; `strategy lint` warns on a path
the contract says cannot exist."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import detail, send
from typer.testing import CliRunner

from powerx_agent import spec
from powerx_agent.adapters.metrics import read_emf_totals
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for

REPO = Path(__file__).resolve().parents[2]
CODE = "payload.schema_violation"


def _dlq_reason(rt, event_id: str) -> dict:
    """The reason the ingest DLQ keeps for this event (each message hidden while read, then made visible)."""
    sqs = rt.client("sqs")
    url = rt.deployment.queue_urls[spec.INGEST_DLQ.name]
    found, handles = None, []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages"):
        for message in batch:
            handles.append(message["ReceiptHandle"])
            body = json.loads(message["Body"])
            detail = (body.get("event") or {}).get("detail") if isinstance(body.get("event"), dict) else None
            if isinstance(detail, dict) and detail.get("event_id") == event_id:
                found = body["reason"]
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    assert found is not None, f"no DLQ message for {event_id}"
    return found


def _rejected(rt) -> float:
    totals = read_emf_totals(rt.client("logs"), get_deps().settings.metrics_log_group)
    return sum(v for (name, dims), v in totals.items() if name == spec.METRICS["rejected"] and ("code", CODE) in dims)


def test_given_a_c1_event_without_job_id_when_ingested_then_rejected_into_the_dlq_audited_and_counted(rt, uid,
                                                                                                    tmp_path):
    body = detail(uid, job={"type": "report", "rows": 10})  # no job.id: the report would be "daily-null"
    before = _rejected(rt)
    send(rt, "plugin.job.completed", body)
    workflow_id = workflow_id_for(body["tenant_id"], body["idempotency_key"])
    assert get_deps().workflows.get(workflow_id) is None  # nothing matched, nothing started
    kinds = [r["kind"] for r in get_deps().audit.chain(f"WF#{workflow_id}")]
    assert kinds == ["event.rejected"], kinds
    (rejected,) = get_deps().audit.chain(f"WF#{workflow_id}")
    assert rejected["data"]["code"] == CODE and rejected["data"]["where"] == "detail.payload.job.id"
    reason = _dlq_reason(rt, body["event_id"])
    assert reason["code"] == CODE and reason["where"] == "detail.payload.job.id"
    assert "required" in reason["message"]
    assert _rejected(rt) == before + 1

    # strategy test shows the same rejection, same code and field, and exits 1
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps({"source": "powerx.plugins", "detail-type": "plugin.job.completed",
                                      "detail": body}))
    out = CliRunner().invoke(app, ["strategy", "test", "--event", str(event_file), "--format", "json",
                                   "--contracts", str(REPO / "config" / "event-types")])
    assert out.exit_code == 1
    shown = json.loads(out.output)["rejected"]
    assert (shown["code"], shown["where"]) == (reason["code"], reason["where"])


def test_given_a_valid_c1_event_when_ingested_then_the_contract_lets_it_through(rt, uid):
    wf = send(rt, "plugin.job.completed", detail(uid))
    assert wf is not None and wf["status"] == "SUCCEEDED"


def test_given_a_strategy_reading_a_path_the_contract_rules_out_when_linted_then_warned_at_its_line(tmp_path):
    text = (REPO / "strategies" / "report-on-job-completed.yaml").read_text()
    broken = text.replace("job_id: $.payload.job.id", "job_id: $.payload.job.idd")
    assert broken != text
    (tmp_path / "report-on-job-completed.yaml").write_text(broken)
    out = CliRunner().invoke(app, ["strategy", "lint", str(tmp_path), "--format", "json",
                                   "--contracts", str(REPO / "config" / "event-types")])
    assert out.exit_code == 0  # a warning, not an error
    (finding,) = [f for f in json.loads(out.output) if f["code"] == "path.impossible"]
    line = next(n for n, raw in enumerate(broken.splitlines(), start=1) if "$.payload.job.idd" in raw)
    assert (finding["line"], finding["severity"]) == (line, "warning")
    assert "no field 'idd'" in finding["message"] and "plugin.job.completed.schema.json" in finding["message"]
    clean = CliRunner().invoke(app, ["strategy", "lint", str(REPO / "strategies"), "--format", "json"])
    assert [f for f in json.loads(clean.output) if f["code"] == "path.impossible"] == []
