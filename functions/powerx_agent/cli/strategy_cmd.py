"""``powerx-agent strategy lint | test | graph | list``: the strategy library from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from powerx_agent import spec

app = typer.Typer(help="Lint, test and inspect the strategy library.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

StrategiesOpt = typer.Option(Path("strategies"), "--strategies", help="strategy library directory")
FormatOpt = typer.Option("text", "--format", help="text | json")


def placeholder_arns() -> Any:
    from powerx_agent.taskflow.asl import FunctionArns

    def arn(key: str) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{spec.FUNCTIONS_BY_KEY[key].name}"

    return FunctionArns(plugin=arn("node_plugin"), notify=arn("node_notify"), review=arn("node_review"),
                        workflow=arn("workflow"))


def _check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"--format must be text or json, not {fmt!r}", param_hint="--format")


def _load_library(directory: Path) -> Any:
    from powerx_agent.strategy.library import LibraryLoadError, library_from_directory

    if not directory.is_dir():
        raise typer.BadParameter(f"{directory} is not a directory", param_hint="--strategies")
    try:
        return library_from_directory(directory)
    except LibraryLoadError as exc:
        err.print(f"[red]the library in {directory} has errors; run `powerx-agent strategy lint {directory}`[/red]")
        for finding in exc.findings:
            err.print(f"  {finding}")
        raise typer.Exit(1) from None


@app.command("lint")
def lint(directory: Path = typer.Argument(Path("strategies"), help="directory of *.yaml strategies"),
         fmt: str = FormatOpt) -> None:
    """Report every problem as file:line:col: CODE message; exit 1 on any error."""
    from powerx_agent.strategy.lint import has_errors, lint_directory

    _check_format(fmt)
    if not directory.is_dir():
        raise typer.BadParameter(f"{directory} is not a directory", param_hint="DIRECTORY")
    findings = lint_directory(directory)
    if fmt == "json":
        sys.stdout.write(json.dumps([f.to_dict() for f in findings], indent=2) + "\n")
    else:
        for finding in findings:
            colour = "red" if finding.severity == "error" else "yellow"
            console.print(f"{finding.source}:{finding.line}:{finding.col}: [{colour}]{finding.code}[/] "
                          f"{finding.message}", highlight=False, markup=True)
        errors = sum(f.severity == "error" for f in findings)
        console.print(f"{errors} error(s), {len(findings) - errors} warning(s)")
    raise typer.Exit(1 if has_errors(findings) else 0)


def read_event_file(path: Path) -> dict[str, Any]:
    try:
        event = json.loads(path.read_text())
    except FileNotFoundError:
        raise typer.BadParameter(f"{path} does not exist", param_hint="--event") from None
    except ValueError as exc:
        raise typer.BadParameter(f"{path} is not JSON: {exc}", param_hint="--event") from None
    if not isinstance(event, dict) or "detail-type" not in event or "detail" not in event:
        raise typer.BadParameter(f"{path} must hold an EventBridge event with detail-type and detail",
                                 param_hint="--event")
    return event


@app.command("test")
def test(event_file: Path = typer.Option(..., "--event", help="EventBridge event JSON file"),
         strategies: Path = StrategiesOpt, fmt: str = FormatOpt,
         asl: bool = typer.Option(False, "--asl", help="include the compiled ASL definition")) -> None:
    """Show the decision, rendered variables and taskflow for one event (offline)."""
    from powerx_agent.errors import AgentError
    from powerx_agent.ingest.envelope import parse_event
    from powerx_agent.matcher import evaluation_doc
    from powerx_agent.taskflow.asl import compile_flow

    _check_format(fmt)
    event = read_event_file(event_file)
    try:
        incoming = parse_event(event)
    except AgentError as exc:
        err.print(f"[red]{event_file}: {exc}[/red]")
        raise typer.Exit(1) from None
    library = _load_library(strategies)
    env = incoming.envelope
    doc = evaluation_doc(env.model_dump(mode="json", exclude_none=True), incoming.event_type)
    bus_event = {"source": incoming.source, "detail-type": incoming.event_type, "detail": event["detail"]}
    decision, selected = library.index.decide(event_type=incoming.event_type, tenant_id=env.tenant_id,
                                              event_id=env.event_id, doc=doc, bus_event=bus_event)
    out: dict[str, Any] = {"decision": decision.to_dict(), "variables": {}, "taskflow": None}
    if selected is not None:
        builtins = {"tenant": env.tenant_id, "event_id": env.event_id, "owner": "<tenant owner>",
                    "event_type": incoming.event_type, "idempotency_key": env.key}
        out["variables"] = selected.variables.render(doc, builtins)
        flow = compile_flow(selected.strategy, placeholder_arns())
        when = {node_id: cond.evaluate(doc) is None for node_id, cond in selected.node_whens.items()}
        out["taskflow"] = {"state_machine_name": flow.state_machine_name, "type": flow.type,
                           "type_reason": flow.type_reason,
                           "nodes": [{"id": n.id, "kind": n.kind, "after": list(n.after),
                                      "runs": when.get(n.id, True)} for n in selected.strategy.flow.nodes]}
        if asl:
            out["definition"] = flow.definition
    if fmt == "json":
        sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
        return
    console.print(f"[bold]event[/bold] {incoming.event_type} tenant={env.tenant_id} id={env.event_id}  "
                  f"library {library.revision}")
    table = Table("candidate", "version", "weight", "matched", "first failing condition")
    for candidate in decision.candidates:
        failed = candidate.failed.to_dict() if candidate.failed else None
        table.add_row(candidate.strategy_id, str(candidate.version), str(candidate.weight),
                      "[green]yes[/]" if candidate.matched else "[red]no[/]",
                      f"{failed['path']} {failed['op']} {failed['expected']!r} (actual {failed['actual']!r})"
                      if failed else "")
    console.print(table)
    console.print(f"[bold]decision[/bold] {decision.reason()}")
    if out["taskflow"]:
        console.print(f"[bold]variables[/bold] {json.dumps(out['variables'], default=str)}")
        tf = out["taskflow"]
        console.print(f"[bold]taskflow[/bold] {tf['state_machine_name']} [{tf['type']}] {tf['type_reason']}")
        for node in tf["nodes"]:
            after = f" after {', '.join(node['after'])}" if node["after"] else ""
            console.print(f"  {node['id']} ({node['kind']}){after}{'' if node['runs'] else '  [dim]skipped[/]'}")
        if asl:
            console.print_json(json.dumps(out["definition"]))


@app.command("graph")
def graph(strategy_id: str = typer.Argument(..., help="strategy id"), strategies: Path = StrategiesOpt,
          fmt: str = typer.Option("asl", "--format", help="asl | dot | svg"),
          out: Path | None = typer.Option(None, "--out", help="write to this file instead of stdout")) -> None:
    """The compiled state machine of one strategy as ASL JSON, Graphviz DOT or SVG."""
    from powerx_agent.taskflow.asl import compile_flow
    from powerx_agent.taskflow.graph import to_dot, to_svg

    if fmt not in ("asl", "dot", "svg"):
        raise typer.BadParameter(f"--format must be asl, dot or svg, not {fmt!r}", param_hint="--format")
    library = _load_library(strategies)
    compiled = library.get(strategy_id)
    if compiled is None:
        known = ", ".join(sorted(c.strategy.id for c in library.strategies))
        err.print(f"[red]no strategy {strategy_id!r} in {strategies} (known: {known})[/red]")
        raise typer.Exit(1)
    flow = compile_flow(compiled.strategy, placeholder_arns())
    text = (json.dumps(flow.definition, indent=2) if fmt == "asl" else to_dot(flow) if fmt == "dot" else to_svg(flow))
    if out:
        out.write_text(text + ("\n" if not text.endswith("\n") else ""))
        console.print(f"wrote {out}")
    else:
        sys.stdout.write(text + ("\n" if not text.endswith("\n") else ""))


@app.command("list")
def list_strategies(strategies: Path = StrategiesOpt, fmt: str = FormatOpt) -> None:
    """The strategies of a library directory: id, version, status, events, weight, nodes."""
    _check_format(fmt)
    library = _load_library(strategies)
    rows = [{"id": c.strategy.id, "version": c.strategy.version, "status": c.strategy.status,
             "events": list(c.strategy.on.event), "tenants": list(c.strategy.tenants), "weight": c.strategy.weight,
             "nodes": len(c.strategy.flow.nodes), "source": c.source} for c in library.strategies]
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("id", "version", "status", "events", "tenants", "weight", "nodes")
    for row in rows:
        table.add_row(row["id"], str(row["version"]), row["status"], ", ".join(row["events"]),
                      ", ".join(row["tenants"]), str(row["weight"]), str(row["nodes"]))
    console.print(table)
