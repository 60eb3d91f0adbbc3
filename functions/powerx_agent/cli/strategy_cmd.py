"""``powerx-agent strategy lint | test | simulate | graph | list | diff | publish | approve | rollback | canary |
library``.

lint/test/simulate/graph/list work offline on a library directory; publish/approve/rollback/diff
and ``list --published`` reach the deployment (root options ``--endpoint-url``/``--stack``) through
:func:`powerx_agent.cli.connect.connect` and :mod:`powerx_agent.ops.strategy`."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from powerx_agent import spec
from powerx_agent.cli._common import (
    ByAliasOpt,
    ByOpt,
    FormatOpt,
    ListFormatOpt,
    Output,
    QueryOpt,
    actor,
    err,
    fail,
    run_logic,
    session,
    styled,
    table,
    with_timestamps,
)
from powerx_agent.json_limits import MAX_DEPTH, JsonLimitError
from powerx_agent.json_limits import loads as loads_bounded

MAX_EVENT_FILE_BYTES = 1024 * 1024

app = typer.Typer(help="Lint, test and inspect the strategy library.", no_args_is_help=True)

StrategiesOpt = typer.Option(Path("strategies"), "--strategies", help="strategy library directory")
TenantsOpt = typer.Option(None, "--tenants", metavar="FILE|deployed",
                          help="the tenant registry to check against: a file (config/tenants.yaml), or 'deployed' "
                               "for the target's agent_tenants (--stack / --endpoint-url before the command)")


def _tenants(source: str | None, whole: bool = False) -> Any:
    """The tenant registry ``--tenants`` names (None: no tenant checks)."""
    from powerx_agent.ops.strategy_tests import DEPLOYED, DeployedTenants, load_registry

    if source is None:
        return None
    if source == DEPLOYED:
        if whole:
            raise typer.BadParameter("lint checks every tenant: give the registry file (the one `tenants apply` "
                                     "takes)", param_hint="--tenants")
        from powerx_agent.cli.connect import connect

        return DeployedTenants(connect().tenants.get)
    path = Path(source)
    if not path.is_file():
        raise typer.BadParameter(f"{source} is neither a tenant registry file nor '{DEPLOYED}'",
                                 param_hint="--tenants")
    return run_logic(lambda: load_registry(path))


def placeholder_arns() -> Any:
    from powerx_agent.taskflow.asl import FunctionArns

    def arn(key: str) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{spec.FUNCTIONS_BY_KEY[key].name}"

    return FunctionArns(plugin=arn("node_plugin"), notify=arn("node_notify"), review=arn("node_review"),
                        workflow=arn("workflow"))


def _load_library(directory: Path) -> Any:
    from powerx_agent.strategy.library import LibraryLoadError, library_from_directory

    if not directory.is_dir():
        raise typer.BadParameter(f"{directory} is not a directory", param_hint="--strategies")
    try:
        return library_from_directory(directory)
    except LibraryLoadError as exc:
        console = err()
        console.print(styled(f"error: the library in {directory} has errors; run `powerx-agent strategy lint "
                             f"{directory}`", "red"))
        for finding in exc.findings:
            console.print(f"  {finding}")
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
def lint(directory: Path = typer.Argument(Path("strategies"), metavar="PATH",
                                          help="a strategy file, or a directory of *.yaml strategies"),
         tenants: str = TenantsOpt, contracts: Path | None = ContractsOpt, fmt: str = ListFormatOpt,
         query: str = QueryOpt,
         jobs: int | None = typer.Option(None, "--jobs", min=1, max=64,
                                         help="processes that load the files (default: one per CPU from 400 files)"),
         ) -> None:
    """Report every problem as file:line:col: CODE message, one line each; exit 1 on any error. With
    --tenants, also warn of strategies no tenant can use (event type or plugin not allowed)."""
    from powerx_agent.strategy.lint import has_errors, lint_directory

    output = Output(fmt, query, ("text", "json", "jsonl"))
    if not directory.is_dir() and not directory.is_file():
        raise typer.BadParameter(f"{directory} is neither a strategy file nor a directory", param_hint="PATH")
    findings = lint_directory(directory, _contracts(contracts), _tenants(tenants, whole=True), jobs)

    def text(console: Console) -> None:
        for finding in findings:
            colour = "red" if finding.severity == "error" else "yellow"
            console.print(styled(f"{finding.source}:{finding.line}:{finding.col}: ")
                          + styled(finding.code, colour) + styled(f" {finding.message}"))
        errors = sum(f.severity == "error" for f in findings)
        console.print(f"{errors} error(s), {len(findings) - errors} warning(s)")

    output.emit([f.to_dict() for f in findings], text)
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
def test(event_file: Path = typer.Option(None, "--event", help="EventBridge event JSON file"),
         expect: str = typer.Option(None, "--expect", metavar="STRATEGY_ID|none",
                                    help="exit 1 unless this strategy (or none) is selected"),
         suite: bool = typer.Option(False, "--suite", help="run every fixture: the strategies' own tests: and "
                                                           "the files under <library>/tests/"),
         junit: Path = typer.Option(None, "--junit", help="with --suite: write a JUnit XML report here"),
         strategies: Path = StrategiesOpt, tenants: str = TenantsOpt,
         asl: bool = typer.Option(False, "--asl", help="include the compiled ASL definition"),
         contracts: Path | None = ContractsOpt, fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Show the decision, rendered variables and taskflow for one event (offline); exit 1 when ingest would
    reject the event (envelope or payload contract); --expect makes it an assertion; --suite runs every
    fixture of the library (exit 1 on any failure)."""
    from powerx_agent.errors import AgentError
    from powerx_agent.ops.strategy import event_facts
    from powerx_agent.ops.strategy_tests import NONE, refused_plugins, screen, tenant_of
    from powerx_agent.strategy.dsl import ID_RE
    from powerx_agent.strategy.evaluate import evaluate
    from powerx_agent.taskflow.asl import compile_express_head, compile_flow, flow_for_event

    output = Output(fmt, query)
    if suite == (event_file is not None):
        raise typer.BadParameter("give --event FILE or --suite", param_hint="--event / --suite")
    if junit is not None and not suite:
        raise typer.BadParameter("goes with --suite", param_hint="--junit")
    if expect is not None and (suite or not (expect == NONE or re.match(ID_RE, expect))):
        raise typer.BadParameter(f"a strategy id or {NONE}, with --event", param_hint="--expect")
    registry = _tenants(tenants)
    library = _load_library(strategies)
    if suite:
        _suite(library, strategies, registry, junit, output)
        return
    event = read_event_file(event_file)
    try:
        facts = event_facts(event)
    except AgentError as exc:
        raise fail(f"{event_file}: {exc}") from None
    _refuse_like_ingest(facts.event_type, (event.get("detail") or {}).get("payload"), contracts, output)
    rejected = screen(registry)(facts)
    tenant = tenant_of(registry, facts.tenant_id)
    found = evaluate(library, facts, tenant)
    decision, selected = found.decision, found.selected
    # the record the matcher would write, plus every candidate explained (``candidates``)
    out: dict[str, Any] = {"decision": decision.explained(), "variables": {}, "taskflow": None, "rejected": rejected}
    if selected is not None:
        out["variables"] = found.variables
        out["plugins_not_allowed"] = refused_plugins(found, tenant, registry)
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
    mismatch = None
    if expect is not None:
        got = selected.id if selected else NONE
        if rejected:
            mismatch = f"expected {expect}, but ingest rejects the event ({rejected})"
        elif got != expect:
            mismatch = f"expected {expect}, got {got} ({decision.reason()})"
        out["expect"] = {"strategy": expect, "passed": mismatch is None, "message": mismatch}

    def text(console: Console) -> None:
        console.print(styled("event", "bold") + styled(f" {facts.event_type} tenant={facts.tenant_id} "
                                                       f"id={facts.event_id}  library {library.revision}"))
        if rejected:
            console.print(styled("rejected", "red") + styled(f" ingest rejects this event: {rejected}"))
        rows = []
        for candidate in decision.candidates:
            failed = candidate.failed.to_dict() if candidate.failed else None
            rows.append((candidate.strategy_id, candidate.version, candidate.weight,
                         styled("yes", "green") if candidate.matched else styled("no", "red"),
                         f"{failed['path']} {failed['op']} {failed['expected']!r} (actual {failed['actual']!r})"
                         if failed else ""))
        console.print(table("candidate", "version", "weight", "matched", "first failing condition",
                            ids=("candidate",), rows=rows))
        console.print(styled("decision", "bold") + styled(f" {decision.reason()}"))
        if out["taskflow"]:
            console.print(styled("variables", "bold")
                          + styled(f" {json.dumps(out['variables'], default=str, ensure_ascii=False)}"))
            if out.get("plugins_not_allowed"):
                console.print(styled("plugins", "red") + styled(
                    f" the tenant may not use {', '.join(out['plugins_not_allowed'])}: the matcher escalates"))
            tf = out["taskflow"]
            console.print(styled("taskflow", "bold")
                          + styled(f" {tf['state_machine_name']} [{tf['type']}] {tf['type_reason']}"))
            for node in tf["nodes"]:
                after = f" after {', '.join(node['after'])}" if node["after"] else ""
                line = styled(f"  {node['id']} ({node['kind']}){after}")
                console.print(line if node["runs"] else line + styled("  skipped", "dim"))
            if asl:
                console.print(json.dumps(out["definition"], indent=2))
        if expect is not None:
            console.print(styled("PASS", "green") + styled(f" expected {expect}") if mismatch is None
                          else styled("FAIL", "red") + styled(f" {mismatch}"))

    output.emit(out, text)
    if mismatch is not None:
        raise typer.Exit(1)


