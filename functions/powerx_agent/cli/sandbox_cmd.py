"""``powerx-agent local sandbox ...``: inject faults into the downstream services of a running ``local serve``
(the plugin runtime, notifications, ops) to walk the retry, escalation and callback paths by hand.

The sandbox is found at ``--sandbox-url`` / ``$POWERX_SANDBOX_URL`` (``local serve`` prints it), else at
``$PLUGIN_RUNTIME_URL``, else next to the AWS endpoint (``--endpoint-url`` port + 1, where ``local serve
--port`` puts it). Loopback only: the sandbox is a local test double, never a deployed service.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any
from urllib.parse import urlparse

import typer

from powerx_agent.cli import connect
from powerx_agent.cli._common import FormatOpt, Output, QueryOpt
from powerx_agent.settings import Env
from powerx_agent.taskflow.model import PLUGIN_ID_RE

app = typer.Typer(help="Fault injection in the sandbox services of `local serve`: fail, flaky, slow, down, async.",
                  no_args_is_help=True)
_url: dict[str, str | None] = {"value": None}
_PLUGIN = re.compile(PLUGIN_ID_RE)
SERVICES = ("notifications", "ops")


@app.callback()
def main(sandbox_url: str = typer.Option(None, "--sandbox-url", envvar="POWERX_SANDBOX_URL",
                                         help="the sandbox (printed by `local serve`)")) -> None:
    """Faults apply to the next calls; `reset` puts every service back to normal."""
    _url["value"] = sandbox_url


def sandbox_url() -> str:
    url = _url["value"] or os.environ.get(Env.PLUGIN_RUNTIME_URL)
    if not url:
        endpoint = connect._target.endpoint_url or os.environ.get(Env.AWS_ENDPOINT_URL)
        parsed = urlparse(endpoint or "")
        if not (endpoint and connect.is_loopback(endpoint) and parsed.port):
            raise typer.BadParameter("no sandbox given: pass --sandbox-url (printed by `local serve`) or "
                                     "--endpoint-url of a local serve started with --port",
                                     param_hint="--sandbox-url")
        url = f"{parsed.scheme}://{parsed.hostname}:{parsed.port + 1}"
    if not connect.is_loopback(url) or not urlparse(url).scheme.startswith("http"):
        raise typer.BadParameter(f"{url!r}: the sandbox is reached on loopback only (http://127.0.0.1:PORT)",
                                 param_hint="--sandbox-url")
    return url


def _plugin(plugin: str) -> str:
    if not _PLUGIN.fullmatch(plugin) or ".." in plugin:
        raise typer.BadParameter(f"{plugin[:64]!r} is not a plugin id (lowercase letters, digits, '.', '_', '-')",
                                 param_hint="PLUGIN")
    return plugin


def _describe(state: dict[str, Any]) -> str:
    lines = []
    for plugin, b in state.get("plugins", {}).items():
        mode = b["mode"]
        left = "always" if b["remaining"] < 0 else f"next {b['remaining']} call(s)"
        lines.append({"fail": f"plugin {plugin}: answers {b['status']} ({left})",
                      "flaky": f"plugin {plugin}: answers {b['status']} with probability {b['rate']:g}",
                      "slow": f"plugin {plugin}: answers after {b['delay']:g} s ({left})",
                      "async": f"plugin {plugin}: answers 202, calls back '{b['outcome']}' after {b['delay']:g} s",
                      }.get(mode, f"plugin {plugin}: {mode}"))
    for service, state_ in state.get("services", {}).items():
        transient = state.get("service_failures", {}).get(service)
        lines.append(f"{service}: {state_}" + (f" (next {transient} call(s) answer 503)" if transient else ""))
    lines.append(f"{state.get('calls', 0)} downstream call(s) recorded")
    return "\n".join(lines)


def _run(fmt: str, query: str | None, call: Any) -> None:
    from powerx_agent.local.sandbox_control import SandboxClient, SandboxUnreachable

    output = Output(fmt, query)
    try:
        status, answer = call(SandboxClient(sandbox_url()))
    except SandboxUnreachable as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(1) from None
    if status != 200:
        sys.stderr.write(f"{answer.get('code', status)}: {answer.get('message', answer)}\n")
        raise typer.Exit(1)
    if not output.text:
        output.emit(answer)
    elif "calls" in answer and isinstance(answer["calls"], list):
        for c in answer["calls"]:
            sys.stdout.write(f"{c['status']}  POST {c['path']}  Idempotency-Key={c.get('idempotency_key') or '-'}\n")
    else:
        sys.stdout.write(_describe(answer) + "\n")


@app.command("status")
def status_cmd(fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """The faults in force."""
    _run(fmt, query, lambda c: c.state())


@app.command("calls")
def calls_cmd(limit: int = typer.Option(20, "--limit", min=1, max=500), fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """The last downstream calls the sandbox answered (path, status, Idempotency-Key)."""
    _run(fmt, query, lambda c: c.calls(limit))


@app.command("reset")
def reset_cmd(fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Every plugin and service answers normally again."""
    _run(fmt, query, lambda c: c.reset())


