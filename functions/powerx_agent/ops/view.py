"""The orchestration view of one workflow: a single self-contained HTML page (``workflow view``).

Inline CSS and SVG only: no script, no external stylesheet, font or image, so opening the file makes
no network request (the Step Functions console link is a plain link). Sections: the taskflow graph
(``taskflow.graph.to_svg`` over the state machine's own definition, from ``describe_state_machine``,
laid out by grandalf) with each node coloured by status; the nodes with attempts, duration and
error; the decision record; the event (redacted by ``powerx_agent.redaction``); the timeline from the
execution history (for an Express execution, from its records in the state machines' log group); the
audit chain.
"""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

from powerx_agent.adapters.execution_logs import is_express_execution
from powerx_agent.audit.kinds import AuditKind
from powerx_agent.audit.records import workflow_chain
from powerx_agent.errors import AgentError
from powerx_agent.redaction import redact
from powerx_agent.strategy.decision import candidates_total, listed
from powerx_agent.taskflow.graph import STATUS_COLOURS, to_svg

if TYPE_CHECKING:
    from powerx_agent.deps import Deps

CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1d2733;background:#f4f6f9}
header{background:#1d2733;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:20px;font-weight:600}
header .sub{color:#b8c4d3;font-size:13px}
header a{color:#8ec5ff}
main{padding:20px 28px;display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:18px}
section{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:14px 18px;min-width:0}
section.wide{grid-column:1 / -1}
h2{font-size:14px;margin:0 0 10px;text-transform:uppercase;letter-spacing:.05em;color:#4a5a6c}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #edf0f4;vertical-align:top}
th{color:#5b6b7d;font-weight:600;background:#f8fafc}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;border:1px solid #0002}
pre{margin:0;background:#f8fafc;border:1px solid #edf0f4;border-radius:6px;padding:10px;font-size:12px;
    overflow:auto;max-height:360px;white-space:pre-wrap;word-break:break-word}
.graph{overflow:auto;text-align:center}
.graph svg{max-width:100%;height:auto}
.legend span{margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:11px;height:11px;border:1px solid #555;border-radius:3px;margin-right:4px;
    vertical-align:-1px}
.kv td:first-child{color:#5b6b7d;width:34%}
.err{color:#a12622}
.muted{color:#8593a3}
"""


def _badge(status: Any) -> str:
    status = str(status or "-")
    colour = STATUS_COLOURS.get(status.upper(), "#eef1f5")
    return f'<span class="badge status-{escape(status.lower())}" style="background:{colour}">{escape(status)}</span>'


def _json(value: Any) -> str:
    return f"<pre>{escape(json.dumps(value, indent=2, sort_keys=True, default=str))}</pre>"


def console_url(settings: Any, execution_arn: str) -> str:
    return (f"{settings.console_region_url.rstrip('/')}/states/home?region={settings.region}"
            f"#/v2/executions/details/{execution_arn}")


def _history(deps: Deps, execution_arn: str, started_after: float | None = None
             ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any] | None]:
    """Definition, events and status; an Express execution's come from the state machines' log group."""
    from powerx_agent.ops.history import load_history

    history = load_history(deps, execution_arn, started_after)
    if history is None:
        return None, [], None
    return history.definition or None, history.events, {"status": history.status, "input": history.input}


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _event_detail(event: dict[str, Any]) -> tuple[str, str]:
    for key, value in event.items():
        if not key.endswith("EventDetails") or not isinstance(value, dict):
            continue
        name = value.get("name") or value.get("resource") or ""
        if value.get("error") or value.get("cause"):
            cause = str(value.get("cause") or "")
            return str(name), f"{value.get('error') or ''} {cause[:160]}".strip()
        return str(name), ""
    return "", ""


def timeline_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    start = _when(events[0].get("timestamp")) if events else None
    rows = []
    for event in events:
        at = _when(event.get("timestamp"))
        name, detail = _event_detail(event)
        offset = round((at - start).total_seconds() * 1000, 1) if at and start else None
        rows.append({"id": event.get("id"), "offset_ms": offset, "type": event.get("type"), "state": name,
                     "detail": detail})
    return rows


def _offset(ms: float | None) -> str:
    return "" if ms is None else f"+{ms:.0f} ms"


def _unlisted(decision: dict[str, Any] | None) -> str:
    """What a bounded decision record does not list, and where every candidate is explained."""
    if not decision or "candidates" in decision:  # none, or a record that lists every candidate
        return ""
    unlisted = candidates_total(decision) - len(listed(decision))
    if unlisted <= 0:
        return ""
    counts = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in sorted((decision.get("others") or {}).items()))
    return (f'<p id="decision-unlisted" class="muted">{candidates_total(decision)} candidate(s) in all; not listed: '
            f"{escape(counts)}. Every candidate with why it missed: <code>powerx-agent strategy test --event FILE"
            f"</code>, or the console's Test a strategy page with library "
            f"{escape(str(decision.get('library_revision') or ''))}.</p>")


def render_view(deps: Deps, workflow_id: str) -> str:
    meta = deps.workflows.get(workflow_id)
    if meta is None:
        raise AgentError(f"workflow {workflow_id!r} not found in agent_workflows", code="workflow.not_found")
    nodes: dict[str, dict[str, Any]] = meta.get("nodes") or {}
    chain = sorted(deps.audit.chain(workflow_chain(workflow_id)), key=lambda r: int(r["seq"]))
    execution_arn = meta.get("execution_arn")
    definition, events, execution = _history(deps, execution_arn, meta.get("created_at")) if execution_arn \
        else (None, [], None)
    status = {node_id: str(item.get("status", "")) for node_id, item in nodes.items()}
    svg = to_svg(definition, status) if definition else '<p class="muted">state machine definition unavailable</p>'

    decision = meta.get("decision") or next(((r.get("data") or {}).get("decision") for r in chain
                                             if r.get("kind") == AuditKind.DECISION), None)
    reason = next(((r.get("data") or {}).get("reason") for r in chain if r.get("kind") == AuditKind.DECISION), "")
    event_record = deps.events.get(meta["tenant_id"], meta["idempotency_key"]) if meta.get("idempotency_key") else None
    accepted = next((r for r in chain if r.get("kind") == AuditKind.EVENT_ACCEPTED), None)
    execution_input = (execution or {}).get("input") or {}
    event_view = redact({
        "event_id": meta.get("event_id"), "event_type": meta.get("event_type"), "tenant_id": meta.get("tenant_id"),
        "idempotency_key": meta.get("idempotency_key"), "traceparent": meta.get("traceparent"),
        "received_at": meta.get("received_at"),
        "accepted": (accepted or {}).get("data"),
        "idempotency_record": {k: (event_record or {}).get(k) for k in ("status", "outcome", "payload_hash",
                                                                        "first_seen", "attempts")},
        "variables": execution_input.get("variables"),
    })

    node_rows = []
    order = list(dict.fromkeys([r["node_id"] for r in chain if r.get("node_id")] + sorted(nodes)))
    for node_id in order:
        item = nodes.get(node_id, {})
        error = item.get("error") or item.get("last_error")
        error_text = (error.get("message") or error.get("code") or json.dumps(error)) if isinstance(error, dict) \
            else (str(error) if error else "")
        duration = item.get("duration")
        node_rows.append(
            f'<tr data-node="{escape(node_id)}"><td>{escape(node_id)}</td><td>{escape(str(item.get("kind") or ""))}'
            f"</td><td>{_badge(item.get('status'))}</td><td class=\"num\">{escape(str(item.get('attempts', '')))}</td>"
            f"<td class=\"num\">{'' if duration is None else f'{float(duration):.0f} ms'}</td>"
            f'<td class="err">{escape(error_text)}</td></tr>')

    timeline = "".join(
        f"<tr><td class=\"num\">{_offset(r['offset_ms'])}</td>"
        f"<td>{escape(str(r['type']))}</td><td>{escape(r['state'])}</td>"
        f"<td class=\"err\">{escape(r['detail'])}</td></tr>"
        for r in timeline_rows(events))
    source = ""
    if is_express_execution(execution_arn):
        settings = deps.settings
        source = (f'<p class="muted" id="timeline-source">Express execution: its history is the log group '
                  f'{escape(settings.state_machine_log_group or "(unknown: give --stack)")} (level '
                  f'{escape(settings.state_machine_log_level)}); records arrive within minutes, best effort.</p>')
    audit_rows = "".join(
        f"<tr><td class=\"num\">{r['seq']}</td><td>{escape(str(r.get('ts', ''))[11:23])}</td>"
        f"<td>{escape(str(r.get('kind')))}</td><td>{escape(str(r.get('node_id') or ''))}</td>"
        f"<td>{_badge(r.get('status')) if r.get('status') else ''}</td></tr>" for r in chain)
    legend = "".join(f'<span><i style="background:{c}"></i>{escape(s.lower())}</span>'
                     for s, c in STATUS_COLOURS.items())
    link = (f'<a id="console-link" href="{escape(console_url(deps.settings, execution_arn))}">'
            "open the execution in the Step Functions console</a>") if execution_arn else "no execution"
    strategy = f"{meta.get('strategy_id')} v{meta.get('strategy_version')}"
    kv = [("workflow", workflow_id), ("tenant", meta.get("tenant_id")), ("strategy", strategy),
          ("state machine", (meta.get("state_machine_arn") or "").rsplit(":", 1)[-1]),
          ("type", f"{meta.get('state_machine_type', '')} ({meta.get('type_reason', '')})"),
          ("execution", (execution or {}).get("status") or "-"), ("execution ARN", execution_arn or "-"),
          ("duration", f"{float(meta['duration']):.0f} ms" if meta.get("duration") is not None else "-"),
          ("escalation", meta.get("escalation_reason") or "-")]
    summary = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in kv)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Workflow {escape(workflow_id)}</title><style>{CSS}</style></head>
<body>
<header><h1>Workflow {escape(workflow_id)} {_badge(meta.get('status'))}</h1>
<div class="sub">{escape(str(meta.get('event_type')))} · tenant {escape(str(meta.get('tenant_id')))} ·
strategy {escape(strategy)} · {link}</div></header>
<main>
<section class="wide" id="graph"><h2>Taskflow</h2><div class="legend">{legend}</div><div class="graph">{svg}</div>
</section>
<section id="nodes"><h2>Nodes</h2><table><tr><th>node</th><th>kind</th><th>status</th><th>attempts</th>
<th>duration</th><th>error</th></tr>{''.join(node_rows)}</table></section>
<section id="summary"><h2>Workflow</h2><table class="kv">{summary}</table></section>
<section id="decision"><h2>Decision</h2><p>{escape(str(reason or ''))}</p>{_unlisted(decision)}{_json(redact(decision))}</section>
<section id="event"><h2>Event (redacted)</h2>{_json(event_view)}</section>
<section class="wide" id="timeline"><h2>Execution timeline</h2>{source}<table><tr><th>at</th><th>event</th><th>state</th>
<th>error</th></tr>{timeline}</table></section>
<section class="wide" id="audit"><h2>Audit chain {escape(workflow_chain(workflow_id))}</h2><table><tr><th>seq</th>
<th>time</th><th>kind</th><th>node</th><th>status</th></tr>{audit_rows}</table></section>
</main></body></html>
"""