def _suite(library: Any, directory: Path, registry: Any, junit: Path | None, output: Output) -> None:
    from powerx_agent.ops.strategy_tests import junit_xml, run_suite

    results, problems = run_suite(library, directory, registry)
    if junit is not None:
        try:
            junit.write_text(junit_xml(results, problems), encoding="utf-8")
        except OSError as exc:
            raise fail(f"cannot write {junit}: {exc.strerror or exc}") from None
    failed = [r for r in results if not r.passed]

    def text(console: Console) -> None:
        for result in results:
            mark = styled("SKIP", "yellow") if result.skipped else \
                styled("PASS", "green") if result.passed else styled("FAIL", "red")
            console.print(mark + styled(f" {result.source}: {result.name}")
                          + (styled(f" ({result.skipped})") if result.skipped else ""))
            for failure in result.failures:
                console.print(styled(f"    {failure}"))
        for problem in problems:
            console.print(styled("ERROR", "red") + styled(f" {problem}"))
        console.print(f"{len(results)} test(s), {len(failed)} failed, "
                      f"{sum(1 for r in results if r.skipped)} skipped, {len(problems)} fixture file error(s)"
                      + (f"; JUnit report {junit}" if junit else ""))

    output.emit({"passed": not failed and not problems, "tests": len(results), "failed": len(failed),
                 "errors": problems, "results": [r.to_dict() for r in results]}, text)
    if failed or problems or not results:
        if not results and not problems:
            err().print(f"error: no strategy tests in {directory} (tests: in a strategy, or files under "
                        f"{directory / 'tests'})")
        raise typer.Exit(1)


