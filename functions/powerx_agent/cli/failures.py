"""How the command line answers a failure: one clear line on stderr and an exit code, never a traceback.

- exit 2: the target cannot be used as given (no region, no credentials, a stack that cannot be read:
  the latter is a usage error raised by ``cli/connect.py``);
- exit 1: the command ran and failed (an endpoint that does not answer, AWS refusing a call, an
  engine error with its code, a file that cannot be read);
- exit 2 as well for bad arguments (an unknown option, a missing argument, a value of the wrong type):
  ``error: powerx-agent <command>: <what> (see powerx-agent <command> --help)``. A group given no
  command shows its help, as before.

``POWERX_DEBUG=1`` lets the exception through with its traceback, for bug reports.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

_HINT = "(powerx-agent --endpoint-url URL for the embedded runtime, --stack NAME for a deployed stack)"


def describe(exc: BaseException) -> tuple[str, int]:
    """The line to print and the exit code for an exception a command did not handle."""
    from powerx_agent.adapters.aws import failure
    from powerx_agent.errors import AgentError, ConfigurationError

    if isinstance(exc, ConfigurationError):
        return str(exc), 2
    if isinstance(exc, AgentError):
        return str(exc), 1
    kind, text = failure(exc) or ("", "")
    answers = {
        "credentials": (f"no AWS credentials: {text} {_HINT}; or --profile NAME", 2),
        "region": (f"no AWS region: pass --region or set AWS_REGION {_HINT}", 2),
        "profile": (text, 2),
        "unreachable": (f"cannot reach {text} {_HINT}", 1),
        "timeout": (f"no answer in time from {text}", 1),
        "refused": (f"AWS refused {text}", 1),
        "client": (f"AWS client error: {text}", 1),
        "http": (f"HTTP request failed: {text}", 1),
    }
    if kind in answers:
        return answers[kind]
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        return f"{exc.strerror or type(exc).__name__}:{where}", 1
    return f"unexpected {type(exc).__name__}: {str(exc)[:300]} (POWERX_DEBUG=1 shows the traceback)", 1


class FailureAnsweringGroup(TyperGroup):
    """The root command group: every subcommand runs inside :meth:`invoke`, so what escapes it ends here."""

    def invoke(self, ctx: Any) -> Any:
        run = super().invoke  # click's, not Lambda's
        try:
            return run(ctx)
        except (typer.Exit, typer.Abort, TyperException):  # exit codes and usage errors: typer answers them
            raise
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:
            if os.environ.get("POWERX_DEBUG") == "1":
                raise
            line, code = describe(exc)
            print(f"error: {line}", file=sys.stderr)
            raise typer.Exit(code) from None

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """Click's standalone handling, except that a usage error is one line instead of a usage box."""
        call = super().main
        if not standalone_mode:
            return call(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = call(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            print("error: aborted", file=sys.stderr)
            sys.exit(1)
        except Exception as exc:
            kinds = {c.__name__ for c in type(exc).__mro__}  # click's classes (typer vendors its own copy)
            if "ClickException" not in kinds:
                raise
            if "NoArgsIsHelpError" in kinds:
                return call(args, prog_name, complete_var, standalone_mode=True, **extra)  # the group's help
            message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
            ctx = getattr(exc, "ctx", None)
            if "UsageError" in kinds:
                path = ctx.command_path if ctx is not None else (prog_name or "powerx-agent")
                message = f"{path}: {message} (see {path} --help)"
            print(f"error: {message}", file=sys.stderr)
            sys.exit(getattr(exc, "exit_code", 2))
        # non-standalone click returns the command's result, or the code of an Exit it raised
        sys.exit(code if isinstance(code, int) else 0)
