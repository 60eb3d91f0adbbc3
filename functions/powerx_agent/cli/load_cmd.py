"""``powerx-agent local load``: offer events at a fixed rate and report what the pipeline sustained.

Wired by ``register(local_app)`` (adds the ``load`` command to the ``local`` sub-app). The logic
lives in :mod:`powerx_agent.loadtest`.

- default: starts the embedded runtime on 127.0.0.1 (loopback only) and, in the same run, drives
  the product pipeline and a bare-moto pipeline of the same shape (``--no-bare`` skips it).
- ``--stack NAME``: drives a deployed stack instead (needs AWS credentials; events go to the
  stack's bus, completion is read from its audit table).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from powerx_agent.cli._common import FormatOpt, Output, QueryOpt, err, styled


def _check(rate: float, duration: float) -> None:
    from powerx_agent.loadtest import MAX_DURATION, MAX_RATE

    if not 0 < rate <= MAX_RATE:
        raise typer.BadParameter(f"must be in (0, {MAX_RATE:g}] events/s", param_hint="--rate")
    if not 0 < duration <= MAX_DURATION:
        raise typer.BadParameter(f"must be in (0, {MAX_DURATION:g}] seconds", param_hint="--duration")


def _ms(p: dict[str, Any], key: str) -> str:
    value = p.get(key)
    return "—" if value is None else f"{value:,.0f}"


def render(results: list[Any], accounting: dict[str, Any] | None, console: Console) -> None:
    table = Table(title="load", title_justify="left")
    for column in ("pipeline", "offered/s", "sent", "completed", "sustained/s", "gen p50/p95/p99 ms",
                   "e2e p50/p95/p99 ms", "drained"):
        table.add_column(column)
    for r in results:
        table.add_row(r.pipeline, f"{r.offered_rate:g}", str(r.sent), str(r.completed), f"{r.sustained_rate:.2f}",
                      " / ".join(_ms(r.generation_ms, k) for k in ("p50", "p95", "p99")),
                      " / ".join(_ms(r.end_to_end_ms, k) for k in ("p50", "p95", "p99")),
                      "yes" if r.drained else styled("no", "red"))
    console.print(table)
    product = next((r for r in results if r.pipeline == "product"), None)
    bare = next((r for r in results if r.pipeline == "bare moto"), None)
    if product and bare and bare.sustained_rate:
        ratio = product.sustained_rate / bare.sustained_rate
        colour = "green" if ratio >= 0.8 else "red"
        console.print(styled("product / bare sustained rate: ") + styled(f"{ratio:.2f}×", colour)
                      + styled(" (target ≥ 0.80×)"))
    if accounting:
        console.print(f"accounted for: {accounting['accounted_pct']}% of {accounting['offered']} "
                      f"({', '.join(f'{k} {v}' for k, v in sorted(accounting['outcomes'].items()))}); "
                      f"broken audit chains: {accounting['chains_broken_count']}")


def load(rate: float = typer.Option(10.0, "--rate", help="events offered per second"),
         duration: float = typer.Option(20.0, "--duration", help="seconds of driving"),
         stack: str = typer.Option(None, "--stack", help="drive a deployed stack (AWS) instead of the "
                                                          "embedded runtime"),
         tenant: str = typer.Option("acme", "--tenant", help="tenant the events are sent for"),
         bare: bool = typer.Option(True, "--bare/--no-bare", help="also drive the bare-moto reference pipeline"),
         drain_timeout: float = typer.Option(300.0, "--drain-timeout", help="seconds to wait for the backlog"),
         heat: bool = typer.Option(False, "--heat", help="measure the product alone: requests, DynamoDB write "
                                   "units and writes per (table, index, key) per second, scaled to --target-rate"),
         target_rate: float = typer.Option(2000.0, "--target-rate", help="events/s of one tenant the heat is "
                                           "scaled to"),
         out: Path = typer.Option(None, "--out", help="with --heat: write the profile (JSON) here, for "
                                  "`powerx-agent cost --profile`"),
         fmt: str = FormatOpt, query: str = QueryOpt,
         output_json: bool = typer.Option(False, "--json", hidden=True)) -> None:
    """Offer RATE events/s for DURATION s; report sustained rate and generation / end-to-end latency."""
    from powerx_agent import loadtest as lib

    output = Output("json" if output_json else fmt, query)
    _check(rate, duration)
    console = err()
    if heat:
        if stack:
            raise typer.BadParameter("needs the embedded runtime: on AWS, read the hot keys from CloudWatch "
                                     "Contributor Insights for DynamoDB (docs/capacity.md)", param_hint="--heat")
        if not 0 < target_rate <= 1_000_000:
            raise typer.BadParameter("must be in (0, 1000000] events/s", param_hint="--target-rate")
        raise typer.Exit(_heat(rate, duration, tenant, drain_timeout, target_rate, out, output, console))
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=True)
    tasks: dict[str, Any] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done, total=total)

    results = []
    accounting = None
    if stack:
        from powerx_agent.cli.connect import Target, configure
        from powerx_agent.deps import get_deps

        configure(Target(stack=stack))
        with progress:
            results.append(lib.run_stack(get_deps(), rate, duration, tenant=tenant, drain_timeout=drain_timeout,
                                         progress=report))
    else:
        from powerx_agent.deps import get_deps
        from powerx_agent.local.runtime import LocalRuntime

        with console.status("starting the embedded runtime on 127.0.0.1..."):
            runtime = LocalRuntime.start()
        try:
            with progress:
                if bare:
                    tasks.clear()
                    results.append(lib.run_bare(runtime, rate, duration, drain_timeout=drain_timeout,
                                                progress=lambda s, d, t: report(f"bare {s}", d, t)))
                product, produced = lib.run_product(runtime, rate, duration, drain_timeout=drain_timeout,
                                                    tenant=tenant,
                                                    progress=lambda s, d, t: report(f"product {s}", d, t))
                results.append(product)
            accounting = lib.account(get_deps(), produced, tenant)
        finally:
            lib.teardown_bare(runtime)
            runtime.stop()
    output.emit({"results": [r.to_dict() for r in results], "accounting": accounting},
                lambda console: render(results, accounting, console))
    unfinished = any(not r.drained for r in results) or (accounting and accounting["unaccounted_count"])
    raise typer.Exit(1 if unfinished else 0)


HOT_KEY_LIMIT = 100.0
"""Write units per second one partition-key value may see at the target rate: a tenth of the 1,000
WCU a partition serves (docs/capacity.md)."""


def _heat(rate: float, duration: float, tenant: str, drain_timeout: float, target_rate: float, out: Path | None,
          output: Output, console: Console) -> int:
    from powerx_agent.audit.shards import shard_family
    from powerx_agent.loadtest.profile import measure
    from powerx_agent.local.runtime import LocalRuntime

    with console.status("starting the embedded runtime on 127.0.0.1..."):
        runtime = LocalRuntime.start()
    try:
        with console.status(f"driving {rate:g}/s for {duration:g} s and draining..."):
            profile = measure(runtime, events=max(1, int(round(rate * duration))), rate=rate, tenant=tenant,
                              drain_timeout=drain_timeout, target_rate=target_rate, shards=shard_family)
    finally:
        runtime.stop()
    if out:
        out.write_text(json.dumps(profile, indent=2, default=str))
    hot = [r for r in profile["heat"] if r["at_target"] > HOT_KEY_LIMIT]
    output.emit(profile, lambda stdout: render_heat(profile, target_rate, stdout))
    return 1 if hot or not profile["run"]["drained"] else 0


def render_heat(profile: dict[str, Any], target_rate: float, console: Console) -> None:
    run = profile["run"]
    console.print(f"{run['events']} C-1 events at {run['rate']:g}/s (tenant {run['tenant']}); per accepted event: "
                  f"{profile['requests_total']} AWS requests, {profile['dynamodb_write_requests']} DynamoDB write "
                  f"requests, {profile['index_writes']} index writes, {profile['wru']} + {profile['index_wru']} write "
                  f"units (tables + indexes), {profile['strongly_consistent_reads']} strongly consistent reads")
    table = Table(title=f"write units per key, scaled to {target_rate:,.0f} events/s of one tenant",
                  title_justify="left")
    for column in ("table", "index", "partition key", "kind", "units/event", "peak/s measured",
                   f"at {target_rate:,.0f}/s"):
        table.add_column(column)
    for row in profile["heat"][:15]:
        colour = "red" if row["at_target"] > HOT_KEY_LIMIT else "green"
        table.add_row(row["table"], row["index"] or "—", styled(row["key"]), row["kind"],
                      f"{row['per_event']:g}", str(row["peak_measured"]), styled(f"{row['at_target']:,.0f}", colour))
    console.print(table)
    hot = [r for r in profile["heat"] if r["at_target"] > HOT_KEY_LIMIT]
    console.print(styled(f"keys above {HOT_KEY_LIMIT:g} WCU/s at {target_rate:,.0f}/s: ")
                  + (styled(str(len(hot)), "red") if hot else styled("none", "green")))


def register(local_app: typer.Typer) -> None:
    """Add ``load`` to the ``local`` sub-app (called by the CLI's wiring)."""
    local_app.command("load")(load)