@app.command("graph")
def graph(strategy_id: str = typer.Argument(..., help="strategy id"), strategies: Path = StrategiesOpt,
          fmt: str = typer.Option("asl", "--format", help="asl (= json: the ASL definition) | dot | svg",
                                  autocompletion=lambda: ["asl", "json", "dot", "svg"]),
          query: str = QueryOpt,
          out: Path | None = typer.Option(None, "--out", help="write to this file instead of stdout")) -> None:
    """The compiled state machine of one strategy as ASL JSON, Graphviz DOT or SVG."""
    from powerx_agent.taskflow.asl import compile_flow
    from powerx_agent.taskflow.graph import to_dot, to_svg

    if fmt not in ("asl", "json", "dot", "svg"):
        raise typer.BadParameter(f"must be asl, json, dot or svg, not {fmt!r}", param_hint="--format")
    if query and fmt in ("dot", "svg"):
        raise typer.BadParameter("--query reads the ASL definition: use it with --format asl or json",
                                 param_hint="--query")
    library = _load_library(strategies)
    compiled = library.get(strategy_id)
    if compiled is None:
        known = ", ".join(sorted(c.strategy.id for c in library.strategies))
        raise fail(f"no strategy {strategy_id!r} in {strategies} (known: {known})")
    flow = compile_flow(compiled.strategy, placeholder_arns())
    if query:
        import jmespath

        text = json.dumps(jmespath.search(query, flow.definition), indent=2)
    else:
        text = (json.dumps(flow.definition, indent=2) if fmt in ("asl", "json") else to_dot(flow) if fmt == "dot"
                else to_svg(flow))
    if out:
        out.write_text(text + ("\n" if not text.endswith("\n") else ""))
        err().print(f"wrote {out}")
    else:
        sys.stdout.write(text + ("\n" if not text.endswith("\n") else ""))


