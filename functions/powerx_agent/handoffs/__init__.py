"""What one function hands the next (docs/architecture.md, "Hand-offs"):

- ``match.MatchMessage``: ingest → matcher, the body of a match-queue message;
- ``execution.ExecutionInput``: matcher → Step Functions, the input of a workflow execution;
- ``tasks.NodeTask``, ``tasks.SkipTask``, ``tasks.CompleteTask``, ``tasks.EscalateTask``: what the
  compiled state machine passes to the node functions and to the workflow function
  (``Parameters.Payload`` of each Task state, ``powerx_agent.taskflow.asl``).

One module each, so a function builds only the models it uses (the ingest function's first event
pays for ``match`` alone).

Each is validated where it is received (:meth:`Handoff.parse`); a hand-off that does not validate
raises :class:`HandoffInvalid` (the node functions raise ``NodeInputError``, which the state machine
does not retry). Unknown keys are ignored, not refused: while a release is deployed or rolled back
(the ``live`` aliases move), a message written by one release can be read by the other.

Validation is bounded: the bodies are bounded by their transport (SQS 1 MiB, Step Functions
256 KiB), JSON is parsed by pydantic-core (linear, nesting limited), the free-form parts (event
detail, variables, node input) are taken as they are, and an error names at most
:data:`MAX_REPORTED_ERRORS` fields without echoing their values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from powerx_agent.errors import AgentError

MAX_REPORTED_ERRORS = 5


class HandoffInvalid(AgentError):
    """A hand-off between two functions does not have the shape of its model."""

    code = "handoff.invalid"


def describe(what: str, exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '$'}: {e['msg']}" for e in errors[:MAX_REPORTED_ERRORS]]
    more = f" (+{len(errors) - MAX_REPORTED_ERRORS} more)" if len(errors) > MAX_REPORTED_ERRORS else ""
    return f"{what} is not valid: {'; '.join(parts)}{more}"[:2000]


class Handoff(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def parse(cls, raw: str | bytes | Mapping[str, Any], error: type[AgentError] = HandoffInvalid) -> Self:
        """Validate a received hand-off (a JSON text or an already decoded object)."""
        try:
            if isinstance(raw, str | bytes):
                return cls.model_validate_json(raw)
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise error(describe(cls.__name__, exc), code=HandoffInvalid.code) from None

    @classmethod
    def check(cls, raw: Mapping[str, Any], error: type[AgentError] = HandoffInvalid) -> Mapping[str, Any]:
        """Validate a received hand-off and return it as it came (for a step that reads the payload itself)."""
        cls.parse(raw, error)
        return raw

    def to_dict(self) -> dict[str, Any]:
        """The fields that were set (defaults a producer did not write stay out of the message)."""
        return self.model_dump(exclude_unset=True)

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON, UTF-8 characters unescaped."""
        return self.model_dump_json(exclude_unset=True)