@app.command("succeed")
def succeed_cmd(plugin: str = typer.Argument(..., help="plugin id"), fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """The plugin answers 200 again."""
    _run(fmt, query, lambda c: c.plugin(_plugin(plugin), {"mode": "succeed"}))


@app.command("fail")
def fail_cmd(plugin: str = typer.Argument(..., help="plugin id, or notifications | ops"),
             times: int = typer.Option(None, "--times", min=1, max=10_000, help="fail the next N calls, then succeed"),
             always: bool = typer.Option(False, "--always", help="fail every call"),
             status: int = typer.Option(500, "--status", min=400, max=599,
                                        help="5xx is retried by the engine, 4xx is not"),
             fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Fail N times (then succeed) or always, with an HTTP status. notifications and ops answer 503."""
    if (times is None) == (not always):
        raise typer.BadParameter("give --times N or --always", param_hint="--times / --always")
    if plugin in SERVICES:
        body = {"state": "down"} if always else {"fail_times": times}
        _run(fmt, query, lambda c: c.service(plugin, body))
        return
    _run(fmt, query, lambda c: c.plugin(_plugin(plugin), {"mode": "fail", "times": -1 if always else times,
                                                   "status": status}))


@app.command("flaky")
def flaky_cmd(plugin: str = typer.Argument(..., help="plugin id"),
              rate: float = typer.Option(..., "--rate", min=0.0, max=1.0, help="probability of a failure per call"),
              seed: int = typer.Option(0, "--seed", min=0, max=2**31 - 1, help="same seed, same answers"),
              status: int = typer.Option(503, "--status", min=400, max=599), fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Fail each call with a probability (reproducible for a seed)."""
    _run(fmt, query, lambda c: c.plugin(_plugin(plugin), {"mode": "flaky", "rate": rate, "seed": seed, "status": status}))


@app.command("slow")
def slow_cmd(plugin: str = typer.Argument(..., help="plugin id"),
             seconds: float = typer.Option(..., "--seconds", min=0.0, max=120.0,
                                           help="answer after this delay (the engine's read timeout is 2 s locally)"),
             times: int = typer.Option(None, "--times", min=1, max=10_000, help="only the next N calls"),
             fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Answer late: the engine's read timeout fires and it retries."""
    _run(fmt, query, lambda c: c.plugin(_plugin(plugin), {"mode": "slow", "seconds": seconds,
                                                   "times": -1 if times is None else times}))


@app.command("async")
def async_cmd(plugin: str = typer.Argument(..., help="plugin id"),
              delay: float = typer.Option(1.0, "--delay", min=0.0, max=3600.0, help="seconds before the callback"),
              outcome: str = typer.Option("succeeded", "--outcome", help="succeeded | failed"),
              fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Answer 202 and call back later with the outcome (a callback node waits for it)."""
    if outcome not in ("succeeded", "failed"):
        raise typer.BadParameter("must be succeeded or failed", param_hint="--outcome")
    _run(fmt, query, lambda c: c.plugin(_plugin(plugin), {"mode": "async", "delay": delay, "outcome": outcome}))


@app.command("down")
def down_cmd(target: str = typer.Argument(..., help="notifications | ops | a plugin id"),
             fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Every call answers 503 until `up`."""
    if target in SERVICES:
        _run(fmt, query, lambda c: c.service(target, {"state": "down"}))
    else:
        _run(fmt, query, lambda c: c.plugin(_plugin(target), {"mode": "down"}))


@app.command("up")
def up_cmd(target: str = typer.Argument(..., help="notifications | ops | a plugin id"),
           fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Back to normal after `down`."""
    if target in SERVICES:
        _run(fmt, query, lambda c: c.service(target, {"state": "up"}))
    else:
        _run(fmt, query, lambda c: c.plugin(_plugin(target), {"mode": "succeed"}))


def register(local_app: typer.Typer) -> None:
    local_app.add_typer(app, name="sandbox")
