"""``powerx-agent local serve``: keep the embedded runtime up until Ctrl-C, on predictable ports, with its
data kept across restarts and its function logs streamed, and print what the AWS CLI needs."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import typer

from powerx_agent.cli._common import FormatOpt, Output, QueryOpt
from powerx_agent.local.ports import SPAN
from powerx_agent.settings import Env

REGION = "us-east-1"


def _say(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def log_printer(phase: str, context: Any, info: dict[str, Any]) -> None:
    """Lambda's own START / END / REPORT lines, prefixed with the function, as `sam local` shows them."""
    name = context.function_name
    if phase == "start":
        _say(f"[{name}] START RequestId: {context.aws_request_id} Version: {context.function_version}")
        return
    if info.get("errored"):
        error = info.get("error") or {}
        _say(f"[{name}] ERROR {error.get('errorType')}: {error.get('errorMessage')}")
        for line in str(info.get("logs") or "").splitlines():
            _say(f"[{name}]   {line}")
    _say(f"[{name}] END RequestId: {context.aws_request_id}")
    _say(f"[{name}] REPORT RequestId: {context.aws_request_id} Duration: {info.get('duration_ms', 0):.2f} ms "
         f"Status: {'error' if info.get('errored') else 'ok'}")


def exports(endpoint: str, sandbox: str) -> dict[str, str]:
    return {Env.AWS_ENDPOINT_URL: endpoint, Env.AWS_DEFAULT_REGION: REGION, Env.AWS_REGION: REGION,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "POWERX_SANDBOX_URL": sandbox}


def serve(port: int = typer.Option(0, "--port", min=0, max=65535 - SPAN,
                                   help="AWS endpoint on PORT, sandbox PORT+1, internal API PORT+2, console "
                                        "PORT+3 (0: free ports)"),
          state_dir: Path = typer.Option(None, "--state-dir", file_okay=False,
                                         help="keep the tables here across restarts (saved at Ctrl-C)"),
          reset: bool = typer.Option(False, "--reset", help="start from nothing: discard the saved state first"),
          logs: bool = typer.Option(False, "--logs", help="stream function invocations and logs as they happen"),
          console: bool = typer.Option(True, "--console/--no-console", help="serve the operations console too"),
          by: str = typer.Option(None, "--by", help="who acts in the console (audited); default $USER"),
          fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Keep the embedded runtime up until Ctrl-C; prints the endpoints and the variables the AWS CLI needs
    (--format json: one JSON object, for a script that starts it)."""
    output = Output(fmt, query)
    from powerx_agent.local import motopatch
    from powerx_agent.local.ports import busy, service_ports
    from powerx_agent.local.runtime import LocalRuntime
    from powerx_agent.local.state import StateDir

    # everything is checked before anything starts
    if reset and state_dir is None:
        raise typer.BadParameter("--reset discards a saved state: give --state-dir too", param_hint="--reset")
    try:
        ports = service_ports(port)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--port") from None
    taken = busy(ports)
    if taken:
        sys.stderr.write(f"error: port(s) {', '.join(map(str, taken))} already in use: another `local serve`? "
                         f"Pick another --port (it uses {SPAN} ports from PORT).\n")
        raise typer.Exit(1)
    state = StateDir(state_dir) if state_dir else None
    if state and reset and state.reset():
        _say(f"state         {state_dir}: discarded (--reset)")
    try:
        saved = state.load() if state else {}
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(1) from None

    remove = motopatch.add_invocation_listener(log_printer) if logs else None
    if not logs:  # moto's executor logs each failed execution's internals; --logs shows them
        logging.getLogger("moto").setLevel(logging.CRITICAL)
    runtime = LocalRuntime.start(port=port, state_dir=state_dir, log_level="INFO" if logs else "ERROR")
    server = _console(runtime, ports.console, by) if console else None
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    endpoint = f"http://127.0.0.1:{runtime.port}"
    variables = exports(endpoint, runtime.sandbox.url)
    if not output.text:
        output.emit({"endpoint_url": endpoint, "sandbox_url": runtime.sandbox.url,
                     "api_url": runtime.api.url if runtime.api else None, "console_url": server.url if server else None,
                     "state_dir": str(state_dir) if state_dir else None, "environment": variables})
    else:
        _banner(endpoint, runtime, server, state, state_dir, saved, logs, variables)
    try:
        stop.wait()
    finally:
        if remove:
            remove()
        if server:
            server.stop()
        runtime.stop()
        if state:
            _say(f"state saved to {state.file}")


def _banner(endpoint: str, runtime: Any, server: Any, state: Any, state_dir: Path | None, saved: Any, logs: bool,
            variables: dict[str, str]) -> None:
    _say("PowerX Agent Taskflow: embedded runtime")
    _say(f"AWS endpoint  {endpoint}   (moto, Step Functions executor on)")
    _say(f"sandbox       {runtime.sandbox.url}   (plugin runtime, notifications, ops: `local sandbox --help`)")
    _say(f"internal API  {runtime.api.url if runtime.api else '-'}   (replay, callbacks; signed)")
    if state:
        restored = sum(runtime.restored.values())
        _say(f"state         {state_dir}   ({f'restored {restored} items' if saved else 'new'}; saved at Ctrl-C)")
    else:
        _say("state         in memory (--state-dir DIR keeps it across restarts)")
    _say(f"console       {server.url if server else 'off (--no-console)'}")
    _say(f"logs          {'streamed below (--logs)' if logs else 'off (--logs streams them)'}")
    _say("# for the AWS CLI and powerx-agent:")
    _say("export " + " ".join(f"{k}={v}" for k, v in variables.items()))
    _say("Ctrl-C stops it.")


def _console(runtime: Any, port: int, by: str | None) -> Any:
    from powerx_agent.cli._common import default_actor
    from powerx_agent.console.app import ConsoleContext
    from powerx_agent.console.server import ConsoleServer
    from powerx_agent.deps import get_deps

    context = ConsoleContext(get_deps, (by or default_actor()).strip() or "operator",
                             f"embedded runtime http://127.0.0.1:{runtime.port}")
    return ConsoleServer(context, port).start()


def register(local_app: typer.Typer) -> None:
    local_app.command("serve")(serve)
