"""``powerx-agent``: the command line (README, docs/runbook.md) (typer + rich).

Exit codes: 0 ok, 1 findings or failure, 2 usage error (typer's own for bad arguments).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from powerx_agent import telemetry
from powerx_agent.cli import (
    audit_cmd,
    console_cmd,
    cost_cmd,
    events_cmd,
    flags_cmd,
    keys_cmd,
    load_cmd,
    local_cmd,
    metrics_cmd,
    release_cmd,
    repair_cmd,
    replay_cmd,
    review_cmd,
    smoke_cmd,
    strategy_cmd,
    tenants_cmd,
    view_cmd,
    workflow_cmd,
)
from powerx_agent.cli._common import FormatOpt, Output, QueryOpt
from powerx_agent.cli.connect import Target, set_target
from powerx_agent.cli.failures import FailureAnsweringGroup
from powerx_agent.settings import Env

PROG = "powerx-agent"
SHELLS = ("bash", "zsh", "fish", "powershell")

app = typer.Typer(name=PROG, help="PowerX Agent Taskflow: event-driven automation on AWS.",
                  no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
                  cls=FailureAnsweringGroup)
app.add_typer(local_cmd.app, name="local")
app.add_typer(strategy_cmd.app, name="strategy")


@app.callback()
def main(endpoint_url: str = typer.Option(None, "--endpoint-url", envvar=Env.AWS_ENDPOINT_URL,
                                          help="AWS endpoint (the embedded runtime: see `local serve`)"),
         region: str = typer.Option(None, "--region", help="AWS region"),
         profile: str = typer.Option(None, "--profile", help="AWS profile"),
         stack: str = typer.Option(None, "--stack", help="deployed stack whose outputs name the resources")) -> None:
    """Common options come before the command: powerx-agent --endpoint-url URL review list."""
    set_target(Target(endpoint_url, region, profile, stack))
    # the command answers for itself (one line on failure); the engine's JSON lines only on request,
    # to stderr (POWERX_LOG_LEVEL=INFO|WARNING|ERROR): stdout stays the command's
    telemetry.configure(os.environ.get("POWERX_LOG_LEVEL") or "CRITICAL", _Stderr())


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (a test runner swaps it per command)."""

    def write(self, text: str) -> Any:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


# each command group lives in its own module; this is the one index of them
for _sub, _name in ((review_cmd, "review"), (workflow_cmd, "workflow"), (events_cmd, "events"), (audit_cmd, "audit"),
                    (replay_cmd, "replay"), (flags_cmd, "flags"), (release_cmd, "release"),
                    (tenants_cmd, "tenants"), (keys_cmd, "keys")):
    app.add_typer(_sub.app, name=_name)
view_cmd.register(workflow_cmd.app)  # powerx-agent workflow view ID --out view.html
load_cmd.register(local_cmd.app)  # powerx-agent local load --rate R --duration S
repair_cmd.register(app)  # powerx-agent repair [--apply]
metrics_cmd.register(app)  # powerx-agent metrics
console_cmd.register(app)  # powerx-agent console [--port P]
cost_cmd.register(app)  # powerx-agent cost [--profile FILE]
smoke_cmd.register(app)  # powerx-agent smoke [--tenant T]: the first command after cdk deploy


@app.command("version")
def version(fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Print the version."""
    from powerx_agent import __version__

    Output(fmt, query).emit({"name": PROG, "version": __version__},
                            lambda console: console.print(f"{PROG} {__version__}"))


@app.command("completion")
def completion(shell: str = typer.Argument(..., help=" | ".join(SHELLS), autocompletion=lambda: list(SHELLS)),
               fmt: str = FormatOpt, query: str = QueryOpt) -> None:
    """Print the shell completion script: e.g. `source <(powerx-agent completion bash)` in ~/.bashrc,
    `powerx-agent completion zsh > "${fpath[1]}/_powerx-agent"`, or
    `powerx-agent completion fish > ~/.config/fish/completions/powerx-agent.fish`."""
    from typer._completion_shared import get_completion_script

    output = Output(fmt, query)
    if shell not in SHELLS:
        raise typer.BadParameter(f"must be {', '.join(SHELLS)}, not {shell!r}", param_hint="SHELL")
    complete_var = "_{}_COMPLETE".format(PROG.replace("-", "_").upper())
    script = get_completion_script(prog_name=PROG, complete_var=complete_var, shell=shell)
    output.emit({"shell": shell, "complete_var": complete_var, "script": script},
                lambda console: sys.stdout.write(script + "\n"))

if __name__ == "__main__":  # pragma: no cover
    app()
