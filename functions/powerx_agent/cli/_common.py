"""What every command of ``powerx-agent`` shares: output, the actor, consoles, refusals.

- ``--format text | json`` (``jsonl`` where a command lists things) and ``--query EXPR``: a JMESPath
  expression applied to the JSON result, as the AWS CLI's ``--query`` (with ``--format text`` the
  result is printed the AWS CLI's text way: scalars as they are, list items tab-separated).
- ``--by WHO``: the one actor flag (audited); ``--actor``, ``--author`` and ``--approver`` are kept
  as hidden aliases. Default: ``$POWERX_ACTOR``, else the login name.
- Consoles never interpret what they print (no rich markup: a ``[tenant]`` in a variable, a reason or
  an id is printed as it is; styles come from :func:`styled` only) and never wrap or cut a line when
  stdout is not a terminal; id and ARN columns are never shortened, not even on a terminal.
- A refusal of the engine (:class:`powerx_agent.errors.AgentError`: nothing was changed) is one line
  ``error: CODE: message`` on stderr and exit 1.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from powerx_agent.settings import Env

WIDE = 1 << 16
"""Console width when stdout is not a terminal: wide enough that nothing wraps or is cut."""

QueryOpt = typer.Option(None, "--query", metavar="JMESPATH",
                        help="JMESPath expression applied to the JSON result (as the AWS CLI's --query)")
ByOpt = typer.Option(None, "--by", help="who does it (audited); default: $POWERX_ACTOR, else your login name")
ByAliasOpt = typer.Option(None, "--actor", "--author", "--approver", hidden=True)


def format_option(*extra: str) -> Any:
    choices = ("text", "json", *extra)
    return typer.Option("text", "--format", help=" | ".join(choices),
                        autocompletion=lambda: list(choices))


FormatOpt = format_option()
ListFormatOpt = format_option("jsonl")


# -- consoles ----------------------------------------------------------------------------------


def _console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty() and os.environ.get("TERM") != "dumb"
    return Console(stderr=stderr, markup=False, highlight=False, emoji=False, soft_wrap=True,
                   width=None if terminal else WIDE, force_terminal=None if terminal else False)


def out() -> Console:
    """The stdout console (built per call: tests and pipes swap sys.stdout)."""
    return _console(False)


def err() -> Console:
    return _console(True)


def styled(text: Any, style: str | None = None) -> Text:
    """User text with a style, never read as markup."""
    return Text(str(text), style=style or "")


STATUS_STYLE = {"SUCCEEDED": "green", "FAILED": "red", "ESCALATED": "yellow", "STOPPED": "magenta",
                "SKIPPED": "dim", "RUNNING": "cyan", "REJECTED": "red", "DEFERRED": "yellow",
                "COMPLETED": "green", "IN_PROGRESS": "cyan", "ABORTED": "magenta", "TIMED_OUT": "red"}


def status_text(status: Any) -> Text:
    return styled(status if status is not None else "—", STATUS_STYLE.get(str(status)))


def table(*columns: str, ids: Sequence[str] = (), rows: Iterable[Sequence[Any]] = (), title: str | None = None) -> Table:
    """A table whose ``ids`` columns are as wide as their longest value (never shortened); on a narrow
    terminal the other columns fold their text onto more lines, never cut it."""
    rows = [list(r) for r in rows]
    grid = Table(show_edge=False, title=title, title_justify="left")
    for index, name in enumerate(columns):
        widest = max([len(name), *(len(str(r[index])) for r in rows if r[index] is not None)]) if name in ids else None
        grid.add_column(name, min_width=widest, no_wrap=name in ids, overflow="fold")
    for row in rows:
        grid.add_row(*(cell if isinstance(cell, Text) else Text("" if cell is None else str(cell)) for cell in row))
    return grid


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    err().print(f"error: {message}")
    return typer.Exit(code)


# -- output -------------------------------------------------------------------------------------


def rfc3339(value: Any) -> Any:
    """An epoch (seconds) as RFC 3339 UTC with milliseconds; anything else unchanged."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 1e9:
        return value
    from powerx_agent.audit.records import iso_at

    return iso_at(float(value))


TIME_KEYS = ("first_seen", "lease_until", "expires_at", "ended", "ts_epoch")


def with_timestamps(data: Any, depth: int = 0) -> Any:
    """Every ``*_at`` (and :data:`TIME_KEYS`) epoch value in ``data`` as RFC 3339."""
    if depth > 32:
        return data
    if isinstance(data, dict):
        return {k: rfc3339(v) if (k.endswith("_at") or k in TIME_KEYS) and not isinstance(v, dict | list)
                else with_timestamps(v, depth + 1) for k, v in data.items()}
    if isinstance(data, list):
        return [with_timestamps(v, depth + 1) for v in data]
    return data


def jsonable(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))


