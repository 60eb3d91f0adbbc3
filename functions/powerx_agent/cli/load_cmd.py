"""``powerx-agent local load``: offer events at a fixed rate and report what the pipeline sustained.

Wired by ``register(local_app)`` (adds the ``load`` command to the ``local`` sub-app). The logic
lives in :mod:`powerx_agent.local.load`.

- default: starts the embedded runtime on 127.0.0.1 (loopback only) and, in the same run, drives
  the product pipeline and a bare-moto pipeline of the same shape (``--no-bare`` skips it).
- ``--stack NAME``: drives a deployed stack instead (needs AWS credentials; events go to the
  stack's bus, completion is read from its audit table).
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()


def _check(rate: float, duration: float) -> None:
    from powerx_agent.local.load import MAX_DURATION, MAX_RATE

    if not 0 < rate <= MAX_RATE:
        raise typer.BadParameter(f"must be in (0, {MAX_RATE:g}] events/s", param_hint="--rate")
    if not 0 < duration <= MAX_DURATION:
        raise typer.BadParameter(f"must be in (0, {MAX_DURATION:g}] seconds", param_hint="--duration")


def _ms(p: dict[str, Any], key: str) -> str:
    value = p.get(key)
    return "—" if value is None else f"{value:,.0f}"


def render(results: list[Any], accounting: dict[str, Any] | None = None) -> None:
    table = Table(title="load", title_justify="left")
    for column in ("pipeline", "offered/s", "sent", "completed", "sustained/s", "gen p50/p95/p99 ms",
                   "e2e p50/p95/p99 ms", "drained"):
        table.add_column(column)
    for r in results:
        table.add_row(r.pipeline, f"{r.offered_rate:g}", str(r.sent), str(r.completed), f"{r.sustained_rate:.2f}",
                      " / ".join(_ms(r.generation_ms, k) for k in ("p50", "p95", "p99")),
                      " / ".join(_ms(r.end_to_end_ms, k) for k in ("p50", "p95", "p99")),
                      "yes" if r.drained else "[red]no[/]")
    console.print(table)
    product = next((r for r in results if r.pipeline == "product"), None)
    bare = next((r for r in results if r.pipeline == "bare moto"), None)
    if product and bare and bare.sustained_rate:
        ratio = product.sustained_rate / bare.sustained_rate
        colour = "green" if ratio >= 0.8 else "red"
        console.print(f"product / bare sustained rate: [{colour}]{ratio:.2f}×[/] (target ≥ 0.80×)")
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
         output_json: bool = typer.Option(False, "--json", help="print the results as JSON")) -> None:
    """Offer RATE events/s for DURATION s; report sustained rate and generation / end-to-end latency."""
    from powerx_agent.local import load as lib

    _check(rate, duration)
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
    if output_json:
        console.print_json(json.dumps({"results": [r.to_dict() for r in results], "accounting": accounting},
                                      default=str))
    else:
        render(results, accounting)
    unfinished = any(not r.drained for r in results) or (accounting and accounting["unaccounted_count"])
    raise typer.Exit(1 if unfinished else 0)


def register(local_app: typer.Typer) -> None:
    """Add ``load`` to the ``local`` sub-app (called by the CLI's wiring)."""
    local_app.command("load")(load)
