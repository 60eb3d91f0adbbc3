"""``powerx-agent release list | rollback``: the releases of the deployed functions; the logic is in
:mod:`powerx_agent.ops.release` (docs/runbook.md, "Revert the service")."""

from __future__ import annotations

import typer
from rich.console import Console

from powerx_agent.cli._common import (
    ByAliasOpt,
    ByOpt,
    FormatOpt,
    Output,
    QueryOpt,
    actor,
    run_logic,
    styled,
    table,
)

app = typer.Typer(help="Releases of the deployed functions: list them, move the live aliases back.",
                  no_args_is_help=True)


@app.command("list")
def list_cmd(fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Every release (newest first), the live one marked; each function's live alias."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.release import list_releases

    output = Output(fmt, query)
    listed = run_logic(lambda: list_releases(connect()))

    def text(console: Console) -> None:
        console.print(table("release", "published", "functions", "live", ids=("release",), rows=[
            (r["release"], r["published"], r["functions"], styled("live", "green") if r["live"] else "")
            for r in listed["releases"]]))
        if listed["mixed"]:
            console.print(styled("the live aliases point at different releases: ", "yellow") + styled(", ".join(
                f"{k}={a['release'] or 'v' + str(a['version'])}" for k, a in listed["aliases"].items())))

    output.emit(listed, text)


@app.command("rollback")
def rollback_cmd(to: str = typer.Option(None, "--to", help="the release to point at (default: the one before "
                                                          "the live release)"),
                 by: str = ByOpt, by_alias: str = ByAliasOpt,
                 reason: str = typer.Option(..., "--reason", help="why (audited)"),
                 dry_run: bool = typer.Option(False, "--dry-run", help="check and show the moves, change nothing"),
                 fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Point every function's live alias at the previous release (or --to), all or nothing, audited."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.release import rollback

    output = Output(fmt, query)
    who = actor(by, by_alias)
    result = run_logic(lambda: rollback(connect(), who, reason, to=to, dry_run=dry_run))

    def text(console: Console) -> None:
        verb = "would move" if dry_run else "moved"
        console.print(f"{verb} the live aliases from release {result['from']} to {result['to']}"
                      + ("" if dry_run else f" (audited as {result['audit']})"))
        for key, move in result["functions"].items():
            console.print(f"  {key:<14} v{move['from']} → v{move['to']}" if move["from"] != move["to"]
                          else f"  {key:<14} v{move['to']} (already there)")

    output.emit(result, text)