def text_lines(value: Any) -> list[str]:
    """The AWS CLI's text rendering: a scalar as it is, a list of scalars (or an object's scalar
    values) on one tab-separated line, nested lists and objects one line per item."""
    def scalar(v: Any) -> str:
        return "None" if v is None else ("True" if v is True else "False" if v is False else str(v))

    if isinstance(value, dict):
        flat = [v for v in value.values() if not isinstance(v, dict | list)]
        lines = ["\t".join(scalar(v) for v in flat)] if flat else []
        for v in value.values():
            if isinstance(v, dict | list):
                lines += text_lines(v)
        return lines
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return ["\t".join(scalar(v) for v in value)] if value else []
        return [line for v in value for line in text_lines(v)]
    return [scalar(value)]


class Output:
    """``--format`` and ``--query`` of one command."""

    def __init__(self, fmt: str, query: str | None = None, formats: Sequence[str] = ("text", "json")) -> None:
        if fmt not in formats:
            raise typer.BadParameter(f"must be {', '.join(formats[:-1])} or {formats[-1]}, not {fmt!r}",
                                     param_hint="--format")
        self.fmt = fmt
        self.query = query
        self._expression = None
        if query:
            import jmespath
            from jmespath.exceptions import JMESPathError

            try:
                self._expression = jmespath.compile(query)
            except JMESPathError as exc:
                raise typer.BadParameter(f"not a JMESPath expression: {exc}", param_hint="--query") from None

    @property
    def text(self) -> bool:
        """True when the command prints its own text (no --query, --format text)."""
        return self.fmt == "text" and self._expression is None

    def emit(self, data: Any, text: Callable[[Console], None] | None = None) -> None:
        """Print ``data`` as asked: JSON, JSON Lines, the query's result, or ``text(console)``."""
        if self._expression is not None:
            result = self._expression.search(jsonable(data))
            if self.fmt == "text":
                for line in text_lines(result):
                    sys.stdout.write(line + "\n")
            elif self.fmt == "jsonl":
                write_jsonl(result if isinstance(result, list) else [result])
            else:
                write_json(result)
        elif self.fmt == "json":
            write_json(data)
        elif self.fmt == "jsonl":
            write_jsonl(data if isinstance(data, list) else [data])
        elif text is not None:
            text(out())
        else:
            for line in text_lines(jsonable(data)):
                sys.stdout.write(line + "\n")
        sys.stdout.flush()


def write_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def write_jsonl(items: Iterable[Any]) -> None:
    for item in items:
        sys.stdout.write(json.dumps(item, default=str, ensure_ascii=False, separators=(",", ":")) + "\n")


# -- the actor ----------------------------------------------------------------------------------


def default_actor() -> str:
    if os.environ.get(Env.POWERX_ACTOR):
        return os.environ[Env.POWERX_ACTOR]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def actor(by: str | None, alias: str | None = None) -> str:
    """``--by`` (or one of its old spellings); the default actor when neither is given."""
    if by is not None and alias is not None and by != alias:
        raise typer.BadParameter(f"--by {by!r} and its old spelling say {alias!r}: give one", param_hint="--by")
    chosen = by if by is not None else alias
    if chosen is None:
        return default_actor()
    if not chosen.strip():
        raise typer.BadParameter("must name who acts", param_hint="--by")
    return chosen.strip()


# -- arguments checked before anything runs (a usage error: exit 2) --------------------------------


def check_window(param: typer.CallbackParam, value: str | None) -> str | None:
    """A window bound: an ISO time or a duration back from now (15m / 2h / 3d)."""
    from powerx_agent.ops.audit import normalise_since

    if value:
        try:
            normalise_since(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param=param) from None
    return value


def check_statuses(allowed: Sequence[str]) -> Callable[[typer.CallbackParam, Any], Any]:
    """A ``--status`` option: each value (repeated or comma-separated) one of ``allowed``, any case."""

    def check(param: typer.CallbackParam, value: Any) -> Any:
        given = value if isinstance(value, list | tuple) else [value] if value else []
        unknown = sorted({s.strip().upper() for v in given for s in str(v).split(",") if s.strip()} - set(allowed))
        if unknown:
            raise typer.BadParameter(f"unknown status {', '.join(unknown)}: one of {', '.join(allowed)}", param=param)
        return value

    return check


# -- running --------------------------------------------------------------------------------------


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """An AgentError (the engine refused: nothing was changed) as one line and exit 1."""
    from powerx_agent.errors import AgentError

    try:
        yield
    except AgentError as exc:
        raise fail(f"{exc.code}: {exc.message}") from None


def run_logic(fn: Callable[[], Any]) -> Any:
    with refusals():
        return fn()


@contextlib.contextmanager
def session() -> Iterator[tuple[Any, Any]]:
    """Deps and a metrics recorder for one command; metrics are flushed at the end. Where the
    sink is stdout (the Lambda setting), the EMF lines go to stderr so stdout stays readable."""
    from powerx_agent.cli.connect import connect

    deps = connect()
    metrics = deps.metrics()
    try:
        yield deps, metrics
    finally:
        if deps.settings.metrics_sink == "logs":
            metrics.flush()
        else:
            with contextlib.redirect_stdout(sys.stderr):
                metrics.flush()
