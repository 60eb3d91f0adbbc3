"""HTTP to the downstream services (plugin runtime, notifications, ops) with ``requests``, each
answer classified into success or a typed error (retryable: ``PluginUnavailable``,
``DownstreamUnavailable``; not: ``PluginRejected``) in this one place.

One pooled session per process; connect and read timeouts on every call; credentials come from
Secrets Manager (``Authorization: Bearer``) and are never logged.

An answer is untrusted input like any other: at most :data:`MAX_ANSWER_BYTES`, read within a total
deadline (a trickling server cannot hold the call), parsed within the JSON limits (depth, numbers
DynamoDB can store, Unicode). An answer beyond them has ``body=None`` and says why in ``error``; a 2xx
plugin answer that cannot be kept is ``plugin.invalid_answer``.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter

from powerx_agent.errors import DownstreamUnavailable, PluginRejected, PluginUnavailable
from powerx_agent.json_limits import JsonLimitError, loads
from powerx_agent.settings import Settings
from powerx_agent.signing import callback_url
from powerx_agent.taskflow.model import PLUGIN_ID_RE

MAX_ANSWER_BYTES = 1024 * 1024

_session_lock = threading.Lock()
_session: requests.Session | None = None


def session() -> requests.Session:
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                s = requests.Session()
                adapter = HTTPAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
                s.mount("http://", adapter)
                s.mount("https://", adapter)
                s.trust_env = False  # never route loopback calls through a proxy from the environment
                _session = s
    return _session


@dataclass(frozen=True)
class HttpResult:
    status: int | None  # None: no answer (timeout, connection refused)
    body: Any
    error: str | None = None


def post_json(url: str, body: dict[str, Any], headers: dict[str, str], connect_timeout: float,
              read_timeout: float) -> HttpResult:
    allowed = connect_timeout + 2 * read_timeout
    deadline = time.monotonic() + allowed
    try:
        with session().post(url, json=body, headers=headers, timeout=(connect_timeout, read_timeout),
                            stream=True) as response:
            raw = bytearray()
            for chunk in response.iter_content(64 * 1024):
                raw += chunk
                if len(raw) > MAX_ANSWER_BYTES:
                    return HttpResult(response.status_code, None, f"answer larger than {MAX_ANSWER_BYTES} bytes")
                if time.monotonic() > deadline:
                    return HttpResult(None, None, f"answer not complete after {allowed:g} s")
            status = response.status_code
    except requests.Timeout:
        return HttpResult(None, None, f"timed out after {read_timeout:g} s")
    except requests.ConnectionError as exc:
        return HttpResult(None, None, f"connection failed: {type(exc).__name__}")
    except requests.RequestException as exc:  # a malformed answer (chunking, encoding)
        return HttpResult(None, None, f"unreadable answer: {type(exc).__name__}")
    if not raw:
        return HttpResult(status, None)
    try:
        return HttpResult(status, loads(bytes(raw), root="answer"))
    except JsonLimitError as exc:
        if exc.kind == "invalid_json":
            return HttpResult(status, {"text": bytes(raw[:500]).decode("utf-8", "replace")})
        return HttpResult(status, None, f"answer refused ({exc.kind} at {exc.where}): {exc.message[:200]}")


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


class _TokenSecrets(Protocol):
    def get_json(self, secret_id: str) -> dict[str, Any]: ...

    def signing_keys(self, secret_id: str) -> list[str]: ...


class DownstreamDeps(Protocol):
    """What :class:`Downstream` reads of ``powerx_agent.deps.Deps`` (or ``testing.fakes.FakeDeps``):
    deps/ sits above adapters/ in the floor plan, so an adapter names the part it uses, not Deps."""

    @property
    def settings(self) -> Settings: ...

    @property
    def secrets(self) -> _TokenSecrets: ...


class Downstream:
    def __init__(self, deps: DownstreamDeps) -> None:
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

    def callback_url(self, callback_id: str, valid_seconds: float) -> str | None:
        """The callbacks endpoint's URL signed for this one callback or review id, valid for
        ``valid_seconds`` (None when the deployment has no callbacks endpoint configured)."""
        base = self.settings.callbacks_url
        if not base:
            return None
        try:
            keys = self.deps.secrets.signing_keys(self.settings.callback_secret)
        except Exception as exc:  # noqa: BLE001 - without the key no callback can be offered
            raise DownstreamUnavailable(f"callback key unavailable: {type(exc).__name__}",
                                        code="downstream.credentials") from exc
        if not keys:
            raise DownstreamUnavailable("the callback secret holds no active key", code="downstream.credentials")
        return callback_url(base, keys[0], callback_id, int(time.time() + valid_seconds))

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
        if result.error:  # a 2xx whose answer cannot be kept (too large, too deep, unstorable numbers)
            raise PluginRejected(f"plugin {plugin_id} answered {result.status} with an unusable answer: {result.error}",
                                 code="plugin.invalid_answer")
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
