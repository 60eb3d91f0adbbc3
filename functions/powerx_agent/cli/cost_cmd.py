"""``powerx-agent cost``: what one million C-1 events cost on AWS, per service, beside a hand-wired
pipeline (docs/cost.md). The counts come from a measured run on the embedded runtime (or a profile
written by ``powerx-agent local load --heat --out FILE``); the arithmetic is :mod:`powerx_agent.ops.cost`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from powerx_agent.cli._common import FormatOpt, Output, QueryOpt, err, styled

TARGET_RATIO = 2.0


def _memory() -> dict[str, int]:
    from powerx_agent import spec

    return {f.name.removeprefix("powerx-agent-"): f.memory for f in spec.FUNCTIONS}


def bills(profile: dict[str, Any]) -> dict[str, Any]:
    from powerx_agent.ops import cost

    assumptions = cost.Assumptions()
    product = cost.product_bill(profile, assumptions, _memory())
    anchor = cost.anchor_bill(assumptions)
    return {"prices_checked": cost.PRICES_CHECKED, "region": cost.REGION, "assumptions": assumptions.__dict__,
            "product": product.to_dict(), "anchor": anchor.to_dict(), "comparison": cost.compare(product, anchor),
            "target_ratio": TARGET_RATIO}


def render(result: dict[str, Any], profile: dict[str, Any], console: Console) -> None:
    comparison = result["comparison"]
    table = Table(title=f"$ per million C-1 events, {result['region']} list prices checked {result['prices_checked']}",
                  title_justify="left")
    for column in ("service", "product", "hand-wired anchor"):
        table.add_column(column, justify="right" if column != "service" else "left")
    for row in comparison["rows"]:
        table.add_row(row["service"], f"{row['product']:,.2f}", f"{row['anchor']:,.2f}")
    table.add_row(styled("total", "bold"), styled(f"{comparison['product']:,.2f}", "bold"),
                  styled(f"{comparison['anchor']:,.2f}", "bold"))
    console.print(table)
    ratio = comparison["ratio"] or 0.0
    colour = "green" if ratio <= result["target_ratio"] else "red"
    console.print(styled("product / anchor: ") + styled(f"{ratio:.2f}×", colour)
                  + styled(f" (target ≤ {result['target_ratio']:g}×); measured on "
                           f"{profile.get('run', {}).get('events', '?')} events: {profile.get('requests_total')} AWS "
                           f"requests, {profile.get('wru')} + {profile.get('index_wru')} write units per event"))


def cost(profile_file: Path = typer.Option(None, "--profile", help="a profile from `powerx-agent local load "
                                           "--heat --out FILE` (default: measure one now on the embedded runtime)"),
         rate: float = typer.Option(10.0, "--rate", help="events/s offered when measuring"),
         events: int = typer.Option(40, "--events", help="events offered when measuring"),
         fmt: str = FormatOpt, query: str = QueryOpt,
         output_json: bool = typer.Option(False, "--json", hidden=True)) -> None:
    """Dollars per million C-1 events per service, product beside the hand-wired anchor."""
    output = Output("json" if output_json else fmt, query)
    console = err()
    if not 0 < rate <= 200:
        raise typer.BadParameter("must be in (0, 200] events/s", param_hint="--rate")
    if not 1 <= events <= 2000:
        raise typer.BadParameter("must be in [1, 2000]", param_hint="--events")
    if profile_file is not None:
        try:
            profile = json.loads(profile_file.read_text())
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"cannot read a profile from {profile_file}: {exc}", param_hint="--profile") \
                from exc
        if not isinstance(profile, dict) or "requests" not in profile:
            raise typer.BadParameter(f"{profile_file} is not a profile (no 'requests')", param_hint="--profile")
    else:
        from powerx_agent.loadtest.profile import measure
        from powerx_agent.local.runtime import LocalRuntime

        with console.status("starting the embedded runtime on 127.0.0.1..."):
            runtime = LocalRuntime.start()
        try:
            with console.status(f"measuring {events} C-1 events at {rate:g}/s..."):
                profile = measure(runtime, events=events, rate=rate)
        finally:
            runtime.stop()
    result = bills(profile)
    output.emit({**result, "profile": profile}, lambda stdout: render(result, profile, stdout))


def register(app: typer.Typer) -> None:
    app.command("cost")(cost)
