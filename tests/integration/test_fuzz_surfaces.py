"""Property-based fuzz of every request surface, on the embedded runtime (moto server, internal API
on loopback, sandbox services): the bus envelope (through the ingest function), the replay API (body
and headers), the callbacks API (body and signed URL) and the CLI's arguments.

For any input, the answer is defined: success, or a refusal with a specific code (and a 4xx on the
APIs, exit code 1 or 2 on the CLI) that docs/reliability.md lists for that surface. Never a 500, a
function error, a stack trace, a key left IN_PROGRESS, a callback closed without its work, or a
workflow left half-written. Refusals are recorded: audited (``event.rejected``) and counted with a
bounded ``tenant`` dimension.

Examples per surface are few in ``make test``; ``make fuzz`` multiplies them (``FUZZ_SCALE``).
Time and memory per input are measured in ``make bench`` (docs/benchmarks-hostile.md), not here.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hostile import SOURCES, base_detail, events, examples, hostile_values, texts
from powerx_agent import spec
from powerx_agent.adapters.metrics import read_emf_totals
from powerx_agent.cli.main import app
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import UNREGISTERED_TENANT
from powerx_agent.ops.audit import verify
from powerx_agent.signing import (
    CALLER_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    callback_url,
    signed_headers,
)

REPO = Path(__file__).resolve().parents[2]
RELIABILITY = (REPO / "docs" / "reliability.md").read_text()
CODE = re.compile(r"^[a-z_]+\.[a-z_]+$")
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)
_counter = itertools.count()


def _uid() -> str:
    return f"fz{next(_counter)}{uuid.uuid4().hex[:8]}"


def _surface_codes(surface: str) -> set[str]:
    """The codes docs/reliability.md lists in the row of a surface (``| <surface> | ... |``)."""
    row = next(line for line in RELIABILITY.splitlines() if line.startswith(f"| {surface} |"))
    return set(re.findall(r"`([a-z_]+\.[a-z_]+)`", row))


def _no_trace(text: str) -> None:
    assert "Traceback" not in text and 'File "/' not in text, text[:400]


def _since() -> str:
    return (datetime.now(UTC) - timedelta(seconds=2)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _settled(rt: Any, since: str, keys: list[tuple[str, str]], workflow_ids: list[str]) -> None:
    """Nothing half-done: no key IN_PROGRESS, no workflow PENDING/RUNNING, and audit verify finds
    every workflow's trail complete."""
    assert rt.wait_idle(180), "the runtime did not come to rest"
    deps = get_deps()
    stuck = [k for k in keys if (deps.events.get(*k) or {}).get("status") == "IN_PROGRESS"]
    assert stuck == [], stuck
    open_ = {w: (deps.workflows.get(w) or {}).get("status") for w in workflow_ids}
    assert not {w: s for w, s in open_.items() if s in ("PENDING", "RUNNING")}, open_
    report = verify(deps, since=since)
    mine = {f"WF#{w}" for w in workflow_ids}
    assert [str(g) for g in report.gaps if g.unit in mine or g.workflow_id in workflow_ids] == []


def _rejection_dimensions_are_bounded(rt: Any) -> None:
    totals = read_emf_totals(rt.client("logs"), rt.environment["METRICS_LOG_GROUP"])
    tenants = {dict(dims).get("tenant") for (name, dims) in totals if name == spec.METRICS["rejected"]}
    registered = {"acme", "globex", "initech"}
    assert tenants <= registered | {UNREGISTERED_TENANT, None}, tenants


