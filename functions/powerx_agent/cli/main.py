"""``powerx-agent``: the command line of DESIGN.md §6 (typer + rich).

Exit codes: 0 ok, 1 findings or failure, 2 usage error (typer's own for bad arguments).
"""

from __future__ import annotations

import typer
from rich.console import Console

from powerx_agent.cli import local_cmd, strategy_cmd

app = typer.Typer(name="powerx-agent", help="PowerX Agent Taskflow: event-driven automation on AWS.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(local_cmd.app, name="local")
app.add_typer(strategy_cmd.app, name="strategy")

console = Console()


@app.command("version")
def version() -> None:
    """Print the version."""
    from powerx_agent import __version__

    console.print(f"powerx-agent {__version__}")






if __name__ == "__main__":  # pragma: no cover
    app()
