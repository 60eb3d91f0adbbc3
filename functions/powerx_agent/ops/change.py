"""A change of several steps that is made whole or not at all (docs/operations.md, "Changes that
check first").

Every operator command that changes more than one thing does its checks first, reading only; then it
makes its steps inside a :class:`Change`, each step naming how to undo it. When a step fails, the steps
already made are undone in reverse order, the failure is recorded (``on_failure``, e.g. an audit record)
and :class:`ChangeFailed` says which step failed, why, what was undone and what could not be undone
(named, to put right by hand), so nothing is left half done without the operator being told exactly
what.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from powerx_agent.errors import AgentError

T = TypeVar("T")


class ChangeFailed(AgentError):
    code = "change.failed"


class Change:
    def __init__(self, what: str, code: str, on_failure: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.what = what
        self.code = code
        self.on_failure = on_failure
        self.step_name: str | None = None
        self.hint: str | None = None
        self._undo: list[tuple[str, Callable[[], Any]]] = []
        self._made = 0

    def step(self, name: str, do: Callable[[], T], undo: Callable[[T], Any] | None = None) -> T:
        """Make one step; ``undo(result)`` puts it back if a later step fails."""
        self.step_name = name
        result = do()
        self._made += 1
        if undo is not None:
            self._undo.append((name, lambda: undo(result)))
        return result

    def many_writes(self, name: str, do: Callable[[], T], undo: Callable[[], Any]) -> T:
        """Make one step of many writes that can fail half-way (e.g. batches): ``undo()`` puts back
        whatever part of it was made, whether this step or a later one fails."""
        self.step_name = name
        self._made += 1
        self._undo.append((name, undo))
        return do()

    def settled(self, hint: str) -> None:
        """The point of no return (e.g. an execution started): the steps made so far stay; a later failure
        is reported with ``hint``, how to finish the change."""
        self._undo.clear()
        self.hint = hint

    def rollback(self) -> tuple[list[str], list[dict[str, str]]]:
        undone: list[str] = []
        stuck: list[dict[str, str]] = []
        for name, undo in reversed(self._undo):
            try:
                undo()
                undone.append(name)
            except Exception as exc:  # noqa: BLE001 - reported by name: the operator puts it right
                stuck.append({"step": name, "error": _describe(exc)})
        self._undo.clear()
        return undone, stuck

    def __enter__(self) -> Change:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        if not self._made and isinstance(exc, AgentError):
            return False  # refused before anything changed: the refusal speaks for itself
        undone, stuck = self.rollback()
        details = {"what": self.what, "failed_step": self.step_name, "error": _describe(exc), "undone": undone,
                   "not_undone": stuck}
        if self.on_failure is not None:
            try:
                self.on_failure(details)
            except Exception as audit_exc:  # noqa: BLE001 - the failure itself is reported below
                details["failure_not_recorded"] = _describe(audit_exc)
        if self.hint:
            details["to_finish"] = self.hint
        message = (f"{self.what} failed at step {self.step_name!r} ({details['error']}); "
                   + (f"to finish it: {self.hint}" if self.hint and not undone else
                      f"undone: {', '.join(undone)}" if undone else "nothing had changed")
                   + ("; NOT undone, put right by hand: "
                      + ", ".join(f"{s['step']} ({s['error']})" for s in stuck) if stuck else ""))
        raise ChangeFailed(message, code=self.code, details=details) from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AgentError):
        return f"{exc.code}: {exc.message}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"
