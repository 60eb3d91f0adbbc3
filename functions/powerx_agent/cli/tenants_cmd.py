"""``powerx-agent tenants apply FILE [--dry-run] | list | show ID | disable ID``: the tenant registry.

Works against a deployed stack (``--stack NAME``) and the embedded runtime (``--endpoint-url URL``).
Every change is audited in ``OPS#tenants``; see :mod:`powerx_agent.ops.tenants` for how an apply
stays whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from powerx_agent.cli._common import ByAliasOpt, ByOpt, FormatOpt, Output, QueryOpt, actor, jsonable

app = typer.Typer(help="Tenant registry: apply a file (diff first), list, show, disable.", no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)



def _value(value: Any) -> str:
    return "—" if value is None else json.dumps(value) if isinstance(value, list | dict) else str(value)


@app.command("apply")
def apply_cmd(file: Path = typer.Argument(..., help="a registry file like config/tenants.yaml"),
              dry_run: bool = typer.Option(False, "--dry-run", help="show the diff, write nothing"),
              by: str = ByOpt, by_alias: str = ByAliasOpt, fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Create or change the tenants of FILE. Validates the whole file and shows the diff first;
    tenants the registry holds but FILE does not name are kept (disable them with `tenants disable`)."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.tenants import apply, plan

    output = Output(fmt, query)
    who = actor(by, by_alias)
    deps = connect()
    the_plan = plan(deps, file)
    counts = the_plan.counts()
    if output.text:
        for change in the_plan.changes:
            if change.action == "create":
                after = change.after
                console.print(f"[green]+ {change.tenant_id}[/green]  {after['status']}, {escape(after['name'])}, "
                              f"owner {escape(after['owner'])}")
            elif change.action == "update":
                console.print(f"[yellow]~ {change.tenant_id}[/yellow]")
                for name, (old, new) in change.fields.items():
                    console.print(f"    {name}: {escape(_value(old))} → {escape(_value(new))}")
            else:
                console.print(f"[dim]= {change.tenant_id}[/dim]")
        kept = f"; {len(the_plan.not_in_file)} registered but not in the file, kept: " \
               f"{', '.join(the_plan.not_in_file)}" if the_plan.not_in_file else ""
        console.print(f"{file}: {counts['create']} to create, {counts['update']} to change, "
                      f"{counts['unchanged']} unchanged{kept}")
    result: dict[str, Any] = {"file": str(file), **counts, "not_in_file": the_plan.not_in_file,
                              "changes": [{"tenant_id": c.tenant_id, "action": c.action,
                                           "fields": {k: list(v) for k, v in c.fields.items()}}
                                          for c in the_plan.changes], "dry_run": dry_run}
    if dry_run or not the_plan.writes:
        if not output.text:
            output.emit({**result, "written": []})
        else:
            console.print("dry run: nothing written" if dry_run else "nothing to change")
        return
    applied = apply(deps, the_plan, who)
    if not output.text:
        output.emit({**result, "written": applied.written, "audit": applied.audit})
        return
    audited = applied.audit[0] if len(applied.audit) == 1 else \
        f"{applied.audit[0]}..{applied.audit[-1].rsplit('#', 1)[1]}"
    console.print(f"applied: {len(applied.written)} tenant(s) written in {applied.transactions} transaction(s), "
                  f"audited as {audited}; functions see the change within 30 s")


@app.command("list")
def list_cmd(fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Every registered tenant."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.tenants import list_tenants

    output = Output(fmt, query)
    tenants = list_tenants(connect())
    if not output.text:
        output.emit(jsonable(tenants))
        return
    table = Table(show_edge=False)
    for column in ("tenant", "status", "name", "owner", "event types", "plugins", "rev", "updated by"):
        table.add_column(column, overflow="fold")
    for t in tenants:
        table.add_row(t["tenant_id"], str(t.get("status")), escape(str(t.get("name"))), escape(str(t.get("owner"))),
                      str(len(t.get("allowed_event_types") or [])), str(len(t.get("allowed_plugins") or [])),
                      str(t.get("revision", "—")), escape(str(t.get("updated_by", "—"))))
    console.print(table)
    console.print(f"{len(tenants)} tenant(s)")


@app.command("show")
def show_cmd(tenant_id: str = typer.Argument(..., help="tenant id"), fmt: str = FormatOpt,
             query: str = QueryOpt) -> None:
    """One tenant and its last changes (from the audit trail)."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.tenants import show

    output = Output(fmt, query)
    tenant = show(connect(), tenant_id)
    if not output.text:
        output.emit(jsonable(tenant))
        return
    history = tenant.pop("history")
    for key in sorted(tenant):
        console.print(f"{key:<22} {escape(_value(tenant[key]))}")
    for entry in history:
        console.print(f"  {entry['ts']}  {entry['kind']:<16} by {escape(str(entry['by']))}  ({entry['audit']})")


@app.command("disable")
def disable_cmd(tenant_id: str = typer.Argument(..., help="tenant id"), by: str = ByOpt,
                by_alias: str = ByAliasOpt, reason: str = typer.Option("", "--reason", help="why (audited)"),
                fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Set a tenant's status to disabled: its events are refused (tenant.suspended) from then on."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.tenants import disable

    output = Output(fmt, query)
    result = disable(connect(), tenant_id, actor(by, by_alias), reason)
    if not output.text:
        output.emit(jsonable(result))
    elif result["changed"]:
        console.print(f"{tenant_id}: {result['was']} → disabled (audited as {result['audit']}); "
                      "functions refuse its events within 30 s")
    else:
        console.print(f"{tenant_id} is already disabled: nothing changed")
