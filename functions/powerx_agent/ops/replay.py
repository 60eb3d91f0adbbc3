"""The replay tool's logic (``powerx-agent replay``, ``scripts/agent-replay``): docs/intake.md.

Three ways to put events back in front of the engine:

- ``--file events.jsonl``: every line is validated first (the same ``parse_event`` as ingest); the
  bad ones are all reported with their line numbers and codes and nothing is sent unless the caller
  asks to skip them. The rest go out with PutEvents in batches of at most 10 entries (and 256 KiB),
  and only the entries EventBridge reports as failed are retried, with exponential backoff and full
  jitter, a bounded number of times.
- ``via="api"``: each event is signed and POSTed to ``POST /internal/agent/events``; the endpoint
  answers per event (202 accepted, 200 duplicate, 4xx with a code).
- ``--archive NAME --start --end``: an EventBridge ``StartReplay`` of the archive onto the bus,
  restricted to the ingest rule.

Before sending on the bus, each event is looked up in ``agent_events``: an event that already ran
is reported as a duplicate with its workflow id and not sent; a key reused with another payload is
reported as a conflict and not sent; a DEFERRED event (the orchestrator was off) is sent, so that it
runs now. ``new_key`` gives each replay a fresh, deterministic idempotency key
(``<key>#replay-<generation>``) and records ``replay_of`` (the original event id), so it runs again.

Clients and the HTTP poster are passed in: this module calls no AWS or HTTP library itself.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from powerx_agent.adapters.bus import Bus
from powerx_agent.errors import EventRejected
from powerx_agent.ingest.envelope import IncomingEvent, parse_event
from powerx_agent.ingest.routing import check_routed
from powerx_agent.json_limits import MAX_DEPTH, JsonLimitError
from powerx_agent.json_limits import loads as loads_bounded
from powerx_agent.signing import signed_headers

MAX_BATCH_ENTRIES = 10  # PutEvents' limit
MAX_BATCH_BYTES = 256 * 1024  # PutEvents' request limit
MAX_KEY_CHARS = 128

Progress = Callable[[int], None]
Lookup = Callable[[str, str], "dict[str, Any] | None"]
Poster = Callable[[str, bytes, "dict[str, str]"], "tuple[int | None, Any]"]


@dataclass(frozen=True)
class LineProblem:
    line: int
    code: str
    message: str
    where: str | None = None


@dataclass(frozen=True)
class ReplayItem:
    line: int
    event: dict[str, Any]  # EventBridge shape: source, detail-type, detail
    incoming: IncomingEvent

    @property
    def tenant_id(self) -> str:
        return self.incoming.envelope.tenant_id

    @property
    def key(self) -> str:
        return self.incoming.envelope.key


@dataclass
class Outcome:
    line: int
    tenant_id: str
    event_type: str
    event_id: str
    idempotency_key: str
    status: str  # sent | accepted | duplicate | failed | would_send | would_skip
    code: str | None = None
    message: str | None = None
    workflow_id: str | None = None
    bus_event_id: str | None = None
    http_status: int | None = None
    attempts: int = 0
    replay_of: str | None = None


@dataclass
class ReplayReport:
    invalid: list[LineProblem] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    filtered_out: int = 0
    dry_run: bool = False
    sent_anything: bool = False

    def count(self, *statuses: str) -> int:
        return sum(1 for o in self.outcomes if o.status in statuses)

    @property
    def ok(self) -> bool:
        return not self.invalid and self.count("failed") == 0

    def summary(self) -> dict[str, Any]:
        return {"sent": self.count("sent", "accepted"), "duplicates": self.count("duplicate"),
                "failed": self.count("failed"), "invalid": len(self.invalid), "filtered_out": self.filtered_out,
                "would_send": self.count("would_send"), "would_skip": self.count("would_skip"),
                "dry_run": self.dry_run,
                "failures": [{"line": o.line, "event_id": o.event_id, "code": o.code, "message": o.message}
                             for o in self.outcomes if o.status == "failed"]}

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "invalid": [asdict(p) for p in self.invalid],
                "events": [{k: v for k, v in asdict(o).items() if v not in (None, 0)} for o in self.outcomes]}


class ReplayUsageError(ValueError):
    """The request cannot be carried out as asked (bad option combination, unreadable file)."""


# -- reading and selecting ------------------------------------------------------------------------
def _as_eventbridge_event(obj: Any) -> Any:
    """Accept an EventBridge event, a PutEvents entry, an ingest DLQ record (a rejection
    ``{"reason", "event"}``, or Lambda's on-failure record of an invocation whose retries ran out
    ``{"requestContext", "requestPayload"}``) or a match DLQ message (what ingest queued for the matcher:
    ``{"event": {"source", "event_type", "detail"}, "workflow_id", ...}``)."""
    if isinstance(obj, dict) and "event" in obj and "reason" in obj and isinstance(obj["event"], dict):
        return obj["event"]
    if isinstance(obj, dict) and "workflow_id" in obj and isinstance(obj.get("event"), dict) \
            and isinstance(obj["event"].get("detail"), dict):
        event = obj["event"]
        return {"source": event.get("source"), "detail-type": event.get("event_type"), "detail": event["detail"]}
    if isinstance(obj, dict) and "requestContext" in obj and isinstance(obj.get("requestPayload"), dict):
        return obj["requestPayload"]
    if isinstance(obj, dict) and "DetailType" in obj:
        detail = obj.get("Detail")
        return {"source": obj.get("Source"), "detail-type": obj.get("DetailType"), "detail": detail}
    return obj


def read_lines(lines: Iterable[str]) -> tuple[list[ReplayItem], list[LineProblem]]:
    items: list[ReplayItem] = []
    problems: list[LineProblem] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            obj = loads_bounded(text, root="", max_depth=MAX_DEPTH + 2)  # a DLQ record wraps the event once
        except JsonLimitError as exc:
            code = "line.invalid_json" if exc.kind == "invalid_json" else f"envelope.{exc.kind}"
            problems.append(LineProblem(number, code, exc.message, exc.where or None))
            continue
        try:
            event = _as_eventbridge_event(obj)
            incoming = parse_event(event)
            check_routed(incoming.source)
        except EventRejected as exc:
            problems.append(LineProblem(number, exc.code, exc.message, exc.where))
            continue
        items.append(ReplayItem(number, {"source": incoming.source, "detail-type": incoming.event_type,
                                         "detail": event["detail"] if isinstance(event["detail"], dict)
                                         else loads_bounded(event["detail"], root="detail")},
                                incoming))
    return items, problems


def read_file(path: str | Path) -> tuple[list[ReplayItem], list[LineProblem]]:
    try:
        with open(path, encoding="utf-8") as handle:
            return read_lines(handle)
    except OSError as exc:
        raise ReplayUsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ReplayUsageError(f"{path} is not UTF-8 text: {exc}") from None


def select(items: list[ReplayItem], tenants: Iterable[str] = (), event_types: Iterable[str] = ()) -> list[ReplayItem]:
    tenant_set, type_set = set(tenants), set(event_types)
    return [i for i in items if (not tenant_set or i.tenant_id in tenant_set)
            and (not type_set or i.incoming.event_type in type_set)]


def replay_key(key: str, generation: int) -> str:
    """``<key>#replay-<n>``; long keys are shortened with a hash so the result stays within 128 chars."""
    suffix = f"#replay-{generation}"
    if len(key) + len(suffix) <= MAX_KEY_CHARS:
        return key + suffix
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return key[: MAX_KEY_CHARS - len(suffix) - 17] + "~" + digest + suffix


