"""``powerx-agent flags show|set``: feature flags, every change audited (``flag.changed`` in OPS#flags)."""

from __future__ import annotations

import typer
from rich.console import Console

from powerx_agent import spec
from powerx_agent.cli._common import ByAliasOpt, ByOpt, FormatOpt, Output, QueryOpt, actor, run_logic

app = typer.Typer(help="Feature flags: " + ", ".join(spec.FEATURE_FLAGS) + ".", no_args_is_help=True)


@app.command("show")
def show_cmd(fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Each flag as the functions read it, and where it is stored (AWS: the latest AppConfig deployment)."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.flags import show, status, writer

    output = Output(fmt, query)
    deps = connect()
    store = writer(deps)
    rows, where = show(deps, store), status(deps, store)

    def text(console: Console) -> None:
        for row in rows:
            rules = f"  (rules: {', '.join(row['rules'])})" if row["rules"] else ""
            console.print(f"{row['name']:<24} {'on' if row['on'] else 'off'}{rules}")
        if "deployment" in where:
            console.print(f"store appconfig: deployment {where['deployment']} of version {where['version']} is "
                          f"{where['state']} ({where['percent'] or 0:.0f}%)")
        else:
            console.print(f"store {where['store']}")

    output.emit(rows, text)


def _flag_names(incomplete: str) -> list[str]:
    return [name for name in spec.FEATURE_FLAGS if name.startswith(incomplete)]


@app.command("set")
def set_cmd(name: str = typer.Argument(..., help="flag name", autocompletion=_flag_names),
            value: str = typer.Argument(..., help="on | off", autocompletion=lambda: ["on", "off"]),
            by: str = ByOpt, by_alias: str = ByAliasOpt, fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Switch a flag on or off (embedded runtime: DynamoDB item; AWS: AppConfig version + deployment)."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.flags import set_flag

    output = Output(fmt, query)
    if name not in spec.FEATURE_FLAGS:
        raise typer.BadParameter(f"unknown flag {name!r}; known: {', '.join(spec.FEATURE_FLAGS)}", param_hint="NAME")
    if value not in ("on", "off"):
        raise typer.BadParameter(f"value must be on or off, not {value!r}", param_hint="VALUE")
    who = actor(by, by_alias)
    d = run_logic(lambda: set_flag(connect(), name, value == "on", who)).to_dict()
    output.emit(d, lambda console: console.print(
        f"{name}: {d['from']} → {d['to']} (by {d['by']}, store {d['store']}, audited as {d['audit']})"))
