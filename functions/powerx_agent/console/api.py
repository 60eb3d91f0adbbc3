"""The operations console's JSON API: what ``/api/...`` answers and what every page renders.

Each function takes the operator's ``Deps`` (their own credentials, through the same read and takeover
code as the CLI: :mod:`powerx_agent.ops`) and the request's parameters, checks every parameter first
(bounded lengths, fixed vocabularies, patterns) and returns plain JSON data. A refusal is an
:class:`ApiError` with an HTTP status and a code; nothing is changed then. docs/console.md documents
the routes.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from powerx_agent.audit.records import workflow_chain
from powerx_agent.errors import AgentError
from powerx_agent.redaction import redact

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
MAX_ITEMS = 10_000
WORKFLOW_STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "ESCALATED", "STOPPED")
EVENT_STATUSES = ("REJECTED", "DEFERRED", "ESCALATED", "IN_PROGRESS", "COMPLETED")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._#~/@+=-]{0,255}$")
# PutEvents answers each entry with an EventId, a UUID (AWS EventBridge API reference, PutEventsResultEntry)
_BUS_EVENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
EVENT_ID_WINDOW = "7d"
"""How far back a search by EventBridge EventId looks (as ``events show`` does by default)."""
_WINDOW = re.compile(r"^(\d{1,4}[mhd]|\d{4}-\d{2}-\d{2}(T[0-9:.]{2,15}(Z|[+-]\d{2}:\d{2})?)?)$")
_REVIEW = re.compile(r"^rv-[0-9a-f]{20}$")
_WORKFLOW = re.compile(r"^wf-[a-z0-9-]{1,100}$")
_REVISION = re.compile(r"^(r[0-9]{1,12}(\+c[0-9]{1,12})?|dir:[\x21-\x7e]{1,200})$")  # a record's library_revision


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def _one(params: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None = None,
         choices: tuple[str, ...] | None = None, max_len: int = 256) -> str | None:
    value = params.get(name)
    if value is None or str(value).strip() == "":
        return None
    value = str(value).strip()
    if len(value) > max_len:
        raise ApiError(400, "console.bad_parameter", f"{name} is longer than {max_len} characters")
    if choices is not None:
        if value.upper() not in choices:
            raise ApiError(400, "console.bad_parameter", f"{name} must be one of {', '.join(choices)}")
        return value.upper()
    if pattern is not None and not pattern.fullmatch(value):
        raise ApiError(400, "console.bad_parameter", f"{name} {value[:80]!r} is not valid here")
    return value


def _int(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or str(raw) == "":
        return default
    if not str(raw).isdigit() or not low <= int(str(raw)) <= high:
        raise ApiError(400, "console.bad_parameter", f"{name} must be an integer within {low}..{high}")
    return int(str(raw))


def paged(rows: list[dict[str, Any]], params: Mapping[str, Any]) -> dict[str, Any]:
    size = _int(params, "size", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    pages = max(1, math.ceil(len(rows) / size))
    page = _int(params, "page", 1, 1, 100_000)
    start = (page - 1) * size
    return {"items": rows[start:start + size], "page": page, "size": size, "total": len(rows), "pages": pages,
            "next": page + 1 if page < pages else None, "prev": page - 1 if page > 1 else None}


def _refused(exc: AgentError, status: int = 400) -> ApiError:
    code = getattr(exc, "code", None) or "console.refused"
    status = 404 if str(code).endswith("not_found") else status
    return ApiError(status, str(code), getattr(exc, "message", None) or str(exc))


# -- workflows --------------------------------------------------------------------------------
def _summary(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item.get(k) for k in ("workflow_id", "tenant_id", "strategy_id", "strategy_version", "status",
                                     "generation", "escalation_reason", "event_id", "idempotency_key",
                                     "event_type", "created_at")}


def workflows(deps: Deps, params: Mapping[str, Any]) -> dict[str, Any]:
    """Workflows newest first, filtered by tenant, strategy, status and window (``since``: 2h, 3d or an ISO
    time), as ``workflow list`` filters them; ``q`` finds those of one event by event id, idempotency key,
    EventBridge EventId or workflow id (as ``events show`` finds an event). Counts per status cover every
    filter but the status."""
    from powerx_agent.ops.events import show_event
    from powerx_agent.ops.workflow import list_workflows

    tenant = _one(params, "tenant", _NAME)
    strategy = _one(params, "strategy", _NAME)
    status = _one(params, "status", choices=WORKFLOW_STATUSES)
    since = _one(params, "since", _WINDOW, max_len=40)
    query = _one(params, "q", _ID)
    try:
        rows = list_workflows(deps, tenant, None, MAX_ITEMS, strategy=strategy, since=since, event=query)
        if query and not rows and _BUS_EVENT_ID.fullmatch(query):
            # an EventBridge EventId (a UUID): only the event's audit records name it, so the records of the
            # window are searched; any other search was answered by the workflows themselves, and an unknown
            # text never costs a read of the audit trail
            try:
                found = show_event(deps, query, tenant=tenant, since=EVENT_ID_WINDOW)
            except AgentError:
                found = None
            if found is not None and found.workflow_id:
                rows = list_workflows(deps, tenant, None, MAX_ITEMS, strategy=strategy, since=since,
                                      event=found.workflow_id)
    except AgentError as exc:
        raise _refused(exc) from None
    counts = Counter(str(r.get("status")) for r in rows)
    chosen = [_summary(r) for r in rows if status is None or r.get("status") == status]
    return {"filters": {"tenant": tenant, "strategy": strategy, "status": status, "since": since, "q": query},
            "counts": {s: counts.get(s, 0) for s in WORKFLOW_STATUSES}, **paged(chosen, params)}


def _node_status_map(nodes: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The graph's colours: every node by its status, and its ``<id>.skipped`` state explicitly (grey
    only when the node was skipped), so a node that ran is never shown as skipped as well."""
    colours: dict[str, str] = {}
    for node_id, item in nodes.items():
        status = str(item.get("status") or "PENDING")
        colours[node_id] = status
        colours[f"{node_id}.skipped"] = "SKIPPED" if status == "SKIPPED" else "PENDING"
    return colours


