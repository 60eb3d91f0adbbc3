"""``powerx-agent console [--endpoint-url URL | --stack NAME] [--port P] [--by NAME]``: the operations
console on 127.0.0.1, with the operator's own credentials (docs/console.md)."""

from __future__ import annotations

import os
import signal
import sys
import threading

import typer

from powerx_agent.cli import connect
from powerx_agent.cli._common import FormatOpt, Output, QueryOpt, default_actor
from powerx_agent.settings import Env


def describe_target() -> str:
    target = connect._target
    if target.stack:
        return f"stack {target.stack}"
    endpoint = target.endpoint_url or os.environ.get(Env.AWS_ENDPOINT_URL)
    return f"endpoint {endpoint}" if endpoint else f"AWS {os.environ.get(Env.AWS_REGION) or ''}".strip()


def console(endpoint_url: str = typer.Option(None, "--endpoint-url", help="AWS endpoint (the embedded runtime)"),
            stack: str = typer.Option(None, "--stack", help="a deployed stack whose outputs name the resources"),
            port: int = typer.Option(8787, "--port", min=0, max=65535, help="port on 127.0.0.1 (0: a free one)"),
            by: str = typer.Option(None, "--by", help="who acts (audited); default $POWERX_ACTOR or $USER"),
            fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Serve the operations console on 127.0.0.1 until Ctrl-C; whatever your IAM permits, it permits."""
    output = Output(fmt, query)
    from powerx_agent.console.app import ConsoleContext
    from powerx_agent.console.server import ConsoleServer

    if endpoint_url and stack:
        raise typer.BadParameter("give --endpoint-url or --stack, not both", param_hint="--endpoint-url / --stack")
    if endpoint_url:
        connect._target.endpoint_url = endpoint_url
    if stack:
        connect._target.stack = stack
    actor = (by or default_actor()).strip()
    if not actor or len(actor) > 128:
        raise typer.BadParameter("1 to 128 characters", param_hint="--by")
    deps = connect.connect()  # checks the target (e.g. the stack's outputs) before serving anything
    try:
        server = ConsoleServer(ConsoleContext(lambda: deps, actor, describe_target()), port)
    except OSError as exc:
        sys.stderr.write(f"error: cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port\n")
        raise typer.Exit(1) from None
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    if output.text:
        sys.stdout.write(f"console       {server.url}   ({describe_target()}, acting as {actor})\nCtrl-C stops it.\n")
        sys.stdout.flush()
    else:
        output.emit({"console_url": server.url, "target": describe_target(), "actor": actor})
    try:
        stop.wait()
    finally:
        server.stop()


def register(app: typer.Typer) -> None:
    app.command("console")(console)