# ----------------------------------------------------------------------------------------- the bus
def test_given_hostile_events_on_the_bus_when_ingested_then_each_ends_defined_recorded_and_settled(rt) -> None:
    since, seen = _since(), Counter()
    keys: list[tuple[str, str]] = []
    workflows: list[str] = []
    allowed = _surface_codes("Bus event (ingest)")

    @settings(FUZZ, max_examples=examples(40))
    @given(data=st.data())
    def one(data: Any) -> None:
        event = data.draw(events(_uid()))
        detail = event.get("detail") if isinstance(event, dict) else None
        key = (detail.get("tenant_id"), detail.get("idempotency_key") or detail.get("event_id")) \
            if isinstance(detail, dict) else (None, None)
        plausible = all(isinstance(k, str) and 0 < len(k) <= 128 for k in key)
        before = get_deps().events.get(*key) if plausible else None
        payload, function_error = rt.invoke("ingest", event)
        assert function_error is None, payload
        _no_trace(json.dumps(payload))
        assert payload["outcome"] in ("accepted", "duplicate", "rejected", "deferred"), payload
        if payload["outcome"] == "rejected":
            assert CODE.match(payload["code"]) and payload["code"] in allowed, payload
            assert payload["message"], payload
            seen[payload["code"]] += 1
            if plausible:  # a refusal changes nothing: no key claimed, none released
                assert get_deps().events.get(*key) == before
        else:
            keys.append(key)
            workflows.append(payload["workflow_id"])

    one()
    print(f"bus rejections: {dict(seen)}, accepted or duplicate: {len(keys)}")
    assert len(seen) >= 3, seen
    _settled(rt, since, keys, workflows)
    audited = Counter(r["data"]["code"] for r in get_deps().audit.since(since) if r["kind"] == "event.rejected")
    assert all(audited[code] >= n for code, n in seen.items()), (seen, audited)
    _rejection_dimensions_are_bounded(rt)


