"""``powerx-agent flags show|set``: feature flags, every change audited (``flag.changed`` in OPS#flags)."""

from __future__ import annotations

import getpass
import json

import typer
from rich.console import Console

from powerx_agent import spec

app = typer.Typer(help="Feature flags: " + ", ".join(spec.FEATURE_FLAGS) + ".", no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)


@app.command("show")
def show_cmd(fmt: str = typer.Option("text", "--format", help="text | json")) -> None:
    """Each flag as the functions read it, and where it is stored (AWS: the latest AppConfig deployment)."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.flags import show, status, writer

    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"--format must be text or json, not {fmt!r}", param_hint="--format")
    deps = connect()
    store = writer(deps)
    rows, where = show(deps, store), status(deps, store)
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        rules = f"  (rules: {', '.join(row['rules'])})" if row["rules"] else ""
        console.print(f"{row['name']:<24} {'on' if row['on'] else 'off'}{rules}")
    if "deployment" in where:
        console.print(f"store appconfig: deployment {where['deployment']} of version {where['version']} is "
                      f"{where['state']} ({where['percent'] or 0:.0f}%)")
    else:
        console.print(f"store {where['store']}")


@app.command("set")
def set_cmd(name: str = typer.Argument(..., help="flag name"),
            value: str = typer.Argument(..., help="on | off"),
            by: str = typer.Option(None, "--by", help="who changes it (audited; default: $USER)")) -> None:
    """Switch a flag on or off (embedded runtime: DynamoDB item; AWS: AppConfig version + deployment)."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.flags import set_flag

    if name not in spec.FEATURE_FLAGS:
        raise typer.BadParameter(f"unknown flag {name!r}; known: {', '.join(spec.FEATURE_FLAGS)}", param_hint="NAME")
    if value not in ("on", "off"):
        raise typer.BadParameter(f"value must be on or off, not {value!r}", param_hint="VALUE")
    change = set_flag(connect(), name, value == "on", by or getpass.getuser())
    d = change.to_dict()
    console.print(f"{name}: {d['from']} → {d['to']} (by {d['by']}, store {d['store']}, audited as {d['audit']})")