def _call_of(node: dict[str, Any], workflow_id: str, generation: int) -> dict[str, Any] | None:
    from powerx_agent.nodes.runner import idempotency_key

    kind = node.get("kind")
    path = {"plugin": f"/plugin/runtime/{node.get('plugin')}/execute", "notify": "/notifications/agent-task",
            "manual_review": "/ops/manual-review"}.get(str(kind))
    if path is None:
        return None
    return {"method": "POST", "path": path,
            "idempotency_key": idempotency_key(workflow_id, str(node.get("id")), generation)}


def _error_text(error: Any) -> str | None:
    if not error:
        return None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or json.dumps(error, default=str))
    return str(error)


def workflow(deps: Deps, workflow_id: str) -> dict[str, Any]:
    """One workflow: its record, execution, graph colours, every node (input and output redacted as the
    audit trail redacts them, attempts, errors, duration, generation, the downstream call), the decision
    (selected, nearest misses, the others counted by reason), the audit chain with its verification, links to the consoles and logs."""
    from powerx_agent.audit.chain import check_chain
    from powerx_agent.nodes.runner import render
    from powerx_agent.ops.history import load_history
    from powerx_agent.ops.takeover import TakeoverError
    from powerx_agent.ops.view import console_url
    from powerx_agent.ops.workflow import show_workflow
    from powerx_agent.strategy.decision import candidates_total, listed

    if not _WORKFLOW.fullmatch(workflow_id):
        raise ApiError(400, "console.bad_parameter", f"{workflow_id[:80]!r} is not a workflow id (wf-...)")
    try:
        shown = show_workflow(deps, workflow_id)
    except TakeoverError as exc:
        raise _refused(exc) from None
    meta = deps.workflows.get(workflow_id) or {}
    items: dict[str, dict[str, Any]] = meta.get("nodes") or {}
    arn = meta.get("execution_arn")
    history = load_history(deps, arn, meta.get("created_at")) if arn else None
    payloads = history.task_payloads() if history else {}
    variables = (history.input or {}).get("variables") or {} if history else {}
    generation = int(meta.get("generation") or 1)
    nodes = []
    for node in shown["nodes"]:
        node_id = node["node_id"]
        item = items.get(node_id, {})
        spec_ = (payloads.get(node_id) or {}).get("node") or {}
        try:
            rendered = render(spec_.get("input") or {}, variables, f"node {node_id} input") if spec_ else None
        except AgentError:
            rendered = spec_.get("input")
        nodes.append({**{k: v for k, v in node.items() if k != "history"},
                      "input": redact(rendered), "output": redact(item.get("output")),
                      "error": _error_text(item.get("error") or item.get("last_error")) or node.get("error"),
                      "call": _call_of({**spec_, "id": node_id, "kind": spec_.get("kind") or node.get("kind")},
                                       workflow_id, int(node.get("generation") or 1)) if spec_ else None,
                      "generations": [{k: h.get(k) for k in ("generation", "status", "attempts", "duration",
                                                             "error", "reason") if k in h}
                                      for h in node.get("history") or [] if isinstance(h, dict)]})
    chain_id = workflow_chain(workflow_id)
    chain = sorted(deps.audit.chain(chain_id), key=lambda r: int(r["seq"]))
    gaps, rebased = check_chain(chain_id, chain)
    decision = meta.get("decision") or {}
    reason = next(((r.get("data") or {}).get("reason") for r in chain if r.get("kind") == "decision"), None)
    settings = deps.settings
    links = {"execution": console_url(settings, arn) if arn else None,
             "logs": (f"{settings.console_region_url.rstrip('/')}/cloudwatch/home?region={settings.region}"
                      f"#logsV2:log-groups/log-group/{settings.state_machine_log_group.replace('/', '$252F')}")
             if settings.state_machine_log_group else None,
             "audit_log_group": settings.audit_log_group or None}
    workflow_out = {k: v for k, v in shown["workflow"].items() if k not in ("history",)}
    return {
        "workflow": redact(workflow_out), "execution": shown["execution"], "generation": generation,
        "live": workflow_out.get("status") in ("PENDING", "RUNNING"),
        "graph": {"definition": history.definition if history else None, "status": _node_status_map(items)},
        "nodes": nodes,
        "decision": {"reason": reason, "selected": decision.get("selected"),
                     "library_revision": decision.get("library_revision"),
                     # a bounded record lists the selected and nearest misses and counts the rest;
                     # a record written before the bound lists every candidate
                     "complete": "candidates" in decision, "candidates_total": candidates_total(decision),
                     "others": decision.get("others") or {}, "candidates": redact(listed(decision)),
                     "unlisted": candidates_total(decision) - len(listed(decision))},
        "audit": {"chain": chain_id, "records": [{k: r.get(k) for k in ("seq", "ts", "kind", "node_id", "status",
                                                                        "actor")} for r in chain],
                  "verified": not gaps, "gaps": [str(g) for g in gaps], "rebased": rebased},
        "open_reviews": shown["open_reviews"], "links": links,
    }


