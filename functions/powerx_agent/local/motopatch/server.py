"""Patch 8 (see the package's docstring): moto's server resolves the backend for a host once."""

from __future__ import annotations

from typing import Any


def patch_backend_for_host() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    resolved: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in resolved:
            if len(resolved) > 4096:
                resolved.clear()
            resolved[host] = original(self, host)
        return resolved[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host