@app.command("list")
def list_strategies(strategies: Path = StrategiesOpt,
                    published: bool = typer.Option(False, "--published",
                                                   help="published versions and active pointers of the deployment"),
                    strategy_ids: list[str] = typer.Option([], "--id", help="also list this strategy id (drafts)"),
                    fmt: str = ListFormatOpt, query: str = QueryOpt) -> None:
    """The strategies of a library directory, or with --published those of the deployment."""
    output = Output(fmt, query, ("text", "json", "jsonl"))
    if published:
        rows = with_timestamps(_ops(lambda ops, deps: ops.published(deps, strategy_ids)))

        def published_text(console: Console) -> None:
            console.print(table("id", "version", "active", "approval", "author", "approved by", "reason",
                                ids=("id",), rows=[
                                    (r["strategy_id"], r["version"], styled("*", "green") if r["active"] else "",
                                     r["approval"], r["author"], r["approved_by"] or "", r["approval_reason"] or "")
                                    for r in rows]))
            if rows:
                console.print(f"library revision {rows[0]['library_revision']}")

        output.emit(rows, published_text)
        return
    library = _load_library(strategies)
    rows = [{"id": c.strategy.id, "version": c.strategy.version, "status": c.strategy.status,
             "events": list(c.strategy.on.event), "tenants": list(c.strategy.tenants), "weight": c.strategy.weight,
             "nodes": len(c.strategy.flow.nodes), "source": c.source} for c in library.strategies]
    output.emit(rows, lambda console: console.print(table(
        "id", "version", "status", "events", "tenants", "weight", "nodes", ids=("id",), rows=[
            (r["id"], r["version"], r["status"], ", ".join(r["events"]), ", ".join(r["tenants"]), r["weight"],
             r["nodes"]) for r in rows])))


# -- the deployment: publish / approve / rollback / diff ------------------------------------------