def workflow_graph_svg(data: dict[str, Any]) -> str | None:
    from powerx_agent.taskflow.graph import to_svg

    definition = data["graph"]["definition"]
    return to_svg(definition, data["graph"]["status"]) if definition else None


# -- reviews -----------------------------------------------------------------------------------
def reviews(deps: Deps, params: Mapping[str, Any]) -> dict[str, Any]:
    from powerx_agent.ops.review import list_reviews

    queue = _one(params, "queue", _NAME)
    rows = sorted(list_reviews(deps, queue), key=lambda r: float(r.get("created_at") or 0))
    return {"filters": {"queue": queue}, **paged([redact(r) for r in rows], params)}


def review(deps: Deps, review_id: str) -> dict[str, Any]:
    from powerx_agent.ops.takeover import public_review

    if not _REVIEW.fullmatch(review_id):
        raise ApiError(400, "console.bad_parameter", f"{review_id[:80]!r} is not a review id (rv-<20 hex>)")
    found = deps.workflows.get_review(review_id)
    if found is None:
        raise ApiError(404, "review.not_found", f"no review {review_id}")
    return redact(public_review(found))  # type: ignore[no-any-return]


def decide(deps: Deps, review_id: str, outcome: str, by: str, reason: str | None) -> dict[str, Any]:
    """approve / reject: exactly ``review approve|reject`` (the callback API's effect), audited with ``by``."""
    from powerx_agent.ops.review import decide_review
    from powerx_agent.ops.takeover import TakeoverError

    if outcome not in ("approved", "rejected"):
        raise ApiError(400, "console.bad_parameter", "outcome must be approved or rejected")
    if not _REVIEW.fullmatch(review_id):
        raise ApiError(400, "console.bad_parameter", f"{review_id[:80]!r} is not a review id (rv-<20 hex>)")
    reason = (reason or "").strip() or None
    if reason is None:
        raise ApiError(400, "takeover.reason_required", "say why (a reason is recorded with the decision)")
    if len(reason) > 1000:
        raise ApiError(400, "console.bad_parameter", "the reason is longer than 1000 characters")
    metrics = deps.metrics()
    try:
        result = decide_review(deps, metrics, review_id, outcome, by, reason)
    except TakeoverError as exc:
        raise _refused(exc) from None
    finally:
        metrics.flush()
    if result.status != 200:
        body = dict(result.body)
        message = (f"review {review_id} is already closed ({body['first_outcome']})" if "first_outcome" in body
                   else str(body.get("message") or body.get("code")))
        raise ApiError(result.status, str(body.get("code") or "review.refused"), message)
    return {"review_id": review_id, "outcome": outcome, "by": by, **result.body}


