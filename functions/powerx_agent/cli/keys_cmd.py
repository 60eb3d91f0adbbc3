"""``powerx-agent keys``: replay callers (own keys, own tenants) and the callback key; rotation.

A new key is written to ``--out FILE`` (created with mode 0600), never printed: hand the file to the
caller and delete it. Every change is audited in ``OPS#keys`` without the key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console

from powerx_agent.cli._common import ByAliasOpt, FormatOpt, Output, QueryOpt, actor, run_logic

app = typer.Typer(help="Replay callers and their keys, the callback key, zero-downtime rotation.",
                  no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)

OutOpt = typer.Option(..., "--out", help="file the new key is written to (mode 0600); never printed")
ByOpt = typer.Option(None, "--by", help="who makes the change (audited; default: $POWERX_ACTOR, else your login)")


def _say(output: Output, data: dict, line: str) -> None:
    """``line`` as text, or ``data`` as JSON / the --query selection."""
    output.emit(data, lambda out: out.print(line))


def _run(fn):  # noqa: ANN001, ANN202 - small adapter for the commands below
    from powerx_agent.cli.connect import connect

    return run_logic(lambda: fn(connect()))


def _write_key(out: Path, caller: str, key: str) -> None:
    if out.exists():
        raise typer.BadParameter(f"{out} exists; give a new file", param_hint="--out")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"caller": caller, "key": key, "header": "X-PowerX-Caller"}, handle)
        handle.write("\n")


@app.command("list")
def list_cmd(fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Replay callers with their tenants and key slots, and the callback key's slots (no key values)."""
    from powerx_agent.ops.keys import list_keys

    output = Output(fmt, query)
    listing = _run(list_keys)
    if not output.text:
        output.emit(listing)
        return
    for row in listing["replay_callers"]:
        console.print(f"replay caller {row['caller']:<24} tenants {','.join(row['tenants'])}  "
                      f"active {row['active']}  slots {','.join(row['slots'])}")
    cb = listing["callback"]
    console.print(f"callback key  active {cb['active']}  slots {','.join(cb['slots'])}")


@app.command("add-caller")
def add_caller_cmd(caller: str = typer.Argument(..., help="caller name, sent as X-PowerX-Caller"),
                   tenant: list[str] = typer.Option(..., "--tenant", help="tenant it may replay (repeatable; * = all)"),
                   out: Path = OutOpt, by: str = ByOpt, by_alias: str = ByAliasOpt,
        fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """A new replay caller with its own key, scoped to the given tenants."""
    from powerx_agent.ops.keys import add_caller

    if out.exists():
        raise typer.BadParameter(f"{out} exists; give a new file", param_hint="--out")
    output = Output(fmt, query)
    key = _run(lambda deps: add_caller(deps, caller, tenant, actor(by, by_alias)))
    _write_key(out, caller, key)
    _say(output, {"caller": caller, "tenants": sorted(set(tenant)), "key_file": str(out)},
         f"replay caller {caller} added for {', '.join(sorted(set(tenant)))}; key written to {out}")


@app.command("scope-caller")
def scope_caller_cmd(caller: str = typer.Argument(...),
                     tenant: list[str] = typer.Option(..., "--tenant", help="the tenants, replacing the old list"),
                     by: str = ByOpt, by_alias: str = ByAliasOpt,
        fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Change the tenants a replay caller may act for."""
    from powerx_agent.ops.keys import set_tenants

    output = Output(fmt, query)
    _run(lambda deps: set_tenants(deps, caller, tenant, actor(by, by_alias)))
    _say(output, {"caller": caller, "tenants": sorted(set(tenant))},
         f"replay caller {caller} now acts for {', '.join(sorted(set(tenant)))}")


@app.command("remove-caller")
def remove_caller_cmd(caller: str = typer.Argument(...), by: str = ByOpt, by_alias: str = ByAliasOpt,
        fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Remove a replay caller: its keys stop working within 5 minutes (the functions' secret cache)."""
    from powerx_agent.ops.keys import remove_caller

    output = Output(fmt, query)
    _run(lambda deps: remove_caller(deps, caller, actor(by, by_alias)))
    _say(output, {"caller": caller, "removed": True}, f"replay caller {caller} removed")


@app.command("rotate")
def rotate_cmd(purpose: str = typer.Argument(..., help="replay | callback"),
               caller: str = typer.Option(None, "--caller", help="replay: the caller whose key rotates"),
               out: Path = typer.Option(None, "--out", help="replay: file for the new key (mode 0600)"),
               by: str = ByOpt, by_alias: str = ByAliasOpt,
        fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """A fresh active key; the previous one keeps verifying (zero downtime, docs/runbook.md)."""
    from powerx_agent.ops.keys import rotate_callback, rotate_caller

    output = Output(fmt, query)
    who = actor(by, by_alias)
    if purpose == "callback":
        if caller or out:
            raise typer.BadParameter("the callback key belongs to the engine: no --caller, no --out",
                                     param_hint="--caller/--out")
        slot = _run(lambda deps: rotate_callback(deps, who))
        _say(output, {"purpose": "callback", "active": slot},
             f"callback key rotated: {slot} is active; the previous key verifies until the next rotation")
        return
    if purpose != "replay":
        raise typer.BadParameter(f"purpose must be replay or callback, not {purpose!r}", param_hint="PURPOSE")
    if not caller or out is None:
        raise typer.BadParameter("replay rotation needs --caller and --out", param_hint="--caller/--out")
    if out.exists():
        raise typer.BadParameter(f"{out} exists; give a new file", param_hint="--out")
    key = _run(lambda deps: rotate_caller(deps, caller, who))
    _write_key(out, caller, key)
    _say(output, {"purpose": "replay", "caller": caller, "key_file": str(out)},
         f"replay caller {caller}: new active key written to {out}; the previous key verifies until "
         f"`powerx-agent keys retire {caller}`")


@app.command("retire")
def retire_cmd(caller: str = typer.Argument(...), by: str = ByOpt, by_alias: str = ByAliasOpt,
        fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Remove a replay caller's previous key, once the caller signs with the new one."""
    from powerx_agent.ops.keys import retire_previous

    output = Output(fmt, query)
    slots = _run(lambda deps: retire_previous(deps, caller, actor(by, by_alias)))
    _say(output, {"caller": caller, "retired": slots}, f"replay caller {caller}: previous key ({slots}) removed")