def _ops(action: Any) -> Any:
    """Run ``action(ops.strategy, deps)``; an AgentError is reported and exits 1."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops import strategy as lifecycle

    return run_logic(lambda: action(lifecycle, connect()))


class _Stages:
    """A progress bar per stage of a long command (on stderr, only on a terminal and in text mode)."""

    LABELS = {"lint": "linting", "publish": "publishing", "compile": "compiling the artifact", "audit": "auditing"}

    def __init__(self, text: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = err()
        self.progress = Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, disable=not text or not console.is_terminal)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Stages:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(self.LABELS.get(stage, stage), total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


@app.command("publish")
def publish(path: Path = typer.Argument(Path("strategies"), help="a strategy file or a directory of them"),
            by: str = ByOpt, by_alias: str = ByAliasOpt, fmt: str = FormatOpt, query: str = QueryOpt,
            jobs: int | None = typer.Option(None, "--jobs", min=1, max=64,
                                            help="processes that lint the files (default: one per CPU)")) -> None:
    """Upload strategy versions as drafts (approval PENDING); audited as strategy.published."""
    output = Output(fmt, query)
    if not path.exists():
        raise typer.BadParameter(f"{path} does not exist", param_hint="PATH")
    who = actor(by, by_alias)
    with _Stages(output.text) as stages:
        results = _ops(lambda ops, deps: ops.publish(deps, path, who, progress=stages, jobs=jobs))
    new = sum(not r.already for r in results)
    lines = [f"{r.strategy_id} v{r.version} {'already published (same content)' if r.already else 'published'}"
             for r in results] if len(results) <= 50 else []
    lines.append(f"{new} published, {len(results) - new} already published (same content)")
    output.emit([r.to_dict() for r in results],
                lambda console: console.print("\n".join(lines) if results else "nothing to publish"))


@app.command("approve")
def approve(strategy_id: str | None = typer.Argument(None, help="the strategy (or --dir for a whole library)"),
            version: int | None = typer.Option(None, "--version"),
            by: str = ByOpt, by_alias: str = ByAliasOpt, reason: str = typer.Option(..., "--reason"),
            directory: Path | None = typer.Option(None, "--dir", help="approve every strategy of this library "
                                                  "directory, as published, in one library revision"),
            share: str | None = typer.Option(None, "--canary", help="only this share of the events (e.g. 10%): "
                                             "a canary against the active version, see `strategy canary`"),
            margin: float | None = typer.Option(None, "--abort-margin", help="canary: abort by itself when its "
                                                "failure or escalation rate exceeds the baseline's by more than this "
                                                "rate (default 0.05) with 95% confidence"),
            min_events: int | None = typer.Option(None, "--min-events", help="canary: observations each arm needs "
                                                  "before an automatic abort (default 50)"),
            fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Approve a published version and make it active (REQUIRE_OTHER_APPROVER: not by its author);
    with --canary, make it decide only a share of the events first."""
    output = Output(fmt, query)
    who = actor(by, by_alias)
    if share is None and (margin is not None or min_events is not None):
        raise typer.BadParameter("--abort-margin and --min-events go with --canary", param_hint="--canary")
    if share is not None:
        from powerx_agent.strategy.canary import parse_share

        if directory is not None or strategy_id is None or version is None:
            raise typer.BadParameter("--canary goes with ID --version N", param_hint="--canary")
        try:
            parse_share(share)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--canary") from None
        if margin is not None and not 0 <= margin < 1:
            raise typer.BadParameter("a rate in [0, 1), e.g. 0.05", param_hint="--abort-margin")
        if min_events is not None and not 1 <= min_events <= 1_000_000:
            raise typer.BadParameter("at least 1 (and at most 1,000,000)", param_hint="--min-events")
        started = _ops(lambda ops, deps: ops.approve_canary(deps, strategy_id, version, share, who, reason,
                                                            margin=margin, min_events=min_events))
        output.emit(started, lambda console: console.print(
            f"{strategy_id} v{version} is a canary deciding {started['percent']:g}% of the events of "
            f"{', '.join(started['event_types'])}; v{started['baseline']} decides the rest. "
            f"Follow it with `powerx-agent strategy canary status {strategy_id}`"))
        return
    if directory is not None:
        if strategy_id is not None or version is not None:
            raise typer.BadParameter("give either ID --version N or --dir DIR", param_hint="--dir")
        if not directory.exists():
            raise typer.BadParameter(f"{directory} does not exist", param_hint="--dir")
        with _Stages(output.text) as stages:
            done = _ops(lambda ops, deps: ops.approve_published(deps, directory, who, reason, progress=stages))
        output.emit(done, lambda console: console.print(
            f"{done['approved']} strategies approved by {who} and active; library revision {done['revision']}"))
        return
    if strategy_id is None or version is None:
        raise typer.BadParameter("give ID --version N (or --dir DIR)", param_hint="ID")
    result = _ops(lambda ops, deps: ops.approve(deps, strategy_id, version, who, reason))
    output.emit(result, lambda console: console.print(
        f"{strategy_id} v{version} approved by {who} and active (was v{result.get('previous')}); "
        f"library revision {result.get('revision')}"))