def retry(deps: Deps, workflow_id: str, by: str, from_node: str | None) -> dict[str, Any]:
    from powerx_agent.ops.takeover import TakeoverError
    from powerx_agent.ops.workflow import retry_workflow

    if not _WORKFLOW.fullmatch(workflow_id):
        raise ApiError(400, "console.bad_parameter", f"{workflow_id[:80]!r} is not a workflow id")
    if from_node is not None and not _NAME.fullmatch(from_node):
        raise ApiError(400, "console.bad_parameter", f"{from_node[:80]!r} is not a node id")
    metrics = deps.metrics()
    try:
        return retry_workflow(deps, metrics, workflow_id, by, from_node)  # type: ignore[no-any-return]
    except TakeoverError as exc:
        raise _refused(exc, 409) from None
    finally:
        metrics.flush()


# -- events ------------------------------------------------------------------------------------
def events(deps: Deps, params: Mapping[str, Any]) -> dict[str, Any]:
    """Rejected, deferred and escalated events (or any status) of a window, with their codes."""
    from powerx_agent.ops.events import list_events

    tenant = _one(params, "tenant", _NAME)
    status = _one(params, "status", choices=EVENT_STATUSES)
    since = _one(params, "since", _WINDOW, max_len=40) or "24h"
    wanted = {"ESCALATED": ["COMPLETED"], None: ["REJECTED", "DEFERRED", "COMPLETED"]}.get(status, [status or ""])
    try:
        views = list_events(deps, tenant, wanted, None, since, None, MAX_ITEMS)
    except AgentError as exc:
        raise _refused(exc) from None
    rows = []
    for view in views:
        row = view.to_dict()
        escalated = view.status == "COMPLETED" and view.outcome == "escalated"
        if view.status == "COMPLETED" and not escalated:
            continue
        row["status"] = "ESCALATED" if escalated else view.status
        row["replayable"] = view.replayable is not None
        rows.append(redact(row))
    counts = Counter(r["status"] for r in rows)
    return {"filters": {"tenant": tenant, "status": status, "since": since}, "counts": dict(counts),
            **paged(rows, params)}


