"""HTTP to the downstream services (plugin runtime, notifications, ops) with ``requests``.

One pooled session per process; connect and read timeouts on every call; credentials come from
Secrets Manager (``Authorization: Bearer``) and are never logged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

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
    try:
        response = session().post(url, json=body, headers=headers, timeout=(connect_timeout, read_timeout))
    except requests.Timeout:
        return HttpResult(None, None, f"timed out after {read_timeout:g} s")
    except requests.ConnectionError as exc:
        return HttpResult(None, None, f"connection failed: {type(exc).__name__}")
    try:
        parsed: Any = response.json() if response.content else None
    except ValueError:
        parsed = {"text": response.text[:500]}
    return HttpResult(response.status_code, parsed)
