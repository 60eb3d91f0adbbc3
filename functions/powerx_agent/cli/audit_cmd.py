"""``powerx-agent audit verify``: prove the audit trail complete and unaltered (exit 1 on any gap)."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(help="Audit trail: verify completeness and integrity.", no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)


def check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"--format must be text or json, not {fmt!r}", param_hint="--format")


@app.command("verify")
def verify_cmd(tenant: str = typer.Option(None, "--tenant", help="only this tenant's events and workflows"),
               since: str = typer.Option(None, "--since",
                                         help="only records since an ISO time (2026-11-28T10:00:00Z) or 15m/2h/3d"),
               stale_after: float = typer.Option(900.0, "--stale-after",
                                                 help="seconds after which an IN_PROGRESS event is stuck, "
                                                      "not in flight"),
               fmt: str = typer.Option("text", "--format", help="text | json"),
               publish: bool = typer.Option(False, "--publish",
                                            help="also put the completeness % as the CloudWatch metric "
                                                 "agent.audit.completeness (dashboards; schedule it)")) -> None:
    """Each accepted event has a decision and a terminal outcome; every chain is complete and unaltered."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.audit import verify

    check_format(fmt)
    deps = connect()
    try:
        report = verify(deps, tenant=tenant, since=since, stale_after=stale_after)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    if publish:
        from powerx_agent.adapters.metrics import put_completeness

        put_completeness(deps.client("cloudwatch"), report.completeness)
    if fmt == "json":
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        scope = " ".join(x for x in (f"tenant {tenant}" if tenant else "", f"since {since}" if since else "") if x)
        console.print(f"audit verify{' (' + scope + ')' if scope else ''}: {report.chains} chains, "
                      f"{report.records} records, {report.events} event records, {report.workflows} workflows")
        for gap in report.gaps:
            console.print(f"[red]GAP[/red] {escape(str(gap))}")
        for hole in report.rebased:
            console.print(f"[yellow]rebased[/yellow] {hole['chain']}: record(s) {hole['missing_seqs']} lost, "
                          f"accounted for by chain.rebased at seq {hole['rebased_by_seq']}")
        for item in report.in_flight:
            console.print(f"[blue]in flight[/blue] {item['unit']} ({item.get('status')})")
        finished = report.units - len(report.in_flight)
        console.print(f"Completeness: {report.completeness:.2f}% ({report.complete} of {finished} complete, "
                      f"{len(report.in_flight)} in flight, {len(report.gaps)} gap(s))")
    if not report.ok:
        raise typer.Exit(1)
