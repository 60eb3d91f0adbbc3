"""The bad input corpus (tests/bad_inputs/): every case gets its specific error code and message,
no handler crashes (no Lambda function error), and no API answer carries a stack trace.

- envelopes/*.json   EventBridge events through the ingest Lambda (via the Lambda Invoke API)
- strategies/*.yaml  strategy files through the matcher's library build (what a published bad
                     version meets); their lint positions are tested in tests/unit/test_loader_lint.py
- replay/*.json      signed (or mis-signed) bodies to POST /internal/agent/events
- callbacks/*.json   signed (or mis-signed) bodies to POST /internal/agent/callbacks
- CLI arguments      typer CliRunner: exit code 2, a clear message, no traceback
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import typer
from typer.testing import CliRunner

from powerx_agent.cli import load_cmd
from powerx_agent.cli.main import app
from powerx_agent.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, callback_url, signed_headers
from powerx_agent.strategy.library import LibraryLoadError, build_library

CORPUS = Path(__file__).resolve().parents[1] / "bad_inputs"
ENVELOPES = sorted((CORPUS / "envelopes").glob("*.json"))
REPLAYS = sorted((CORPUS / "replay").glob("*.json"))
CALLBACKS = sorted((CORPUS / "callbacks").glob("*.json"))
STRATEGIES = sorted((CORPUS / "strategies").glob("*.yaml"))
TRACE_MARKERS = ("Traceback", 'File "', "line ", ".py")


def _place(data: dict[str, Any], field: str, value: Any) -> None:
    target = data["event"] if "event" in data else data["body"]
    *parents, leaf = field.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(leaf)] = value
    else:
        target[leaf] = value


def case(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if "fill" in data:  # cases too large to keep in the repository are filled here
        _place(data, data["fill"]["field"], "x" * int(data["fill"]["bytes"]))
    if "nest" in data:  # deep values are built here
        deep: Any = 1
        for _ in range(int(data["nest"]["depth"])):
            deep = {"x": deep}
        _place(data, data["nest"]["field"], deep)
    if "number" in data:  # values JSON cannot spell (NaN, Infinity) are set here
        _place(data, data["number"]["field"], float(data["number"]["value"]))
    return data


def no_stack_trace(text: str) -> None:
    assert "Traceback" not in text and 'File "/' not in text, text[:500]


def test_given_corpus_when_counted_then_it_holds_at_least_40_cases_across_five_kinds() -> None:
    counts = {"envelopes": len(ENVELOPES), "strategies": len(STRATEGIES), "replay": len(REPLAYS),
              "callbacks": len(CALLBACKS), "cli": len(CLI_CASES)}
    assert all(n >= 5 for n in counts.values()), counts
    assert sum(counts.values()) >= 40


# ----------------------------------------------------------------------------------------- envelopes
@pytest.mark.parametrize("path", ENVELOPES, ids=[p.stem for p in ENVELOPES])
def test_given_bad_envelope_when_ingested_then_rejected_with_its_code_and_message_and_no_crash(rt, path) -> None:
    data = case(path)
    payload, function_error = rt.invoke("ingest", data["event"])
    assert function_error is None, payload  # the handler answered; it did not crash
    expect = data["expect"]
    assert payload["outcome"] == "rejected"
    assert payload["code"] == expect["code"], payload
    assert expect["message_contains"] in payload["message"], payload["message"]
    if "where" in expect:
        assert payload["where"] == expect["where"], payload
    if "where_prefix" in expect:
        assert payload["where"].startswith(expect["where_prefix"]), payload
    no_stack_trace(json.dumps(payload))


def test_given_bad_envelope_when_rejected_then_kept_in_ingest_dlq_with_reason_and_where(rt, uid) -> None:
    data = case(CORPUS / "envelopes" / "occurred-at-words.json")
    data["event"]["detail"]["event_id"] = f"evt-dlq-{uid}"
    rt.invoke("ingest", data["event"])
    sqs = rt.client("sqs")
    url = rt.deployment.queue_urls["powerx-agent-ingest-dlq"]
    found = None
    for _ in range(100):  # page through the DLQ (other tests' rejections are there too)
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=2).get("Messages", [])
        found = next((m for m in messages if f"evt-dlq-{uid}" in m["Body"]), None)
        if found or not messages:
            break
    assert found is not None
    reason = json.loads(found["Body"])["reason"]
    assert reason["code"] == "envelope.invalid_field" and reason["where"] == "detail.occurred_at"


# ----------------------------------------------------------------------------------------- strategies
def _expected(path: Path) -> str:
    return path.read_text(errors="replace").split("\n", 1)[0].removeprefix("# expect: ").split()[0]


@pytest.mark.parametrize("path", STRATEGIES, ids=[p.name for p in STRATEGIES])
def test_given_bad_strategy_when_library_is_built_then_refused_with_code_not_crashed(path) -> None:
    expected = _expected(path)
    if expected == "none" or expected.startswith("strategy.") or expected == "yaml.encoding":
        pytest.skip("valid alone, a cross-file finding that needs its partner file, or bytes that cannot be "
                    "published as text: covered by tests/unit/test_loader_lint.py")
    text = path.read_text()
    try:
        build_library([(path.name, text)], "r-bad")
        refused = None
    except LibraryLoadError as exc:
        refused = exc
    assert refused is not None, f"{path.name} was accepted into a library"
    codes = {f.code for f in refused.findings}
    assert expected in codes or any(c.split(".")[0] == expected.split(".")[0] for c in codes), codes
    assert all(f.message for f in refused.findings)


# ----------------------------------------------------------------------------------------- internal API
def post(rt: Any, route: str, data: dict[str, Any]) -> requests.Response:
    raw = data["raw"].encode() if "raw" in data else json.dumps(data["body"]).encode()
    sign = data.get("sign", "current")
    if route.endswith("/callbacks"):
        return requests.post(_callback_url(rt, route, data, sign), data=raw,
                             headers={"Content-Type": "application/json"}, timeout=30)
    if sign == "none":
        headers = {"Content-Type": "application/json"}
    else:
        caller = data.get("caller", "operator")
        key = "not-the-signing-key" if sign == "wrong" else \
            rt.deployment.replay_keys.get(caller, rt.deployment.replay_keys["operator"])["current"]
        headers = signed_headers(key, raw, now=time.time() - 3600 if sign == "expired" else None, caller=caller)
        if sign == "bad_timestamp":
            headers[TIMESTAMP_HEADER] = "yesterday"
        if "timestamp" in data:
            headers[TIMESTAMP_HEADER] = data["timestamp"]
        if "signature" in data:
            headers[SIGNATURE_HEADER] = data["signature"]
    headers = {k: v.encode("utf-8") for k, v in headers.items()}  # any header text, sent as its UTF-8 bytes
    return requests.post(f"{rt.api.url}{route}", data=raw, headers=headers, timeout=30)


def _callback_url(rt: Any, route: str, data: dict[str, Any], sign: str) -> str:
    """The URL a callback case is posted to: signed for ``url_id`` (default: the body's id) as the engine
    signs it, or unsigned, expired, signed with another key, or with a given ``expires``."""
    base = f"{rt.api.url}{route}"
    if sign == "none":
        return base
    body = data.get("body") if isinstance(data.get("body"), dict) else {}
    the_id = data.get("url_id", body.get("callback_id") or body.get("review_id") or "cb-" + "0" * 24)
    key = rt.deployment.replay_keys["operator"]["current"] if sign == "wrong" else rt.deployment.callback_keys["current"]
    url = callback_url(base, key, the_id or "cb-" + "0" * 24, int(time.time()) + (-60 if sign == "expired" else 600))
    if not the_id:
        url = base + "?" + "&".join(p for p in url.split("?", 1)[1].split("&") if not p.startswith("id="))
    if "expires" in data:
        url = base + "?" + "&".join(f"expires={data['expires']}" if p.startswith("expires=") else p
                                    for p in url.split("?", 1)[1].split("&"))
    return url


def check_answer(response: requests.Response, expect: dict[str, Any]) -> None:
    no_stack_trace(response.text)
    assert response.status_code == expect["status"], response.text
    body = response.json()
    assert body["code"] == expect["code"], body
    text = json.dumps(body)
    assert expect["message_contains"] in text, body


@pytest.mark.parametrize("path", REPLAYS, ids=[p.stem for p in REPLAYS])
def test_given_bad_replay_request_when_posted_then_specific_status_code_and_no_stack_trace(rt, path) -> None:
    check_answer(post(rt, "/internal/agent/events", case(path)), case(path)["expect"])


@pytest.mark.parametrize("path", CALLBACKS, ids=[p.stem for p in CALLBACKS])
def test_given_bad_callback_when_posted_then_specific_status_code_and_no_stack_trace(rt, path) -> None:
    check_answer(post(rt, "/internal/agent/callbacks", case(path)), case(path)["expect"])


# ----------------------------------------------------------------------------------------- CLI
def _load_app() -> typer.Typer:
    """A local sub-app with ``load`` registered the way the CLI wiring does it."""
    local = typer.Typer()

    @local.callback()
    def _group() -> None:
        """local"""

    load_cmd.register(local)
    root = typer.Typer()
    root.add_typer(local, name="local")
    return root


CLI_CASES = [
    ("unknown-command", "main", ["frobnicate"], "No such command"),
    ("review-approve-blank-by", "main", ["review", "approve", "rv-00000000000000000000", "--by", " "],
     "must name who acts"),
    ("review-approve-by-and-old-spelling-disagree", "main",
     ["review", "approve", "rv-00000000000000000000", "--by", "ann", "--actor", "bob"], "give one"),
    ("workflow-list-bad-query", "main", ["workflow", "list", "--query", "[?"], "not a JMESPath expression"),
    ("workflow-list-bad-format", "main", ["workflow", "list", "--format", "yaml"], "must be text, json or jsonl"),
    ("workflow-show-without-id", "main", ["workflow", "show"], "Missing argument"),
    ("endpoint-not-http", "main", ["--endpoint-url", "ftp://127.0.0.1", "review", "list"], "not an http(s) URL"),
    ("audit-verify-bad-since", "main", ["audit", "verify", "--since", "notadate"], "neither an ISO time"),
    ("flags-set-unknown-flag", "main", ["flags", "set", "no-such-flag", "on"], "unknown flag"),
    ("strategy-lint-missing-dir", "main", ["strategy", "lint", "/nonexistent/strategies"], "neither a strategy file"),
    ("load-rate-zero", "load", ["local", "load", "--rate", "0"], "--rate"),
    ("load-rate-not-a-number", "load", ["local", "load", "--rate", "fast"], "--rate"),
    ("load-duration-too-long", "load", ["local", "load", "--duration", "100000"], "--duration"),
    ("load-negative-duration", "load", ["local", "load", "--duration", "-5"], "--duration"),
]


@pytest.mark.parametrize(("name", "which", "args", "message"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_given_bad_cli_arguments_when_run_then_exit_2_with_clear_message_and_no_traceback(
        rt, name, which, args, message) -> None:
    result = CliRunner().invoke(app if which == "main" else _load_app(), args)
    output = result.output
    assert result.exit_code == 2, output
    assert message in " ".join(output.split()), output  # rich wraps long messages over lines
    assert "Traceback" not in output
    assert isinstance(result.exception, SystemExit)
