"""Typed node errors. Their class names are the ``errorType`` Step Functions sees, so the compiled
``Retry`` blocks retry exactly the transient ones (DESIGN.md §8, taskflow.asl)."""

from __future__ import annotations

from powerx_agent.errors import AgentError, RetryableError


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


RETRYABLE = ("PluginUnavailable", "DownstreamUnavailable", "AwsUnavailable")
NOT_RETRYABLE = ("PluginRejected", "NodeInputError", "TenantScopeError")
