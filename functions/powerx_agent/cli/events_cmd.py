"""``powerx-agent events show | list``: find any event by its event id, idempotency key or EventBridge
EventId; list a window's events by tenant, status and type. ``events list --format jsonl`` writes the
events the engine kept (deferred ones) one per line, as ``replay --file`` reads them."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from powerx_agent import spec
from powerx_agent.cli._common import (
    FormatOpt,
    Output,
    QueryOpt,
    check_statuses,
    check_window,
    err,
    format_option,
    run_logic,
    session,
    status_text,
    styled,
    table,
)
from powerx_agent.status import EventStatus

app = typer.Typer(help="Find events: by id, idempotency key or EventBridge EventId; list by status.",
                  no_args_is_help=True)

SinceOpt = typer.Option("1h", "--since", help="window start: an ISO time (2026-11-28T10:00:00Z) or 15m/2h/3d",
                        callback=check_window)


def _row(view: dict[str, Any]) -> dict[str, Any]:
    return {**view, "reason": (view.get("rejection") or {}).get("code") or view.get("outcome")}


@app.command("show")
def show_cmd(wanted: str = typer.Argument(..., metavar="ID",
                                          help="event id, idempotency key, EventBridge EventId or workflow id"),
             tenant: str = typer.Option(None, "--tenant", help="the event's tenant (looks a key up at any age)"),
             since: str = typer.Option("7d", "--since", help="how far back to search (ISO time or 15m/2h/30d)",
                                       callback=check_window),
             fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """One event: status, rejection reason, decision, workflow, deliveries, and its audit records."""
    from powerx_agent.ops.events import show_event

    output = Output(fmt, query)
    with session() as (deps, _metrics):
        view = run_logic(lambda: show_event(deps, wanted, tenant, since))
    shown = view.to_dict(full=True)

    def text(console: Console) -> None:
        facts = Table.grid(padding=(0, 2))
        facts.add_column(style="bold")
        facts.add_column()
        facts.add_row("event", styled(f"{view.event_id or '—'}  type={view.event_type or '—'}  "
                                      f"tenant={view.tenant_id or '—'}"))
        facts.add_row("key", styled(view.idempotency_key or "—"))
        facts.add_row("EventBridge id", styled(", ".join(view.bus_event_ids) or "—"))
        status = styled("")
        status.append_text(status_text(view.status))
        if view.rejection:
            status.append(f"  {view.rejection.get('code')}: {view.rejection.get('message')}"
                          + (f" (at {view.rejection['where']})" if view.rejection.get("where") else ""))
        elif view.outcome:
            status.append(f"  outcome {view.outcome}")
        facts.add_row("status", status)
        if view.decision:
            facts.add_row("decision", styled(f"{view.decision.get('status')}: {view.decision.get('reason') or ''}"))
        if view.workflow_id:
            wf = styled(view.workflow_id + "  ")
            wf.append_text(status_text(view.workflow_status))
            facts.add_row("workflow", wf)
        facts.add_row("received", styled(view.received_at or "—"))
        facts.add_row("deliveries", styled(f"{view.deliveries} ({view.duplicates} duplicate)"
                                           + (f"  replay of {view.replay_of}" if view.replay_of else "")))
        facts.add_row("chain", styled(view.chain))
        console.print(facts)
        console.print(table("seq", "time", "kind", "status", ids=("kind",), rows=[
            (r["seq"], r["ts"], r["kind"], status_text(r.get("status")) if r.get("status") else "")
            for r in view.records]))

    output.emit(shown, text)


@app.command("list")
def list_cmd(tenant: str = typer.Option(None, "--tenant", help="only this tenant"),
             status: list[str] = typer.Option(None, "--status", help="IN_PROGRESS | COMPLETED | DEFERRED | REJECTED "
                                                                     "(repeat or comma-separate)",
                                              callback=check_statuses(tuple(EventStatus))),
             event_type: str = typer.Option(None, "--type", help="only this event type"),
             since: str = SinceOpt,
             until: str = typer.Option(None, "--until", help="window end (ISO time or 15m/2h/3d ago)",
                                       callback=check_window),
             limit: int = typer.Option(100, "--limit", min=1, max=10_000),
             fmt: str = format_option("jsonl"), query: str = QueryOpt) -> None:
    """Events of a window, newest first. `--format jsonl` writes each kept event as `replay --file` reads
    it (deferred events); the others are counted on stderr with where their events are."""
    from powerx_agent.ops.events import list_events

    output = Output(fmt, query, ("text", "json", "jsonl"))
    statuses = [s.strip() for value in status or [] for s in value.split(",") if s.strip()]
    with session() as (deps, _metrics):
        views = run_logic(lambda: list_events(deps, tenant, statuses, event_type, since, until, limit))
    rows = [_row(v.to_dict()) for v in views]
    if fmt == "jsonl" and not query:
        kept = [v.replayable for v in views if v.replayable]
        for event in kept:
            sys.stdout.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
        sys.stdout.flush()
        _not_kept(views)
        return

    def text(console: Console) -> None:
        console.print(table("received", "tenant", "status", "type", "event id", "key", "workflow", "reason",
                            ids=("event id", "key", "workflow"), rows=[
                                (r["received_at"], r["tenant_id"], status_text(r["status"]), r["event_type"],
                                 r["event_id"], r["idempotency_key"], r["workflow_id"], r["reason"]) for r in rows]))
        console.print(f"{len(rows)} event(s)")

    output.emit(rows, text)


def _not_kept(views: list[Any]) -> None:
    rejected = [v for v in views if v.status == "REJECTED"]
    accepted = [v for v in views if not v.replayable and v.status != "REJECTED"]
    if rejected:
        err().print(f"note: {len(rejected)} rejected event(s) not written: the events are in the ingest DLQ "
                    "(each message body is a line replay --file reads)")
    if accepted:
        times = sorted(v.received_at for v in accepted if v.received_at)
        err().print(f"note: {len(accepted)} accepted event(s) not written: replay them from the bus archive, "
                    f"powerx-agent replay --archive {spec.ARCHIVE_NAME} --start {times[0] if times else 'START'} "
                    f"--end {times[-1] if times else 'END'}")
