"""Secrets Manager access with a small in-process cache; secret values never reach logs."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

_CACHE_SECONDS = 300.0


class SecretsCache:
    def __init__(self, sm: Any) -> None:
        self._sm = sm
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get_json(self, secret_id: str) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(secret_id)
        if hit and now - hit[0] < _CACHE_SECONDS:
            return hit[1]
        raw = self._sm.get_secret_value(SecretId=secret_id)["SecretString"]
        value = json.loads(raw)
        with self._lock:
            self._cache[secret_id] = (now, value)
        return value

    def signing_keys(self, secret_id: str) -> list[str]:
        """The keys a signature may use, the active one first.

        The secret is ``{"active": "k1", "k1": "...", "k2": "..."}`` (the stack's format: rotate by
        replacing the inactive key, then switching ``active``); both keys verify during rotation.
        """
        data = self.get_json(secret_id)
        active = data.get("active")
        names = [active] + sorted(k for k in data if k != "active" and k != active and k.startswith("k"))
        return [data[name] for name in names if name and data.get(name)]
