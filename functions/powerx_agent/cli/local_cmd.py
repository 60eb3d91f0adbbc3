"""``powerx-agent local demo | serve``: the embedded runtime from the command line."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from powerx_agent.cli import sandbox_cmd, serve_cmd
from powerx_agent.cli._common import FormatOpt, Output, QueryOpt, err, out, status_text, styled, table

app = typer.Typer(help="Embedded local runtime: moto server + sandbox services, no AWS account.",
                  no_args_is_help=True)


def _ms(value: Any) -> str:
    return f"{float(value):.0f} ms" if isinstance(value, int | float) else "—"


def render_report(results: list[Any], console: Console) -> None:
    for result in results:
        colour = "green" if result.ok else "red"
        console.print(styled(f"── {result.name} {result.title}  ", "bold") + styled("PASS" if result.ok else "FAIL", colour))
        wf = result.workflow or {}
        facts = Table.grid(padding=(0, 2))
        facts.add_column(style="bold")
        facts.add_column()
        facts.add_row("event", f"{result.event_type}  id={result.event_id}")
        selected = (result.decision or {}).get("selected")
        facts.add_row("decision", (f"{selected['strategy_id']} v{selected['version']} (weight {selected['weight']})"
                                   if selected else "no strategy matched"))
        facts.add_row("why", result.decision_reason or "—")
        facts.add_row("workflow", result.workflow_id + ("" if wf else "  (no workflow: escalated before start)"))
        if wf:
            facts.add_row("state machine", f"{wf.get('state_machine_arn', '').rsplit(':', 1)[-1]}  "
                                           f"[{wf.get('state_machine_type')}] {wf.get('type_reason', '')}")
            facts.add_row("execution", f"{result.execution_status}  (workflow {wf.get('status')})")
        event = result.event_record or {}
        facts.add_row("event record", f"{event.get('status')} / {event.get('outcome')}")
        facts.add_row("took", f"{result.seconds:.2f} s")
        console.print(facts)
        if wf.get("nodes"):
            ordered = sorted(wf["nodes"].items(),
                             key=lambda kv: kv[1].get("last_attempt_at") or kv[1].get("updated_at") or 0)
            console.print(table("node", "kind", "status", "attempts", "duration", "detail", ids=("node",),
                                title="nodes", rows=[
                                    (node_id, node.get("kind", "—"), status_text(node.get("status", "")),
                                     node.get("attempts", 0), _ms(node.get("duration")),
                                     node.get("reason") or (node.get("error") or {}).get("message") or "")
                                    for node_id, node in ordered]))
        calls = Table(title="downstream calls", title_justify="left", show_edge=False)
        for column in ("call", "status", "key headers / body"):
            calls.add_column(column, overflow="fold")
        for call in result.downstream:
            headers = call["headers"]
            body = call["body"] or {}
            summary = (f"Idempotency-Key={headers.get('Idempotency-Key')} traceparent={headers.get('traceparent')}"
                       if call["path"].startswith("/plugin") else
                       json.dumps({k: body.get(k) for k in ("type", "reason", "queue", "to") if k in body}))
            calls.add_row(f"POST {call['path']}", str(call["status"]), summary)
        console.print(calls)
        console.print(f"audit trail: {len(result.audit)} records, chain WF#{result.workflow_id}: "
                      + ", ".join(r["kind"] for r in result.audit))
        for what, holds in result.expectations:
            console.print(styled("  ") + (styled("✓", "green") if holds else styled("✗", "red")) + styled(f" {what}"))
        console.print()


@app.command("demo")
def demo(fmt: str = FormatOpt, query: str = QueryOpt,
         output_json: bool = typer.Option(False, "--json", hidden=True)) -> None:
    """Start the embedded runtime, run scenarios C-1 and C-2, print a report; exit 1 if one misbehaves."""
    from powerx_agent.local.demo import run_all
    from powerx_agent.local.runtime import LocalRuntime

    output = Output("json" if output_json else fmt, query)
    console = out()
    with err().status("starting the embedded runtime (moto server, sandbox services, resources)..."):
        runtime = LocalRuntime.start()
    try:
        if output.text:
            console.print(Panel.fit(
                f"moto server  http://127.0.0.1:{runtime.port}   (Step Functions executor on)\n"
                f"sandbox      {runtime.sandbox.url}   (plugin runtime, notifications, ops)\n"
                f"internal API {runtime.api.url if runtime.api else '-'}   (replay, callbacks; signed)",
                title="PowerX Agent Taskflow: embedded runtime"))
        with err().status("running scenarios C-1 and C-2..."):
            results = run_all(runtime)
    finally:
        runtime.stop()
    passed = sum(r.ok for r in results)

    def text(console: Console) -> None:
        render_report(results, console)
        console.print(styled(f"{passed}/{len(results)} scenarios behaved as expected", "bold"))

    output.emit([{"name": r.name, "ok": r.ok, "workflow_id": r.workflow_id, "execution_status": r.execution_status,
                  "expectations": r.expectations} for r in results], text)
    raise typer.Exit(0 if passed == len(results) else 1)


serve_cmd.register(app)  # powerx-agent local serve [--port P] [--state-dir DIR] [--reset] [--logs]
sandbox_cmd.register(app)  # powerx-agent local sandbox fail|flaky|slow|down|up|async|reset|status