@app.command("rollback")
def rollback(strategy_id: str = typer.Argument(...),
             to: int | None = typer.Option(None, "--to", help="version to go back to (default: the previous)"),
             by: str = ByOpt, by_alias: str = ByAliasOpt, fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Move the active pointer back to the previous approved version (or --to N), and the alias."""
    output = Output(fmt, query)
    who = actor(by, by_alias)
    result = _ops(lambda ops, deps: ops.rollback(deps, strategy_id, who, to))
    alias = result.get("alias") or {}
    where = f"alias {alias['alias_arn']}" if alias.get("pointed") else f"alias not moved: {alias.get('why')}"
    output.emit(result, lambda console: console.print(
        f"{strategy_id}: active v{result['version']} (was v{result.get('previous')}); {where}"))


@app.command("diff")
def diff(strategy_id: str = typer.Argument(...), from_version: int = typer.Option(..., "--from"),
         to_version: int = typer.Option(..., "--to"), fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Unified diff of the YAML of two published versions (exit 1 when they differ, like diff)."""
    output = Output(fmt, query)
    text = _ops(lambda ops, deps: ops.diff(deps, strategy_id, from_version, to_version))
    output.emit({"strategy_id": strategy_id, "from": from_version, "to": to_version, "differs": bool(text),
                 "diff": text}, lambda console: sys.stdout.write(text))
    raise typer.Exit(1 if text else 0)


# -- canary rollout -------------------------------------------------------------------------------------

canary_app = typer.Typer(help="A version deciding a share of the events: status, promote, abort.",
                         no_args_is_help=True)
app.add_typer(canary_app, name="canary")


def _rate(rate: dict[str, Any]) -> str:
    if not rate["of"]:
        return "-"
    low, high = rate["ci95"]
    return f"{rate['rate']:.1%} [{low:.1%}, {high:.1%}] ({rate['count']}/{rate['of']})"


def _latency(found: dict[str, Any]) -> str:
    if not found["count"]:
        return "-"
    p95 = found["p95_at_most"]
    shown = f"≤ {p95:g}" if p95 is not None else f"> {found['beyond']:g}"
    return f"mean {found['mean']:.1f} ms, p95 {shown} ms ({found['count']})"


def _canary_table(found: dict[str, Any], console: Console) -> None:
    c = found["comparison"]
    console.print(f"{found['strategy_id']}: canary v{found['version']} ({found['percent']:g}%) against v"
                  f"{found['baseline']}, {found['status']}, started {found['started_at']} by {found.get('started_by')}"
                  + (f"; ended {found['ended_at']} by {found.get('ended_by')}: {found.get('end_reason')}"
                     if found.get("ended_at") else ""), highlight=False)
    from rich.table import Table

    table = Table("measure (95% CI)", "canary", "baseline", "canary − baseline")
    for name, label in (("hit_rate", "hit rate"), ("success_rate", "workflow success rate"),
                        ("failure_rate", "workflow failure rate"), ("escalation_rate", "escalation rate")):
        diff = c["difference"][name]
        table.add_row(label, _rate(c["canary"][name]), _rate(c["baseline"][name]),
                      f"{diff['value']:+.1%} [{diff['ci95'][0]:+.1%}, {diff['ci95'][1]:+.1%}]" if diff else "-")
    table.add_row("generation latency", _latency(c["canary"]["latency_ms"]), _latency(c["baseline"]["latency_ms"]), "")
    console.print(table)
    verdict = found["verdict"]
    console.print(("[red]abort: " if verdict["abort"] else "no abort: ") + verdict["why"] +
                  ("[/red]" if verdict["abort"] else ""), highlight=False)


@canary_app.command("status")
def canary_status(strategy_id: str = typer.Argument(..., help="the strategy"), fmt: str = FormatOpt,
                  query: str = QueryOpt) -> None:
    """The running canary (or the last one) with both arms compared, with counts and 95% intervals."""
    from powerx_agent.match import canary

    output = Output(fmt, query)
    found = _ops(lambda ops, deps: canary.status(deps, strategy_id))
    output.emit(found, lambda console: _canary_table(found, console))


@canary_app.command("promote")
def canary_promote(strategy_id: str = typer.Argument(..., help="the strategy"),
                   by: str = ByOpt, by_alias: str = ByAliasOpt, reason: str = typer.Option(..., "--reason"),
                   fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """The canary version decides every event (an approval, audited as one)."""
    output = Output(fmt, query)
    who = actor(by, by_alias)
    done = _ops(lambda ops, deps: ops.promote_canary(deps, strategy_id, who, reason))
    output.emit(done, lambda console: console.print(
        f"{strategy_id} v{done['version']} promoted by {who} and active for every event "
        f"(was v{done.get('previous')}); library revision {done.get('revision')}"))


@canary_app.command("abort")
def canary_abort(strategy_id: str = typer.Argument(..., help="the strategy"),
                 by: str = ByOpt, by_alias: str = ByAliasOpt, reason: str = typer.Option(..., "--reason"),
                 fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """The active version decides every event again (audited, counted, notified)."""
    output = Output(fmt, query)
    who = actor(by, by_alias)
    with session() as (_deps, metrics):
        done = _ops(lambda ops, deps: ops.abort_canary(deps, metrics, strategy_id, who, reason))
    output.emit(done, lambda console: console.print(
        f"{strategy_id}'s canary v{done['version']} aborted by {who}; v{done['baseline']} decides every event again"))


# -- the compiled library artifact of the deployment ------------------------------------------------

library_app = typer.Typer(help="The compiled artifact of the deployment's library revision.", no_args_is_help=True)
app.add_typer(library_app, name="library")


@library_app.command("status")
def library_status(deep: bool = typer.Option(False, "--deep", help="also check it was built from every "
                                             "active version's current YAML (reads every version)"),
                   fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Whether the current revision's artifact is what the matchers serve (exit 1 when not)."""
    from powerx_agent.ops import library

    output = Output(fmt, query)
    found = _ops(lambda ops, deps: library.status(deps, deep))
    pointer = found.artifact or {}
    text = (f"library revision {found.revision}: {found.active} active strategies; artifact "
            f"{str(pointer.get('sha256', ''))[:12] or '-'} ({pointer.get('bytes', 0):,} bytes in "
            f"{pointer.get('chunks', 0)} chunks) ")
    output.emit(found.to_dict(), lambda console: console.print(
        styled(text) + (styled("ok", "green") if found.ok else styled(str(found.problem), "red"))))
    raise typer.Exit(0 if found.ok else 1)


@library_app.command("rebuild")
def library_rebuild(by: str = ByOpt, by_alias: str = ByAliasOpt, fmt: str = FormatOpt,
                    query: str = QueryOpt) -> None:
    """Compile every active version from its YAML into a new artifact for the current revision."""
    from powerx_agent.ops import library

    output = Output(fmt, query)
    who = actor(by, by_alias)
    with _Stages(output.text) as stages:
        done = _ops(lambda ops, deps: library.rebuild(deps, who, progress=lambda d, t: stages("compile", d, t)))
    pointer = done["artifact"]
    output.emit(done, lambda console: console.print(
        f"library revision {done['revision']}: artifact {pointer['sha256'][:12]} rebuilt "
        f"({pointer['strategies']} strategies, {pointer['bytes']:,} bytes)"))


# -- simulate: a backtest of a library over recorded events ------------------------------------


def _examples(items: list[dict[str, Any]]) -> str:
    return ", ".join(f"line {i['line']} ({i['event_type']} {i['tenant_id']} {i['event_id']})" for i in items)


def _refuse_like_ingest(event_type: str, payload: Any, directory: Path | None, output: Output) -> None:
    """Ingest rejects a payload that breaks its event type's contract (payload.schema_violation): so does
    ``strategy test``, with the same code and field, and exit 1."""
    contract = _contracts(directory).get(event_type)
    violations = contract.violations(payload if payload is not None else {}) if contract else []
    if not violations:
        return
    rejected = {"code": "payload.schema_violation", "where": violations[0].where,
                "message": f"the payload breaks the {event_type} contract: {violations[0]}",
                "violations": [str(v) for v in violations], "contract": contract.source}

    def text(console: Console) -> None:
        problems = err()
        problems.print(styled("rejected at ingest: payload.schema_violation", "red") + styled(f" ({contract.source})"))
        for v in violations:
            problems.print(styled(f"  {v}"))

    output.emit({"rejected": rejected}, text)
    raise typer.Exit(1)


def _facts(event: dict[str, Any]) -> Any:
    from powerx_agent.ops.strategy import event_facts

    return event_facts(event)


@app.command("simulate")
def simulate(events: Path = typer.Option(..., "--events", help="JSON Lines file, one EventBridge event a line"),
             strategies: Path = StrategiesOpt,
             baseline: Path | None = typer.Option(None, "--baseline", help="library to compare with (backtest)"),
             tenants: str = TenantsOpt, fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Hit rate, matches per strategy, unmatched events grouped by why; with --tenants, the events ingest
    would reject; with --baseline, the old -> new matrix of decisions with examples."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from powerx_agent.errors import AgentError
    from powerx_agent.strategy.backtest import Backtest

    output = Output(fmt, query)
    if not events.is_file():
        raise typer.BadParameter(f"{events} does not exist", param_hint="--events")
    from powerx_agent.ops.strategy_tests import screen, tenant_of

    registry = _tenants(tenants)
    library = _load_library(strategies)
    base = _load_library(baseline) if baseline is not None else None
    try:
        lines = events.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise typer.BadParameter(f"{events} is not UTF-8", param_hint="--events") from None
    run = Backtest(library, base, screen=screen(registry) if registry is not None else None,
                   tenant_of=lambda tenant_id: tenant_of(registry, tenant_id))
    progress = Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=err(), transient=True, disable=not output.text or len(lines) < 200)
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

    def text(console: Console) -> None:
        rate = f"{report['hit_rate']:.1%}" if decided else "n/a"
        rejected = f", {report['rejected']} rejected by ingest (tenant registry)" if registry is not None else ""
        console.print(f"{decided} events, {matched} matched, hit rate {rate} ({library.revision}){rejected}")
        console.print(table("strategy", "matches", ids=("strategy",), rows=report["per_strategy"].items()))
        if unmatched:
            console.print(styled(f"{len(unmatched)} unmatched, by reason:", "bold"))
            for group in report["unmatched_by_reason"]:
                console.print(styled(f"  {group['count']:>6}  {group['reason']}"))
                console.print(styled("          e.g. " + _examples(group["examples"]), "dim"))
        if report["rejected"]:
            console.print(styled(f"{report['rejected']} rejected by ingest, by code:", "bold"))
        for group in report["rejected_by_code"]:
            console.print(styled(f"  {group['count']:>6}  {group['code']}", "red"))
            console.print(styled("          e.g. " + _examples(group["examples"]), "dim"))
        if base is not None:
            console.print(f"{len(differences)} decision(s) differ from the baseline ({base.revision}):")
            olds = sorted({c["from"] for c in report["matrix"]})
            news = sorted({c["to"] for c in report["matrix"]})
            counts = {(c["from"], c["to"]): c["count"] for c in report["matrix"]}
            console.print(table("baseline \u2192 candidate", *news, ids=("baseline \u2192 candidate", *news),
                                rows=[(old, *(counts.get((old, new), "") for new in news)) for old in olds]))
            for cell in report["matrix"]:
                if cell["changed"]:
                    console.print(styled(f"  {cell['from']} \u2192 {cell['to']}: {cell['count']}, e.g. "
                                         + _examples(cell["examples"])))
        for item in bad:
            err().print(styled(f"{events}:{item['line']}: {item['error']}", "red"))

    output.emit(report, text)
    raise typer.Exit(1 if bad else 0)
