"""Secrets Manager access with a small in-process cache; secret values never reach logs."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from powerx_agent.signing import CALLER_RE, Caller

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

    def read_fresh(self, secret_id: str) -> dict[str, Any]:
        """The secret's current value, never from the cache (what an administrative change starts from)."""
        value = json.loads(self._sm.get_secret_value(SecretId=secret_id)["SecretString"])
        if not isinstance(value, dict):
            raise ValueError(f"secret {secret_id} does not hold a JSON object")
        return value

    def put_json(self, secret_id: str, value: dict[str, Any]) -> None:
        """A new version of the secret; this process forgets its cached value at once."""
        self._sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps(value))
        with self._lock:
            self._cache.pop(secret_id, None)

    def refresh(self, secret_id: str, older_than: float = 5.0) -> bool:
        """Forget a cached value read more than ``older_than`` seconds ago (True if it was forgotten).
        A verifier that finds no matching key calls this once and tries again, so a key staged by a
        rotation is accepted within seconds, not after the cache's five minutes."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(secret_id)
            if hit is None or now - hit[0] <= older_than:
                return False
            del self._cache[secret_id]
            return True

    def signing_keys(self, secret_id: str) -> list[str]:
        """The keys of a key set ``{"active": "k1", "k1": "...", "k2": "..."}``, the active one first
        (the callback secret's format; rotate by writing a fresh key into the inactive slot and
        switching ``active``: both keys verify during rotation)."""
        return key_set(self.get_json(secret_id))

    def replay_callers(self, secret_id: str) -> dict[str, Caller]:
        """The replay callers: ``{"callers": {"<caller>": {"tenants": [...], "active": ..., "k1": ...}}}``."""
        return callers_from(self.get_json(secret_id))


def key_set(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return []
    active = data.get("active")
    names = [active] + sorted(k for k in data if k != "active" and k != active and str(k).startswith("k"))
    return [data[name] for name in names if name and isinstance(data.get(name), str) and data.get(name)]


def callers_from(data: Any) -> dict[str, Caller]:
    callers = data.get("callers") if isinstance(data, dict) else None
    out: dict[str, Caller] = {}
    for caller_id, entry in (callers or {}).items():
        tenants = entry.get("tenants") if isinstance(entry, dict) else None
        keys = key_set(entry)
        if isinstance(tenants, list) and keys and CALLER_RE.fullmatch(str(caller_id)):
            out[caller_id] = Caller(caller_id, tuple(str(t) for t in tenants), tuple(keys))
    return out