def with_new_key(item: ReplayItem, generation: int = 1) -> ReplayItem:
    if generation < 1:
        raise ReplayUsageError("the replay generation starts at 1")
    env = item.incoming.envelope
    detail = dict(item.event["detail"])
    detail["idempotency_key"] = replay_key(env.key, generation)
    detail["event_id"] = replay_key(env.event_id, generation)
    detail["replay_of"] = env.replay_of or env.event_id
    event = {**item.event, "detail": detail}
    return ReplayItem(item.line, event, parse_event(event))


def with_replayed_by(item: ReplayItem, caller: str) -> ReplayItem:
    event = {**item.event, "detail": {**item.event["detail"], "replayed_by": caller[:256]}}
    return ReplayItem(item.line, event, parse_event(event))


def _outcome(item: ReplayItem, status: str, **extra: Any) -> Outcome:
    env = item.incoming.envelope
    return Outcome(item.line, env.tenant_id, item.incoming.event_type, env.event_id, env.key, status,
                   replay_of=env.replay_of, **extra)


def prepare(items: list[ReplayItem], *, problems: list[LineProblem], skip_invalid: bool, tenants: Iterable[str] = (),
            event_types: Iterable[str] = (), new_key: bool = False, generation: int = 1,
            caller: str | None = None) -> tuple[list[ReplayItem], ReplayReport]:
    """Validate-first gate, filters and key rewriting; the report carries every bad line."""
    report = ReplayReport(invalid=list(problems))
    if problems and not skip_invalid:
        return [], report
    chosen = select(items, tenants, event_types)
    report.filtered_out = len(items) - len(chosen)
    if new_key:
        chosen = [with_new_key(i, generation) for i in chosen]
    if caller:
        chosen = [with_replayed_by(i, caller) for i in chosen]
    return chosen, report


