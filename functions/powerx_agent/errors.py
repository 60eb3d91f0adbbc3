"""Typed errors with stable codes. Every error says what went wrong, where and why.

``code`` is a stable dotted identifier (``envelope.missing_field``) that users, metrics and the
DLQ records rely on; ``where`` points at the offending place (a JSON path, ``file:line:col``,
a CLI option); ``message`` says why in plain words.
"""

from __future__ import annotations

from typing import Any


class AgentError(Exception):
    """Base class of every error the engine raises on purpose."""

    code: str = "agent.error"
    retryable: bool = False

    def __init__(self, message: str, *, code: str | None = None, where: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.where = where
        self.details = details or {}

    def __str__(self) -> str:
        where = f" at {self.where}" if self.where else ""
        return f"{self.code}{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.where:
            out["where"] = self.where
        if self.details:
            out["details"] = self.details
        return out


class StrategyError(AgentError):
    """A strategy file or library is invalid (lint finding with a location)."""

    code = "strategy.invalid"


class TaskflowError(AgentError):
    """A taskflow cannot be built or compiled (cycle, limit exceeded, ...)."""

    code = "taskflow.invalid"


class EventRejected(AgentError):
    """An event envelope or its tenant scope is not acceptable; never retried."""

    code = "envelope.invalid"


class RetryableError(AgentError):
    """A transient failure: the caller (Lambda retry, SQS redelivery, Step Functions) retries."""

    code = "agent.transient"
    retryable = True


# -- node errors: their class names are the ``errorType`` Step Functions sees, so the compiled
# ``Retry`` blocks retry exactly the transient ones (docs/taskflow.md, "Retries")


class PluginUnavailable(RetryableError):
    """5xx, timeout or connection error from the plugin runtime: retried by the state machine."""

    code = "plugin.unavailable"


class PluginRejected(AgentError):
    """4xx from the plugin runtime: the request itself is wrong; retrying cannot help."""

    code = "plugin.rejected"


class DownstreamUnavailable(RetryableError):
    """Notifications or ops manual review did not answer successfully: retried."""

    code = "downstream.unavailable"


class AwsUnavailable(RetryableError):
    """An AWS call inside the node failed (e.g. the status write-back after a successful downstream
    call): retried by the state machine; the downstream call repeats with the same Idempotency-Key."""

    code = "aws.unavailable"


class NodeInputError(AgentError):
    """The node's input could not be rendered or is invalid."""

    code = "node.input_invalid"


class TenantScopeError(AgentError):
    """The tenant may not use this plugin."""

    code = "tenant.plugin_not_allowed"


class HandOff(AgentError):
    """Raised in an Express head by a node whose retryable failure still has attempts left: the head
    catches it and continues the workflow in its Standard machine, where the retries run
    (docs/write-path.md, "Express first")."""

    code = "node.hand_off"


class AttemptsExhausted(AgentError):
    """A node's last attempt failed in the Standard continuation of an Express head: the head made some of
    its attempts, so the continuation's own ``Retry`` would go past ``retry.attempts``; this error is not
    retried, the workflow escalates (the message names the last failure)."""

    code = "node.attempts_exhausted"


# the one list of the node errors Step Functions retries (the compiled Retry blocks) and of those it does not
RETRYABLE = tuple(c.__name__ for c in (PluginUnavailable, DownstreamUnavailable, AwsUnavailable))
NOT_RETRYABLE = tuple(c.__name__ for c in (PluginRejected, NodeInputError, TenantScopeError))


class ConfigurationError(Exception):
    """What to talk to is missing or cannot be used (no stack outputs, a stack that cannot be read, ...).

    Deliberately not an :class:`AgentError`: no command handles it as one of its own refusals; the
    command line answers it as a usage error (exit 2)."""

    code = "config.missing"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