def replay(deps: Deps, event_ref: str, by: str, dry_run: bool) -> dict[str, Any]:
    """Send a kept (deferred) event again through the bus, as ``replay --file`` does; dry run first."""
    from powerx_agent.ops import replay as rp
    from powerx_agent.ops.events import show_event

    if not _ID.fullmatch(event_ref):
        raise ApiError(400, "console.bad_parameter", f"{event_ref[:80]!r} is not an event reference")
    try:
        view = show_event(deps, event_ref, since="30d")
    except AgentError as exc:
        raise _refused(exc) from None
    if view.replayable is None:
        raise ApiError(409, "replay.not_kept", f"event {event_ref} is {view.status}: the engine kept no copy to "
                                               "replay (rejected events are in the ingest DLQ, accepted ones in "
                                               "the bus archive: use `powerx-agent replay`)")
    items, problems = rp.read_lines([json.dumps(view.replayable)])
    chosen, report = rp.prepare(items, problems=problems, skip_invalid=False, caller=by)
    if problems:
        raise ApiError(422, "replay.invalid", "; ".join(p.message for p in problems)[:500])
    rp.replay_to_bus(deps.bus, chosen, report, lookup=deps.events.get, dry_run=dry_run)
    return {"event": event_ref, "by": by, **report.to_dict()}


# -- strategies --------------------------------------------------------------------------------
def strategies(deps: Deps, params: Mapping[str, Any]) -> dict[str, Any]:
    """Published versions, paged by strategy (``size`` strategies a page, each with all its versions and
    the one before each, for the diff), and the canaries of the strategies shown."""
    from powerx_agent.ops.strategy import published

    wanted = _one(params, "strategy", _NAME)
    ids = [wanted] if wanted else sorted(deps.strategies.revision().get("active", {}))
    page = paged([{"strategy_id": i} for i in ids], params)  # a page of strategies, each with every version
    shown = [r["strategy_id"] for r in page["items"]]
    rows = published(deps, shown, library=False)
    rows.sort(key=lambda r: (r["strategy_id"], -int(r["version"])))
    for row, older in zip(rows, [*rows[1:], None], strict=True):
        row["previous"] = older["version"] if older and older["strategy_id"] == row["strategy_id"] else None
    return {"filters": {"strategy": wanted}, **page, "items": rows, "canaries": canaries(deps, shown, only=wanted)}


CANARY_ACTIONS = ("promote", "abort")


def canaries(deps: Deps, strategy_ids: list[str], only: str | None = None) -> list[dict[str, Any]]:
    """Every running canary (``only``: of that strategy), and the last canary of each strategy in
    ``strategy_ids`` (the page's), with both arms compared as ``strategy canary status`` compares them.
    One read of the revision head and one query per strategy shown."""
    from powerx_agent.match import canary

    running = canary.running(deps)
    wanted = dict.fromkeys([*(s for s in running if only is None or s == only), *strategy_ids])
    out = []
    for strategy_id in wanted:
        entry = running.get(strategy_id)
        runs = deps.strategies.canary_runs(strategy_id)
        run = next((r for r in runs if entry is not None and r["sk"] == entry["run"]), None) or (
            runs[-1] if runs else None)
        if run is not None:
            out.append({**canary.describe(run), "running": entry is not None and run["sk"] == entry["run"]})
    return out