# -- on the bus ------------------------------------------------------------------------------------
def classify(items: list[ReplayItem], lookup: Lookup | None) -> tuple[list[ReplayItem], list[Outcome]]:
    """Which events would run again: duplicates and conflicts are answered here and not sent."""
    if lookup is None:
        return items, []
    to_send: list[ReplayItem] = []
    answered: list[Outcome] = []
    for item in items:
        record = lookup(item.tenant_id, item.key)
        if record is None or record.get("status") in ("DEFERRED", "IN_PROGRESS"):
            to_send.append(item)  # new, deferred (runs now if the orchestrator is on) or stuck: ingest decides
        elif record.get("payload_hash") != item.incoming.payload_hash:
            answered.append(_outcome(item, "failed", code="idempotency.payload_conflict",
                                     message=f"key '{item.key}' was first used by event "
                                             f"'{record.get('event_id')}' with another payload",
                                     workflow_id=record.get("workflow_id")))
        else:
            answered.append(_outcome(item, "duplicate", workflow_id=record.get("workflow_id"),
                                     message=f"already {str(record.get('status', '')).lower()}"))
    return to_send, answered


def _entry(item: ReplayItem) -> dict[str, Any]:
    return {"Source": item.event["source"], "DetailType": item.event["detail-type"],
            "Detail": json.dumps(item.event["detail"], ensure_ascii=False, separators=(",", ":"))}


def entry_for(item: ReplayItem, bus: str) -> dict[str, Any]:
    return {**_entry(item), "EventBusName": bus}


def _entry_bytes(entry: dict[str, Any]) -> int:
    return sum(len(str(entry.get(k, "")).encode()) for k in ("Source", "DetailType", "Detail")) + 64


