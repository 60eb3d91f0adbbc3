"""``powerx-agent audit verify | show``: prove the audit trail complete and unaltered (exit 1 on any gap);
read one chain record by record."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from powerx_agent.cli._common import (
    FormatOpt,
    ListFormatOpt,
    Output,
    QueryOpt,
    check_window,
    run_logic,
    status_text,
    styled,
    table,
)

app = typer.Typer(help="Audit trail: verify completeness and integrity, show a chain.", no_args_is_help=True)


@app.command("verify")
def verify_cmd(tenant: str = typer.Option(None, "--tenant", help="only this tenant's events and workflows"),
               since: str = typer.Option(None, "--since",
                                         help="only records since an ISO time (2026-11-28T10:00:00Z) or 15m/2h/3d",
                                         callback=check_window),
               stale_after: float = typer.Option(900.0, "--stale-after",
                                                 help="seconds after which an IN_PROGRESS event is stuck, "
                                                      "not in flight"),
               publish: bool = typer.Option(False, "--publish",
                                            help="also put the completeness % as the CloudWatch metric "
                                                 "agent.audit.completeness (dashboards; schedule it)"),
               fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Each accepted event has a decision and a terminal outcome; every chain is complete and unaltered."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.audit import verify

    output = Output(fmt, query)
    deps = connect()
    try:
        report = verify(deps, tenant=tenant, since=since, stale_after=stale_after)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    if publish:
        from powerx_agent.adapters.metrics import put_completeness

        put_completeness(deps.client("cloudwatch"), report.completeness)

    def text(console: Console) -> None:
        scope = " ".join(x for x in (f"tenant {tenant}" if tenant else "", f"since {since}" if since else "") if x)
        console.print(f"audit verify{' (' + scope + ')' if scope else ''}: {report.chains} chains, "
                      f"{report.records} records, {report.events} event records, {report.workflows} workflows")
        for gap in report.gaps:
            console.print(styled("GAP ", "red") + styled(str(gap)))
        for hole in report.rebased:
            console.print(styled("rebased ", "yellow") + styled(
                f"{hole['chain']}: record(s) {hole['missing_seqs']} lost, accounted for by chain.rebased at seq "
                f"{hole['rebased_by_seq']}"))
        for item in report.in_flight:
            console.print(styled("in flight ", "blue") + styled(f"{item['unit']} ({item.get('status')})"))
        finished = report.units - len(report.in_flight)
        console.print(f"Completeness: {report.completeness:.2f}% ({report.complete} of {finished} complete, "
                      f"{len(report.in_flight)} in flight, {len(report.gaps)} gap(s))")

    output.emit(report.to_dict(), text)
    if not report.ok:
        raise typer.Exit(1)


@app.command("show")
def show_cmd(chain: str = typer.Argument(..., help="a chain (WF#<workflow id>, STRAT#<strategy>, OPS#flags, "
                                                   "OPS#repair, REJ#...) or a workflow id"),
             fmt: str = ListFormatOpt, query: str = QueryOpt) -> None:
    """Every record of one audit chain in order, and whether the chain is intact (exit 1 when it is not)."""
    from powerx_agent.cli.connect import connect
    from powerx_agent.ops.audit import show_chain

    output = Output(fmt, query, ("text", "json", "jsonl"))
    shown = run_logic(lambda: show_chain(connect(), chain))

    def text(console: Console) -> None:
        console.print(table("seq", "time", "kind", "status", "node", "details", ids=("kind",), rows=[
            (r["seq"], r["ts"], r["kind"], status_text(r.get("status")) if r.get("status") else "", r.get("node_id") or "",
             json.dumps(r.get("data") or {}, default=str, ensure_ascii=False, separators=(",", ":")))
            for r in shown["records"]]))
        for gap in shown["gaps"]:
            console.print(styled("GAP ", "red") + styled(f"seq {gap.get('seq')}: [{gap['code']}] {gap['message']}"))
        for hole in shown["rebased"]:
            console.print(styled("rebased ", "yellow") + styled(f"record(s) {hole['missing_seqs']} lost, accounted "
                                                                f"for by chain.rebased at seq {hole['rebased_by_seq']}"))
        verdict = "intact" if shown["ok"] else "BROKEN"
        console.print(f"{shown['chain']}: {len(shown['records'])} record(s), chain {verdict}")

    output.emit(shown["records"] if fmt == "jsonl" else shown, text)
    if not shown["ok"]:
        raise typer.Exit(1)