def canary_status(deps: Deps, strategy_id: str) -> dict[str, Any]:
    """The running canary (or the last one) of a strategy: ``strategy canary status ID``."""
    from powerx_agent.match import canary

    _strategy_id(strategy_id)
    try:
        found = canary.status(deps, strategy_id)
    except AgentError as exc:
        raise _refused(exc, 404) from None
    return {**found, "running": found.get("status") == "RUNNING"}


def canary_act(deps: Deps, strategy_id: str, action: str, by: str, reason: str | None) -> dict[str, Any]:
    """promote / abort the running canary: exactly ``strategy canary promote|abort ID --by --reason``
    (the same ops code: audited under ``by``; an abort is counted and notified)."""
    from powerx_agent.ops.strategy import abort_canary, promote_canary

    _strategy_id(strategy_id)
    if action not in CANARY_ACTIONS:
        raise ApiError(404, "console.not_found", f"a canary is promoted or aborted, not {action[:40]!r}")
    reason = (reason or "").strip() or None
    if reason is None:
        raise ApiError(400, "strategy.approval_incomplete", f"say why (the {action} records a reason)")
    if len(reason) > 1000:
        raise ApiError(400, "console.bad_parameter", "the reason is longer than 1000 characters")
    metrics = deps.metrics()
    try:
        if action == "promote":
            result = promote_canary(deps, strategy_id, by, reason)
        else:
            result = {"canary": abort_canary(deps, metrics, strategy_id, by, reason)}
    except AgentError as exc:
        raise _refused(exc, 409) from None
    finally:
        metrics.flush()
    return {"strategy_id": strategy_id, "action": action, "by": by, "reason": reason, **result}


def _strategy_id(strategy_id: str) -> None:
    if not _NAME.fullmatch(strategy_id):
        raise ApiError(400, "console.bad_parameter", f"{strategy_id[:80]!r} is not a strategy id")