def batches(items: list[ReplayItem], bus: str) -> list[list[ReplayItem]]:
    out: list[list[ReplayItem]] = []
    current: list[ReplayItem] = []
    size = 0
    for item in items:
        entry_size = _entry_bytes(entry_for(item, bus))
        if current and (len(current) == MAX_BATCH_ENTRIES or size + entry_size > MAX_BATCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(item)
        size += entry_size
    if current:
        out.append(current)
    return out


@dataclass(frozen=True)
class Backoff:
    max_attempts: int = 5
    base: float = 0.2
    cap: float = 5.0

    def delay(self, attempt: int, rng: Callable[[], float]) -> float:
        """Full jitter: uniform(0, min(cap, base * 2^(attempt-1)))."""
        return rng() * min(self.cap, self.base * 2 ** (attempt - 1))


def put_events(bus: Bus, items: list[ReplayItem], *, backoff: Backoff = Backoff(),
               sleep: Callable[[float], None] = time.sleep, rng: Callable[[], float] = random.random,
               on_progress: Progress | None = None) -> list[Outcome]:
    """PutEvents in batches; only the failed entries are retried, a bounded number of times."""
    outcomes: list[Outcome] = []
    for batch in batches(items, bus.name):
        pending = list(batch)
        attempt = 0
        while pending:
            attempt += 1
            results = bus.put([_entry(i) for i in pending])
            failed = [(item, r) for item, r in zip(pending, results, strict=True) if not r.ok]
            outcomes += [_outcome(item, "sent", bus_event_id=r.event_id, attempts=attempt)
                         for item, r in zip(pending, results, strict=True) if r.ok]
            if not failed:
                break
            if attempt >= backoff.max_attempts:
                outcomes += [_outcome(item, "failed", code=r.error_code, message=r.error_message,
                                      attempts=attempt) for item, r in failed]
                break
            pending = [item for item, _ in failed]
            sleep(backoff.delay(attempt, rng))
        if on_progress:
            on_progress(len(batch))
    return outcomes


def replay_to_bus(bus: Bus, items: list[ReplayItem], report: ReplayReport, *,
                  lookup: Lookup | None, dry_run: bool = False, backoff: Backoff = Backoff(),
                  sleep: Callable[[float], None] = time.sleep, rng: Callable[[], float] = random.random,
                  on_progress: Progress | None = None) -> ReplayReport:
    to_send, answered = classify(items, lookup)
    report.dry_run = dry_run
    if dry_run:
        report.outcomes += [_outcome(i, "would_send") for i in to_send]
        report.outcomes += [_replace_status(o, "would_skip") for o in answered]
        return report
    if on_progress and answered:
        on_progress(len(answered))
    report.outcomes += answered
    report.outcomes += put_events(bus, to_send, backoff=backoff, sleep=sleep, rng=rng,
                                  on_progress=on_progress)
    report.sent_anything = bool(to_send)
    report.outcomes.sort(key=lambda o: o.line)
    return report


def _replace_status(outcome: Outcome, status: str) -> Outcome:
    message = f"{outcome.status}: {outcome.message or outcome.code or ''}".strip(": ")
    return Outcome(**{**asdict(outcome), "status": status, "message": message})


# -- through the signed endpoint -------------------------------------------------------------------
def replay_via_api(post: Poster, api_url: str, signing_key: str, items: list[ReplayItem], report: ReplayReport, *,
                   caller: str, actor: str = "", dry_run: bool = False,
                   on_progress: Progress | None = None) -> ReplayReport:
    """Sign with the caller's key and POST each event (``X-PowerX-Caller`` names the key; ``actor``, the
    person, goes into the lineage); 202 accepted, 200 duplicate, anything else a failure with its code."""
    url = api_url.rstrip("/") + "/internal/agent/events"
    report.dry_run = dry_run
    for item in items:
        if dry_run:
            report.outcomes.append(_outcome(item, "would_send"))
            continue
        body = json.dumps(item.event, separators=(",", ":")).encode()
        headers = signed_headers(signing_key, body, caller=caller)
        if actor:
            headers["X-PowerX-Actor"] = "".join(c for c in actor if " " <= c <= "~")[:128]
        status, answer = post(url, body, headers)
        answer = answer if isinstance(answer, dict) else {}
        if status == 202:
            report.outcomes.append(_outcome(item, "accepted", http_status=status, workflow_id=answer.get("workflow_id"),
                                            message=answer.get("status"), attempts=1))
            report.sent_anything = True
        elif status == 200:
            report.outcomes.append(_outcome(item, "duplicate", http_status=status,
                                            workflow_id=answer.get("workflow_id"),
                                            message=f"already {str(answer.get('event_status', '')).lower()}",
                                            attempts=1))
        else:
            report.outcomes.append(_outcome(item, "failed", http_status=status,
                                            code=answer.get("code") or ("http.no_answer" if status is None
                                                                        else f"http.{status}"),
                                            message=answer.get("message") or answer.get("error"), attempts=1))
        if on_progress:
            on_progress(1)
    return report


# -- from the archive ------------------------------------------------------------------------------
def replay_archive(bus: Bus, *, archive: str, rule: str, start: Any, end: Any, name: str | None = None,
                   wait_seconds: float = 300.0, sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """StartReplay of ``archive`` between ``start`` and ``end`` onto the bus, delivered to ``rule`` only.

    Waits (bounded) until the replay leaves STARTING/RUNNING and returns its description.
    """
    if end <= start:
        raise ReplayUsageError("--end must be after --start")
    name = name or f"powerx-replay-{int(time.time())}-{random.randrange(16 ** 6):06x}"
    bus.replay(archive=archive, rule=rule, start=start, end=end, name=name)
    deadline = clock() + wait_seconds
    while True:
        state, reason = bus.replay_state(name)
        if state not in ("STARTING", "RUNNING") or clock() >= deadline:
            return {"replay_name": name, "state": state, "reason": reason, "archive": archive, "bus": bus.name,
                    "rule": rule, "start": str(start), "end": str(end)}
        sleep(1.0)
