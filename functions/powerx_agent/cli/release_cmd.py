"""``powerx-agent release list | rollback``: the releases of the deployed functions; the logic is in
:mod:`powerx_agent.ops.release` (docs/runbook.md, "Revert the service")."""

from __future__ import annotations

import getpass
import json
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(help="Releases of the deployed functions: list them, move the live aliases back.",
                  no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)


def _check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"--format must be text or json, not {fmt!r}", param_hint="--format")


def _run(fn: Any) -> Any:
    from powerx_agent.errors import AgentError

    try:
        return fn()
    except AgentError as exc:
        console.print(f"[red]{escape(exc.code)}[/red]: {escape(exc.message)}")
        raise typer.Exit(1) from None


@app.command("list")
def list_cmd(fmt: str = typer.Option("text", "--format", help="text | json")) -> None:
    """Every release (newest first), the live one marked; each function's live alias."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.release import list_releases

    _check_format(fmt)
    listed = _run(lambda: list_releases(connect()))
    if fmt == "json":
        typer.echo(json.dumps(listed, indent=2))
        return
    table = Table(show_edge=False)
    for column in ("release", "published", "functions", "live"):
        table.add_column(column)
    for release in listed["releases"]:
        table.add_row(release["release"], release["published"], str(release["functions"]),
                      "[green]live[/green]" if release["live"] else "")
    console.print(table)
    if listed["mixed"]:
        console.print("[yellow]the live aliases point at different releases:[/yellow] " + ", ".join(
            f"{k}={a['release'] or 'v' + str(a['version'])}" for k, a in listed["aliases"].items()))


@app.command("rollback")
def rollback_cmd(to: str = typer.Option(None, "--to", help="the release to point at (default: the one before "
                                                          "the live release)"),
                 by: str = typer.Option(None, "--by", help="who rolls back (audited; default: $USER)"),
                 reason: str = typer.Option(..., "--reason", help="why (audited)"),
                 dry_run: bool = typer.Option(False, "--dry-run", help="check and show the moves, change nothing"),
                 fmt: str = typer.Option("text", "--format", help="text | json")) -> None:
    """Point every function's live alias at the previous release (or --to), all or nothing, audited."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.release import rollback

    _check_format(fmt)
    result = _run(lambda: rollback(connect(), by or getpass.getuser(), reason, to=to, dry_run=dry_run))
    if fmt == "json":
        typer.echo(json.dumps(result, indent=2))
        return
    verb = "would move" if dry_run else "moved"
    console.print(f"{verb} the live aliases from release {result['from']} to {result['to']}"
                  + ("" if dry_run else f" (audited as {result['audit']})"))
    for key, move in result["functions"].items():
        console.print(f"  {key:<14} v{move['from']} → v{move['to']}" if move["from"] != move["to"]
                      else f"  {key:<14} v{move['to']} (already there)")