def strategy_diff(deps: Deps, strategy_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    from powerx_agent.ops.strategy import diff

    _strategy_id(strategy_id)
    versions = sorted(int(v["version"]) for v in deps.strategies.versions(strategy_id))
    if not versions:
        raise ApiError(404, "strategy.not_found", f"no published strategy {strategy_id}")
    to_v = _int(params, "to", versions[-1], 1, 1_000_000)
    from_v = _int(params, "from", versions[-2] if len(versions) > 1 else versions[-1], 1, 1_000_000)
    old, new = deps.strategies.version(strategy_id, from_v), deps.strategies.version(strategy_id, to_v)
    if old is None or new is None:
        raise ApiError(404, "strategy.version_not_found", f"{strategy_id} has versions {versions}")
    try:
        text = diff(deps, strategy_id, from_v, to_v)
    except AgentError as exc:
        raise _refused(exc) from None
    return {"strategy_id": strategy_id, "from": from_v, "to": to_v, "versions": versions, "diff": text,
            "approval": {str(v): (deps.strategies.version(strategy_id, v) or {}).get("approval") for v in (from_v, to_v)},
            "left": str(old.get("yaml") or ""), "right": str(new.get("yaml") or "")}


def strategy_test(deps: Deps, event_text: str, revision: str | None = None) -> dict[str, Any]:
    """The same evaluation as ``strategy test``: the decision record plus every candidate explained
    (``candidates``), against the library the matcher serves now, or against library ``revision`` (a
    decision record's) while its artifact is kept; ``note`` says when that was not possible."""
    from powerx_agent.json_limits import MAX_DEPTH, JsonLimitError, loads
    from powerx_agent.match.service import Matcher
    from powerx_agent.ops.strategy import event_facts
    from powerx_agent.strategy.evaluate import evaluate

    revision = revision or None
    if revision is not None and not _REVISION.fullmatch(revision):
        raise ApiError(400, "console.bad_parameter", f"{revision[:80]!r} is not a library revision (r<N>)")
    raw = event_text.encode()
    if len(raw) > 256 * 1024:
        raise ApiError(413, "console.too_large", "an event is at most 256 KiB")
    try:
        event = loads(raw, root="", max_depth=MAX_DEPTH + 1)
    except JsonLimitError as exc:
        raise ApiError(400, f"envelope.{exc.kind}", exc.message) from None
    if not isinstance(event, dict) or "detail-type" not in event or "detail" not in event:
        raise ApiError(400, "console.bad_event", "give an EventBridge event with source, detail-type and detail")
    try:
        facts = event_facts(event)
    except AgentError as exc:
        raise _refused(exc) from None
    matcher = Matcher(deps, deps.metrics())
    library, note = matcher.library(), None
    if revision and revision != library.revision:
        earlier = matcher.library_at(revision)
        if earlier is None:
            note = (f"library {revision} is no longer kept (the newest revisions' artifacts are): evaluated "
                    f"against {library.revision}, the library the matcher serves now")
        else:
            library = earlier
            if earlier.revision != revision:
                note = (f"evaluated against {earlier.revision} without the canaries that ran in {revision}: "
                        "the decision record's arm says which arm decided")
    tenant = deps.tenants.get(facts.tenant_id) or {"owner": "<tenant owner>"}
    found = evaluate(library, facts, tenant)
    return {"library_revision": library.revision, "note": note, "decision": redact(found.decision.explained()),
            "reason": found.decision.reason(),
            "variables": redact(found.variables) if found.selected is not None else {},
            "when": found.when if found.selected is not None else {}}


# -- health ------------------------------------------------------------------------------------
TARGETS = {"hit_rate": (">=", 0.80), "generation_p95_ms": ("<=", 10_000.0), "automated_success": (">=", 0.95),
           "manual_rate": ("<", 0.10), "audit_completeness": (">=", 100.0)}


def health(deps: Deps, params: Mapping[str, Any], memo: dict[str, Any]) -> dict[str, Any]:
    """The five success metrics against their targets (the spec's), and the alarms' states on AWS.

    Audit completeness is what ``audit verify`` says; verifying reads every workflow's execution of the
    window (about a second per workflow on the embedded runtime), so it runs when asked (``verify=1h``)
    and the console shows its last result (``memo``, one per console process) until asked again."""
    import time

    from powerx_agent.ops.audit import verify
    from powerx_agent.ops.metrics import compute

    window = _one(params, "verify", _WINDOW, max_len=40)
    figures = compute(deps).to_dict()
    if window:
        try:
            report = verify(deps, since=window)
        except ValueError as exc:
            raise ApiError(400, "console.bad_parameter", str(exc)) from None
        memo["audit"] = {"since": window, "verified_at": time.time(), **report.to_dict()}
    audit = memo.get("audit")
    decisions = figures.get("decisions") or 0
    values = {"hit_rate": figures.get("hit_rate"), "generation_p95_ms": figures.get("latency_p95_ms"),
              "automated_success": None if figures.get("failure_rate") is None else 1 - figures["failure_rate"],
              "manual_rate": round(figures["escalations"] / decisions, 4) if decisions else None,
              "audit_completeness": audit["completeness"] if audit else None}
    metrics = []
    for name, (op, target) in TARGETS.items():
        value = values.get(name)
        ok = None if value is None else {"<=": value <= target, ">=": value >= target, "<": value < target}[op]
        metrics.append({"name": name, "value": value, "target": f"{op} {target:g}", "op": op, "threshold": target,
                        "ok": ok})
    prefix = f"{deps.settings.resource_prefix}powerx-agent"
    alarms = [a.__dict__ for a in deps.alarms.states(prefix)]
    note = None if alarms else (f"no alarm named {prefix}* on this target (the embedded runtime creates none; "
                                "a deployed stack lists its alarms here)")
    return {"metrics": metrics, "figures": figures, "audit": audit, "alarms": alarms or None, "alarms_note": note}
