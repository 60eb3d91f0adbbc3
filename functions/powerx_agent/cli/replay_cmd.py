"""``powerx-agent replay``: put events back in front of the engine (docs/intake.md).

    powerx-agent replay --file events.jsonl [--tenant T] [--event-type E] [--via events|api]
                        [--dry-run] [--new-key [--generation N]] [--skip-invalid] [--format text|json]
    powerx-agent replay --archive NAME --start 2026-11-28T00:00:00Z --end 2026-11-28T12:00:00Z

The logic lives in :mod:`powerx_agent.ops.replay`; this module parses options, connects,
draws the progress bar and prints the summary. Exit codes: 0 everything sent or already done,
1 invalid lines or failed events, 2 usage error.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from powerx_agent import spec
from powerx_agent.cli._common import (
    ByAliasOpt,
    ByOpt,
    FormatOpt,
    Output,
    QueryOpt,
    actor,
    err,
    fail,
    styled,
    table,
)
from powerx_agent.settings import Env

app = typer.Typer(help="Replay events from a JSONL file, through the signed API, or from the bus archive.",
                  invoke_without_command=True, subcommand_metavar="")


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an RFC 3339 time", param_hint=option) from None
    if parsed.tzinfo is None:
        raise typer.BadParameter(f"{value!r} needs a UTC offset (e.g. Z)", param_hint=option)
    return parsed


def _caller(who: str) -> str:
    return f"powerx-agent replay ({who}@{socket.gethostname()})"


def _poster() -> Any:
    from powerx_agent.adapters.downstream import session

    def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, Any]:
        try:
            response = session().post(url, data=body, headers=headers, timeout=(3, 30))
        except Exception as exc:  # noqa: BLE001 - reported per event, the run goes on
            return None, {"code": "http.no_answer", "message": f"{type(exc).__name__}: {str(exc)[:200]}"}
        try:
            return response.status_code, response.json() if response.content else {}
        except ValueError:
            return response.status_code, {"message": response.text[:300]}

    return post


@app.callback()
def replay(
    ctx: typer.Context,
    file: Path = typer.Option(None, "--file", help="JSONL: one EventBridge event (or PutEvents entry, or "
                                                  "ingest DLQ record) per line"),
    archive: str = typer.Option(None, "--archive", help="EventBridge archive to replay onto the bus"),
    start: str = typer.Option(None, "--start", help="archive replay window start (RFC 3339)"),
    end: str = typer.Option(None, "--end", help="archive replay window end (RFC 3339)"),
    tenant: list[str] = typer.Option(None, "--tenant", help="only these tenants (repeatable)"),
    event_type: list[str] = typer.Option(None, "--event-type", help="only these event types (repeatable)"),
    via: str = typer.Option("events", "--via", help="events (PutEvents) | api (signed POST per event)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would be sent; send nothing"),
    new_key: bool = typer.Option(False, "--new-key", help="fresh idempotency key per event, so it runs again; "
                                                         "records replay_of"),
    generation: int = typer.Option(1, "--generation", min=1, help="with --new-key: <key>#replay-<generation>"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="send the valid lines even if some are bad"),
    api_url: str = typer.Option(None, "--api-url", envvar=Env.POWERX_API_URL, help="internal API base URL (--via api)"),
    api_caller: str = typer.Option("operator", "--caller", envvar=Env.POWERX_REPLAY_CALLER,
                                   help="--via api: the replay caller whose key signs (each caller has its own "
                                        "keys and tenants in the replay secret)"),
    rule: str = typer.Option(spec.INGEST_RULE_NAME, "--rule", help="rule the archive replay is delivered to"),
    max_attempts: int = typer.Option(5, "--max-attempts", min=1, max=20, help="PutEvents attempts per entry"),
    by: str = ByOpt, by_alias: str = ByAliasOpt,
    fmt: str = FormatOpt, query: str = QueryOpt,
) -> None:
    """Replay events. Validates every line first; sends nothing if any line is bad (unless --skip-invalid)."""
    if ctx.invoked_subcommand is not None:
        return
    from powerx_agent.ops import replay as rt

    output = Output(fmt, query)
    who = actor(by, by_alias)
    if via not in ("events", "api"):
        raise typer.BadParameter(f"--via must be events or api, not {via!r}", param_hint="--via")
    if (file is None) == (archive is None):
        raise typer.BadParameter("give exactly one of --file or --archive", param_hint="--file/--archive")
    if archive is not None:
        _archive(archive, _time(start, "--start"), _time(end, "--end"), rule, tenant, event_type, via, new_key,
                 dry_run, output)
        return
    if start or end:
        raise typer.BadParameter("--start/--end go with --archive", param_hint="--start/--end")

    from powerx_agent.cli.connect import connect

    try:
        items, problems = rt.read_file(file)
    except rt.ReplayUsageError as exc:
        raise typer.BadParameter(str(exc), param_hint="--file") from None
    caller = _caller(who)
    chosen, report = rt.prepare(items, problems=problems, skip_invalid=skip_invalid, tenants=tenant or (),
                                event_types=event_type or (), new_key=new_key, generation=generation,
                                caller=caller if via == "events" else None)
    if problems and not skip_invalid:
        _print(report, output, note="nothing was sent: fix these lines or pass --skip-invalid")
        raise typer.Exit(1)
    url = api_url or os.environ.get(Env.POWERX_API_URL)
    if via == "api" and not url:
        raise typer.BadParameter("--via api needs --api-url or POWERX_API_URL", param_hint="--api-url")
    if dry_run:  # offline: what would be sent after validation and filters; duplicates are answered when sent
        if via == "api":
            rt.replay_via_api(_poster(), str(url), "", chosen, report, caller=api_caller, actor=caller, dry_run=True)
        else:
            rt.replay_to_bus(None, chosen, report, lookup=None, dry_run=True)
        _print(report, output)
        raise typer.Exit(0 if report.ok else 1)
    deps = connect()
    with _progress(len(chosen), output.text) as advance:
        if via == "api":
            found = deps.secrets.replay_callers(deps.settings.replay_secret).get(api_caller)
            if found is None:
                raise typer.BadParameter(f"the replay secret has no caller {api_caller!r} with an active key "
                                         "(powerx-agent keys list)", param_hint="--caller")
            rt.replay_via_api(_poster(), str(url), found.keys[0], chosen, report, caller=api_caller, actor=caller,
                              on_progress=advance)
        else:
            rt.replay_to_bus(deps.bus, chosen, report,
                             lookup=deps.events.get, backoff=rt.Backoff(max_attempts=max_attempts),
                             on_progress=advance)
    _print(report, output)
    raise typer.Exit(0 if report.ok else 1)


class _progress:
    def __init__(self, total: int, show: bool) -> None:
        self.total, self.show = total, show
        self.bar: Progress | None = None

    def __enter__(self) -> Any:
        if not self.show or not self.total:
            return lambda n: None
        self.bar = Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=err(), transient=True)
        self.bar.start()
        task = self.bar.add_task("replay", total=self.total)
        bar = self.bar
        return lambda n: bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.stop()


def _archive(archive: str, start: datetime | None, end: datetime | None, rule: str, tenant: list[str] | None,
             event_type: list[str] | None, via: str, new_key: bool, dry_run: bool, output: Output) -> None:
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops import replay as rt

    if start is None or end is None:
        raise typer.BadParameter("--archive needs --start and --end", param_hint="--start/--end")
    if tenant or event_type or via != "events" or new_key:
        raise typer.BadParameter(
            "an EventBridge archive replay re-delivers the archived events as they are, filtered by time window "
            "and rule only; to filter by tenant or event type, rewrite keys or go through the API, export the "
            "events to JSONL and use --file", param_hint="--archive")
    if dry_run:  # offline: the replay that would be started
        out = {"dry_run": True, "archive": archive, "bus": os.environ.get(Env.EVENT_BUS_NAME) or "the target's bus",
               "rule": rule, "start": start.isoformat(), "end": end.isoformat()}
    else:
        deps = connect()
        try:
            out = rt.replay_archive(deps.bus, archive=archive, rule=rule,
                                    start=start, end=end)
        except rt.ReplayUsageError as exc:
            raise typer.BadParameter(str(exc), param_hint="--start/--end") from None
        except Exception as exc:  # noqa: BLE001 - an AWS refusal (unknown archive, bad window) is the user's answer
            raise fail(f"replay not started: {exc}") from None

    def text(console: Console) -> None:
        for k, v in out.items():
            console.print(f"{k:12} {v}")

    output.emit(out, text)
    if not dry_run and out.get("state") != "COMPLETED":
        raise typer.Exit(1)


def _print(report: Any, output: Output, note: str | None = None) -> None:
    data = report.to_dict()
    if note:
        data["note"] = note

    def text(console: Console) -> None:
        if report.invalid:
            problems = err()
            problems.print(styled(f"{len(report.invalid)} invalid line(s):", "red"))
            for p in report.invalid:
                where = f" at {p.where}" if p.where else ""
                problems.print(f"  line {p.line}: {p.code}{where}: {p.message}")
        if note:
            err().print(note)
            return
        if report.outcomes:
            rows = []
            for o in report.outcomes:
                colour = {"failed": "red", "duplicate": "yellow"}.get(o.status, "green")
                rows.append((o.line, o.tenant_id, o.event_type, o.idempotency_key,
                             styled(o.status + (f" {o.http_status}" if o.http_status else ""), colour),
                             o.workflow_id or f"{o.code or ''} {o.message or ''}".strip()))
            console.print(table("line", "tenant", "event type", "idempotency key", "result", "workflow / reason",
                                ids=("idempotency key",), rows=rows))
        s = report.summary()
        prefix = "dry run: would send" if report.dry_run else "sent"
        console.print(f"{prefix} {s['would_send'] if report.dry_run else s['sent']}, duplicates {s['duplicates']}, "
                      f"failed {s['failed']}, invalid {s['invalid']}, filtered out {s['filtered_out']}"
                      + (f", would skip {s['would_skip']}" if report.dry_run else ""))
        for f in s["failures"]:
            console.print(f"  failed line {f['line']} ({f['event_id']}): {f['code']}: {f['message']}")

    output.emit(data, text)
