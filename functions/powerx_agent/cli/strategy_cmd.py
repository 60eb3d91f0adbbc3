"""``powerx-agent strategy lint | test | simulate | graph | list | diff | publish | approve | rollback``.

lint/test/simulate/graph/list work offline on a library directory; publish/approve/rollback/diff
and ``list --published`` reach the deployment (root options ``--endpoint-url``/``--stack``) through
:func:`powerx_agent.cli.connect.connect` and :mod:`powerx_agent.ops.strategy`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from powerx_agent import spec
from powerx_agent.json_limits import MAX_DEPTH, JsonLimitError
from powerx_agent.json_limits import loads as loads_bounded

MAX_EVENT_FILE_BYTES = 1024 * 1024

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


ContractsOpt = typer.Option(None, "--contracts", help="directory of event-type payload contracts "
                           "(<type>.schema.json); default: the checkout's config/event-types")


def _contracts(directory: Path | None) -> dict[str, Any]:
    """The payload contracts ingest applies (or those of --contracts); a bad file is a usage error."""
    from powerx_agent.payload_contracts import ContractError, default_directory, load_contracts

    if directory is not None and not directory.is_dir():
        raise typer.BadParameter(f"{directory} is not a directory", param_hint="--contracts")
    try:
        return load_contracts(directory if directory is not None else default_directory())
    except ContractError as exc:
        raise typer.BadParameter(str(exc), param_hint="--contracts") from None


@app.command("lint")
def lint(directory: Path = typer.Argument(Path("strategies"), help="directory of *.yaml strategies"),
         fmt: str = FormatOpt, contracts: Path | None = ContractsOpt) -> None:
    """Report every problem as file:line:col: CODE message; exit 1 on any error."""
    from powerx_agent.strategy.lint import has_errors, lint_directory

    _check_format(fmt)
    if not directory.is_dir():
        raise typer.BadParameter(f"{directory} is not a directory", param_hint="DIRECTORY")
    findings = lint_directory(directory, _contracts(contracts))
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
        with path.open("rb") as handle:
            raw = handle.read(MAX_EVENT_FILE_BYTES + 1)
        if len(raw) > MAX_EVENT_FILE_BYTES:
            raise typer.BadParameter(f"{path} is larger than {MAX_EVENT_FILE_BYTES} bytes: an event file holds one "
                                     "EventBridge event (at most 256 KiB)", param_hint="--event")
        # depth pre-scanned before parsing; numbers and Unicode checked as the envelope checks them
        event = loads_bounded(raw, root="", max_depth=MAX_DEPTH + 1)
    except (FileNotFoundError, IsADirectoryError):
        raise typer.BadParameter(f"{path} does not exist", param_hint="--event") from None
    except JsonLimitError as exc:
        what = "is not JSON" if exc.kind == "invalid_json" else f"is refused (envelope.{exc.kind} at {exc.where or '$'})"
        raise typer.BadParameter(f"{path} {what}: {exc.message}", param_hint="--event") from None
    if not isinstance(event, dict) or "detail-type" not in event or "detail" not in event:
        raise typer.BadParameter(f"{path} must hold an EventBridge event with detail-type and detail",
                                 param_hint="--event")
    return event


@app.command("test")
def test(event_file: Path = typer.Option(..., "--event", help="EventBridge event JSON file"),
         strategies: Path = StrategiesOpt, fmt: str = FormatOpt,
         asl: bool = typer.Option(False, "--asl", help="include the compiled ASL definition"),
         contracts: Path | None = ContractsOpt) -> None:
    """Show the decision, rendered variables and taskflow for one event (offline); exit 1 when ingest would
    reject the event (envelope or payload contract)."""
    from powerx_agent.errors import AgentError
    from powerx_agent.strategy.evaluate import evaluate
    from powerx_agent.taskflow.asl import compile_express_head, compile_flow, flow_for_event

    _check_format(fmt)
    event = read_event_file(event_file)
    try:
        facts = _facts(event)
    except AgentError as exc:
        err.print(f"[red]{event_file}: {exc}[/red]")
        raise typer.Exit(1) from None
    _refuse_like_ingest(facts.event_type, (event.get("detail") or {}).get("payload"), contracts, fmt)
    library = _load_library(strategies)
    # the matcher's own evaluation; offline, the tenant registry is not read: ${owner} is a placeholder
    found = evaluate(library, facts, {"owner": "<tenant owner>"})
    decision, selected = found.decision, found.selected
    out: dict[str, Any] = {"decision": decision.to_dict(), "variables": {}, "taskflow": None}
    if selected is not None:
        out["variables"] = found.variables
        full = compile_flow(selected.strategy, placeholder_arns())
        when = found.when
        # what the matcher would start for this event: the Express head when nobody is awaited
        flow = flow_for_event(full, compile_express_head(selected.strategy, placeholder_arns(), full), when)
        out["taskflow"] = {"state_machine_name": flow.state_machine_name, "type": flow.type,
                           "type_reason": flow.type_reason,
                           "nodes": [{"id": n.id, "kind": n.kind, "after": list(n.after),
                                      "runs": when.get(n.id, True)} for n in selected.strategy.flow.nodes]}
        if asl:
            out["definition"] = flow.definition
    if fmt == "json":
        sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
        return
    console.print(f"[bold]event[/bold] {facts.event_type} tenant={facts.tenant_id} id={facts.event_id}  "
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
def list_strategies(strategies: Path = StrategiesOpt, fmt: str = FormatOpt,
                    published: bool = typer.Option(False, "--published",
                                                   help="published versions and active pointers of the deployment"),
                    strategy_ids: list[str] = typer.Option([], "--id", help="also list this strategy id (drafts)"),
                    ) -> None:
    """The strategies of a library directory, or with --published those of the deployment."""
    _check_format(fmt)
    if published:
        rows = _ops("list", lambda ops, deps: ops.published(deps, strategy_ids))
        if fmt == "json":
            sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
            return
        table = Table("id", "version", "active", "approval", "author", "approved by", "reason")
        for row in rows:
            table.add_row(row["strategy_id"], str(row["version"]), "[green]*[/]" if row["active"] else "",
                          str(row["approval"]), str(row["author"]), str(row["approved_by"] or ""),
                          str(row["approval_reason"] or ""))
        console.print(table)
        if rows:
            console.print(f"library revision {rows[0]['library_revision']}")
        return
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


# -- the deployment: publish / approve / rollback / diff ------------------------------------------


def _ops(what: str, action: Any) -> Any:
    """Run ``action(ops.strategy, deps)``; an AgentError is reported and exits 1."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.errors import AgentError
    from powerx_agent.ops import strategy as lifecycle

    try:
        return action(lifecycle, connect())
    except AgentError as exc:
        err.print(f"[red]{what}: {exc}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _emit(fmt: str, payload: Any, text: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    else:
        console.print(text, highlight=False)


@app.command("publish")
def publish(path: Path = typer.Argument(Path("strategies"), help="a strategy file or a directory of them"),
            author: str = typer.Option(..., "--author", help="who publishes (recorded and audited)"),
            fmt: str = FormatOpt) -> None:
    """Upload strategy versions as drafts (approval PENDING); audited as strategy.published."""
    _check_format(fmt)
    if not path.exists():
        raise typer.BadParameter(f"{path} does not exist", param_hint="PATH")
    results = _ops("publish", lambda ops, deps: ops.publish(deps, path, author))
    lines = [f"{r.strategy_id} v{r.version} {'already published (same content)' if r.already else 'published'}"
             for r in results]
    _emit(fmt, [r.to_dict() for r in results], "\n".join(lines) or "nothing to publish")


@app.command("approve")
def approve(strategy_id: str = typer.Argument(...), version: int = typer.Option(..., "--version"),
            approver: str = typer.Option(..., "--approver"), reason: str = typer.Option(..., "--reason"),
            fmt: str = FormatOpt) -> None:
    """Approve a published version and make it active (REQUIRE_OTHER_APPROVER: not by its author)."""
    _check_format(fmt)
    result = _ops("approve", lambda ops, deps: ops.approve(deps, strategy_id, version, approver, reason))
    _emit(fmt, result, f"{strategy_id} v{version} approved by {approver} and active "
                       f"(was v{result.get('previous')}); library revision {result.get('revision')}")


@app.command("rollback")
def rollback(strategy_id: str = typer.Argument(...),
             to: int | None = typer.Option(None, "--to", help="version to go back to (default: the previous)"),
             actor: str = typer.Option("cli", "--actor", help="who rolls back (audited)"), fmt: str = FormatOpt) -> None:
    """Move the active pointer back to the previous approved version (or --to N), and the alias."""
    _check_format(fmt)
    result = _ops("rollback", lambda ops, deps: ops.rollback(deps, strategy_id, actor, to))
    alias = result.get("alias") or {}
    where = f"alias {alias['alias_arn']}" if alias.get("pointed") else f"alias not moved: {alias.get('why')}"
    _emit(fmt, result, f"{strategy_id}: active v{result['version']} (was v{result.get('previous')}); {where}")


@app.command("diff")
def diff(strategy_id: str = typer.Argument(...), from_version: int = typer.Option(..., "--from"),
         to_version: int = typer.Option(..., "--to")) -> None:
    """Unified diff of the YAML of two published versions (exit 1 when they differ, like diff)."""
    text = _ops("diff", lambda ops, deps: ops.diff(deps, strategy_id, from_version, to_version))
    sys.stdout.write(text)
    raise typer.Exit(1 if text else 0)


# -- simulate: a backtest of a library over recorded events ------------------------------------


def _refuse_like_ingest(event_type: str, payload: Any, directory: Path | None, fmt: str) -> None:
    """Ingest rejects a payload that breaks its event type's contract (payload.schema_violation): so does
    ``strategy test``, with the same code and field, and exit 1."""
    contract = _contracts(directory).get(event_type)
    violations = contract.violations(payload if payload is not None else {}) if contract else []
    if not violations:
        return
    rejected = {"code": "payload.schema_violation", "where": violations[0].where,
                "message": f"the payload breaks the {event_type} contract: {violations[0]}",
                "violations": [str(v) for v in violations], "contract": contract.source}
    if fmt == "json":
        sys.stdout.write(json.dumps({"rejected": rejected}, indent=2) + "\n")
    else:
        err.print(f"[red]rejected at ingest: payload.schema_violation[/red] ({contract.source})")
        for v in violations:
            err.print(f"  {v}")
    raise typer.Exit(1)


def _facts(event: dict[str, Any]) -> Any:
    """An EventBridge event → the facts the matcher evaluates, through the envelope ingest applies."""
    from powerx_agent.ops.strategy import event_facts

    return event_facts(event)


@app.command("simulate")
def simulate(events: Path = typer.Option(..., "--events", help="JSON Lines file, one EventBridge event a line"),
             strategies: Path = StrategiesOpt,
             baseline: Path | None = typer.Option(None, "--baseline", help="library to compare with (backtest)"),
             fmt: str = FormatOpt) -> None:
    """Hit rate, matches per strategy, unmatched events; with --baseline, every differing decision."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from powerx_agent.errors import AgentError
    from powerx_agent.strategy.backtest import Backtest

    _check_format(fmt)
    if not events.is_file():
        raise typer.BadParameter(f"{events} does not exist", param_hint="--events")
    library = _load_library(strategies)
    base = _load_library(baseline) if baseline is not None else None
    try:
        lines = events.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise typer.BadParameter(f"{events} is not UTF-8", param_hint="--events") from None
    run = Backtest(library, base)
    progress = Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=err, transient=True, disable=fmt == "json" or len(lines) < 200)
    with progress:
        task = progress.add_task("events", total=len(lines))
        for number, raw in enumerate(lines, start=1):
            progress.advance(task)
            if not raw.strip():
                continue
            try:
                event = loads_bounded(raw, root="", max_depth=MAX_DEPTH + 1)
                if not isinstance(event, dict):
                    raise ValueError("not a JSON object")
                run.add(number, _facts(event))
            except (ValueError, AgentError, KeyError, TypeError) as exc:
                run.refuse(number, str(exc))
    report = run.report()
    decided, matched, unmatched = report["events"], report["matched"], report["unmatched"]
    differences, bad = report.get("differences", []), report["bad_lines"]
    if fmt == "json":
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
    else:
        rate = f"{report['hit_rate']:.1%}" if decided else "n/a"
        console.print(f"[bold]{decided}[/bold] events, {matched} matched, hit rate {rate}"
                      f" ({library.revision})")
        table = Table("strategy", "matches")
        for name, count in report["per_strategy"].items():
            table.add_row(name, str(count))
        console.print(table)
        for item in unmatched[:50]:
            console.print(f"  unmatched line {item['line']}: {item['event_type']} {item['tenant_id']} "
                          f"{item['event_id']}", highlight=False)
        if len(unmatched) > 50:
            console.print(f"  ... and {len(unmatched) - 50} more unmatched")
        if base is not None:
            console.print(f"[bold]{len(differences)}[/bold] decision(s) differ from the baseline ({base.revision})")
            for item in differences:
                before = item["baseline"] or {}
                after = item["candidate"] or {}
                console.print(f"  line {item['line']} {item['event_id']}: "
                              f"{before.get('strategy_id', 'none')} v{before.get('version', '-')} -> "
                              f"{after.get('strategy_id', 'none')} v{after.get('version', '-')}", highlight=False)
        for item in bad:
            err.print(f"[red]{events}:{item['line']}: {item['error']}[/red]", highlight=False)
    raise typer.Exit(1 if bad else 0)