# ----------------------------------------------------------------------------------------- replay API
def _replay_body(data: Any) -> bytes:
    kind = data.draw(st.sampled_from(["event"] * 6 + ["json", "bytes"]))
    if kind == "bytes":
        return data.draw(st.binary(max_size=200) | st.sampled_from([b"", b"[" * 50_000, b"{" * 300_000]))
    if kind == "json":
        value = data.draw(hostile_values)
        return json.dumps(value, ensure_ascii=data.draw(st.booleans())).encode("utf-8", "surrogatepass")
    event = data.draw(events(_uid(), sources=["powerx.replay"]))
    if isinstance(event, dict):
        for noise in ("version", "id", "account", "region", "time", "resources"):
            event.pop(noise, None)
    text = event.get("detail") if isinstance(event, dict) and isinstance(event.get("detail"), str) else None
    if text is not None:  # a detail given as text goes in the body as it is
        event["detail"] = "@@detail@@"
        return json.dumps(event).replace('"@@detail@@"', text if len(text) < 50_000 else json.dumps(text)).encode()
    return json.dumps(event, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _sendable(value: str) -> bool:
    """What an HTTP client can put in a header at all: no CR or LF, no leading white space."""
    return re.fullmatch(r"\S[^\r\n]*|", value) is not None


def _replay_headers(rt: Any, data: Any, body: bytes) -> dict[str, Any]:
    keys = rt.deployment.replay_keys
    caller = data.draw(st.sampled_from(sorted(keys)))
    headers: dict[str, Any] = signed_headers(keys[caller]["current"], body, caller=caller)
    for header in data.draw(st.lists(st.sampled_from([TIMESTAMP_HEADER, SIGNATURE_HEADER, CALLER_HEADER,
                                                      "X-PowerX-Actor"]), max_size=2)):
        headers[header] = data.draw(texts.filter(_sendable) | st.sampled_from(["9" * 5000, "\u00b2", "v1=" + "0" * 64,
                                                                             "1" * 13, "", "-1"]))
    return {k: v.encode("utf-8", "surrogatepass") for k, v in headers.items()}


def test_given_hostile_replay_requests_when_posted_then_defined_answers_recorded_and_settled(rt) -> None:
    since, seen = _since(), Counter()
    keys: list[tuple[str, str]] = []
    workflows: list[str] = []
    allowed = _surface_codes("Replay API")

    @settings(FUZZ, max_examples=examples(30))
    @given(data=st.data())
    def one(data: Any) -> None:
        body = _replay_body(data)
        headers = _replay_headers(rt, data, body)
        answer = requests.post(f"{rt.api.url}/internal/agent/events", data=body, headers=headers, timeout=60)
        _no_trace(answer.text)
        assert answer.status_code in (200, 202, 400, 401, 403, 409, 413), (answer.status_code, answer.text[:300])
        got = answer.json()
        seen[got.get("code") or got.get("status")] += 1
        if answer.status_code >= 400:
            assert CODE.match(got["code"]) and got["code"] in allowed, got
            assert got["message"], got
        else:
            event = json.loads(body)
            keys.append((event["detail"]["tenant_id"], event["detail"]["idempotency_key"]))
            workflows.append(got["workflow_id"])

    one()
    print(f"replay answers: {dict(seen)}")
    assert len(seen) >= 3, seen  # the fuzzer reached past the signature check
    _settled(rt, since, keys, workflows)
    _rejection_dimensions_are_bounded(rt)


# ----------------------------------------------------------------------------------------- callbacks API
def _waiting_callback(rt: Any) -> tuple[str, str]:
    from powerx_agent.ingest.service import workflow_id_for

    rt.sandbox.async_callback("provisioner", delay=3600)  # answers 202 and stays silent
    uid = _uid()
    body = {**base_detail(uid), "payload": {"request": {"id": uid, "kind": "quota-increase"}}}
    rt.put_event("tenant.request.approved", body, source="powerx.tenants")
    deadline = time.time() + 60
    while time.time() < deadline:
        calls = [c for c in rt.sandbox.plugin_calls("provisioner") if c.body.get("input", {}).get("request") == uid]
        if calls and (get_deps().workflows.get_callback(calls[0].body["callback_id"]) or {}).get("status") == "OPEN":
            return calls[0].body["callback_id"], workflow_id_for("acme", body["idempotency_key"])
        time.sleep(0.2)
    raise AssertionError("no callback opened")


def _callback_body(data: Any, callback_id: str) -> bytes:
    body: dict[str, Any] = {"callback_id": callback_id, "outcome": "succeeded", "output": {"environment": "e"}}
    for field, value, delete in data.draw(st.lists(st.tuples(
            st.sampled_from(["callback_id", "review_id", "outcome", "output", "output.v", "reason", "actor", "x"]),
            hostile_values | st.sampled_from(["failed", "approved", "heartbeat", "succeeded"]), st.booleans()),
            min_size=1, max_size=3)):
        target = body.setdefault("output", {}) if field == "output.v" else body
        if not isinstance(target, dict):
            continue
        leaf = "v" if field == "output.v" else field
        if delete:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    if data.draw(st.integers(0, 9)) == 0:
        return data.draw(st.binary(max_size=100) | st.sampled_from([b"", b'{"output":' * 500, b"[" * 300_000]))
    return json.dumps(body, ensure_ascii=data.draw(st.booleans())).encode("utf-8", "surrogatepass")


def _callback_url(rt: Any, data: Any, callback_id: str) -> str:
    base = f"{rt.api.url}/internal/agent/callbacks"
    keys = rt.deployment.callback_keys
    url = callback_url(base, keys["current"], callback_id, int(time.time()) + 600)
    change = data.draw(st.sampled_from(["none"] * 5 + ["id", "expires", "signature", "drop", "other_id"]))
    if change == "none":
        return url
    if change == "other_id":
        return callback_url(base, keys["current"], "cb-" + uuid.uuid4().hex[:24], int(time.time()) + 600)
    params = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
    if change == "drop":
        params.pop(data.draw(st.sampled_from(sorted(params))))
    else:
        value = data.draw(texts | st.sampled_from(["9" * 5000, "\u00b2", "-1"]))
        params[change] = requests.utils.quote(value.encode("utf-8", "surrogatepass"), safe="")
    return base + "?" + "&".join(f"{k}={v}" for k, v in params.items())


def test_given_hostile_callbacks_when_posted_then_only_a_valid_answer_closes_and_nothing_half_done(rt) -> None:
    since = _since()
    allowed = _surface_codes("Callbacks API")
    callback_id, workflow_id = _waiting_callback(rt)
    state: dict[str, Any] = {"closed_by": None}
    seen: Counter = Counter()

    @settings(FUZZ, max_examples=examples(40))
    @given(data=st.data())
    def one(data: Any) -> None:
        deps = get_deps()
        body = _callback_body(data, callback_id)
        answer = requests.post(_callback_url(rt, data, callback_id), data=body,
                               headers={"Content-Type": "application/json"}, timeout=60)
        _no_trace(answer.text)
        assert answer.status_code in (200, 400, 401, 403, 404, 409, 413), (answer.status_code, answer.text[:300])
        got = answer.json()
        seen[got.get("code") or got.get("status")] += 1
        item = deps.workflows.get_callback(callback_id)
        if answer.status_code == 200 and got.get("status") == "accepted":
            assert state["closed_by"] is None
            state["closed_by"] = got["outcome"]
            assert item["status"] == "CLOSED" and item["outcome"] == got["outcome"]
        elif answer.status_code >= 400:
            assert CODE.match(got["code"]) and got["code"] in allowed, got
        if state["closed_by"] is None:  # nothing but an accepted answer closes it or moves the node
            assert item["status"] == "OPEN", item
            assert deps.workflows.get(workflow_id)["nodes"]["provision"]["status"] == "RUNNING"

    one()
    print(f"callback answers: {dict(seen)}")
    assert len(seen) >= 3, seen
    if state["closed_by"] is None:  # the plugin's real answer still closes it
        good = json.dumps({"callback_id": callback_id, "outcome": "succeeded", "output": {"environment": "e"}})
        url = callback_url(f"{rt.api.url}/internal/agent/callbacks", rt.deployment.callback_keys["current"],
                           callback_id, int(time.time()) + 600)
        assert requests.post(url, data=good, timeout=60).status_code == 200
    _settled(rt, since, [], [workflow_id])
    assert get_deps().workflows.get(workflow_id)["status"] in ("SUCCEEDED", "FAILED", "ESCALATED")


# ----------------------------------------------------------------------------------------- CLI arguments
READ_ONLY = [  # commands that change nothing, with the options they take (never --out, which writes a file)
    (["workflow", "show"], ["--format"]),
    (["workflow", "list"], ["--tenant", "--status", "--limit", "--format"]), (["review", "list"], ["--queue", "--format"]),
    # audit verify reads from --since only: the whole table of a long test session is not the point
    (["audit", "verify", "--since", "2099-01-01T00:00:00Z"], ["--tenant", "--stale-after", "--format"]),
    (["strategy", "lint"], ["--format"]), (["strategy", "test"], ["--event", "--strategies", "--format", "--asl"]),
    (["strategy", "graph"], ["--strategies", "--format"]), (["strategy", "list"], ["--strategies", "--format", "--id"]),
    (["strategy", "simulate"], ["--events", "--strategies", "--baseline", "--format"]),
    (["keys", "list"], ["--format"]), (["release", "list"], ["--format"]), (["flags", "show"], ["--format"]),
]
ARG_VALUES = ["", "-", "--", "-1", "0", "1e999", "NaN", "9" * 400, "\u00b2", "../../etc/passwd", "/dev/zero",
              "/nonexistent", "strategies", "acme", "wf-x", "2026-13-45T99:99:99Z", "--help", "\x00", "\u202e",
              "$(id)", "a" * 5000]


def test_given_hostile_cli_arguments_when_run_then_exit_0_1_or_2_with_a_message_and_no_traceback(rt, tmp_path) -> None:
    event_files = {"deep.json": '{"x":' * 5000 + "1" + "}" * 5000, "nan.json": '{"detail": {"n": NaN}}',
                   "binary.json": "\udcff\udcfe", "list.json": "[]", "huge-number.json": "9" * 5000}
    for name, text in event_files.items():
        (tmp_path / name).write_text(text, errors="surrogateescape")
    values = ARG_VALUES + [str(tmp_path / n) for n in event_files]
    seen: Counter = Counter()

    @settings(FUZZ, max_examples=examples(30))
    @given(command=st.sampled_from(READ_ONLY), data=st.data())
    def one(command: tuple[list[str], list[str]], data: Any) -> None:
        words, options = command
        args = list(words)
        for _ in range(data.draw(st.integers(0, 3))):
            if options and data.draw(st.booleans()):
                args.append(data.draw(st.sampled_from(options)))
            args.append(data.draw(st.sampled_from(values) | texts.filter(lambda s: "\x00" not in s)))
        result = CliRunner().invoke(app, args)
        seen[result.exit_code] += 1
        assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output[-500:], result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
        _no_trace(result.output)
        if result.exit_code:
            assert result.output.strip(), args  # a refusal says why

    one()
    print(f"cli exit codes: {dict(seen)}")


def test_given_every_source_the_fuzzers_use_when_listed_then_routed_and_unrouted_both_appear() -> None:
    assert set(SOURCES) & set(spec.EVENT_SOURCES) and set(SOURCES) - set(spec.EVENT_SOURCES)
