"""Calls to the downstream services, classified into success / retryable / rejected outcomes."""

from __future__ import annotations

import re
from typing import Any

from powerx_agent.adapters.downstream import HttpResult, post_json
from powerx_agent.nodes.errors import DownstreamUnavailable, PluginRejected, PluginUnavailable
from powerx_agent.strategy.dsl import PLUGIN_ID_RE

_PLUGIN_ID = re.compile(PLUGIN_ID_RE.removesuffix("$"))


def validate_plugin_id(plugin_id: object) -> str:
    """The plugin id goes into the URL path: only ``[a-z0-9][a-z0-9._-]{0,63}``, matched in full
    (no trailing newline), and no ``..`` anywhere, so no path traversal, no separators, no
    percent-encoding and no case tricks reach the plugin runtime."""
    if not isinstance(plugin_id, str) or not _PLUGIN_ID.fullmatch(plugin_id) or ".." in plugin_id:
        raise PluginRejected(f"plugin id {str(plugin_id)[:80]!r} is not a valid plugin id "
                             "(lowercase letters, digits, '.', '_', '-'; at most 64; no '..')",
                             code="plugin.invalid_id")
    return plugin_id


class Downstream:
    def __init__(self, deps: Any) -> None:
        self.deps = deps
        self.settings = deps.settings

    def _headers(self, token_key: str, extra: dict[str, str]) -> dict[str, str]:
        headers = dict(extra)
        try:
            token = self.deps.secrets.get_json(self.settings.downstream_secret).get(token_key)
        except Exception as exc:  # noqa: BLE001 - no credentials means the call cannot be made
            raise DownstreamUnavailable(f"downstream credentials unavailable: {type(exc).__name__}",
                                        code="downstream.credentials") from exc
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _post(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> HttpResult:
        return post_json(url, body, headers, self.settings.http_connect_timeout, self.settings.http_read_timeout)

    def execute_plugin(self, plugin_id: str, body: dict[str, Any], headers: dict[str, str]) -> HttpResult:
        validate_plugin_id(plugin_id)
        url = f"{self.settings.plugin_runtime_url}/plugin/runtime/{plugin_id}/execute"
        result = self._post(url, body, self._headers("plugin_runtime_token", headers))
        if result.status is None:
            raise PluginUnavailable(f"plugin {plugin_id}: {result.error}")
        if result.status >= 500 or result.status == 429:
            raise PluginUnavailable(f"plugin {plugin_id} answered {result.status}: {_brief(result.body)}")
        if result.status >= 400:
            raise PluginRejected(f"plugin {plugin_id} rejected the request with {result.status}: {_brief(result.body)}")
        return result

    def notify(self, body: dict[str, Any], headers: dict[str, str]) -> HttpResult:
        return self._expect_2xx("notifications", f"{self.settings.notifications_url}/notifications/agent-task",
                                body, self._headers("notifications_token", headers))

    def manual_review(self, body: dict[str, Any], headers: dict[str, str]) -> HttpResult:
        return self._expect_2xx("ops manual review", f"{self.settings.ops_url}/ops/manual-review",
                                body, self._headers("ops_token", headers))

    def _expect_2xx(self, name: str, url: str, body: dict[str, Any], headers: dict[str, str]) -> HttpResult:
        result = self._post(url, body, headers)
        if result.status is None or not 200 <= result.status < 300:
            raise DownstreamUnavailable(f"{name} did not accept the request: "
                                        f"{result.error or result.status} {_brief(result.body)}")
        return result


def _brief(body: Any) -> str:
    text = str(body) if body is not None else ""
    return text[:200]
