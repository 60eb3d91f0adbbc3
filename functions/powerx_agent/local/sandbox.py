"""Sandbox downstream services on 127.0.0.1: plugin runtime, notifications, ops manual review.

A real HTTP server (stdlib ``ThreadingHTTPServer``) on a free loopback port. It records every
request (path, headers, JSON body) and answers per plugin as tests configure it:

- ``succeed``            200 with a small result
- ``fail_times(n, status)`` the first n calls answer ``status`` (500 by default), then succeed
- ``fail_always(status)``  always ``status`` (500 → retried, 4xx → rejected)
- ``slow(seconds)``        answers after a delay (read timeouts)
- ``async_callback(delay, outcome)`` answers 202, then POSTs the outcome to the ``callback_url`` the
  engine put in the call (signed for that call only: the sandbox holds no key)

Plugins answer a callback node as the contract says (docs/taskflow.md): by default ``200`` with the
result, which completes the node at once; ``async_callback`` answers ``202`` and calls back later.

Notifications and ops can be set ``down`` (503) or ``up`` to inject their failures too.

- ``flaky(plugin, rate, seed)``  each call fails with 503 with probability ``rate``, drawn from a
  seeded generator under the lock: the sequence of answers is reproducible for a given seed
- ``service_fail_times(service, n)`` the next n calls to notifications/ops answer 503, then recover

Another process drives the same faults over HTTP (``powerx-agent local sandbox ...`` does): ``GET
/_sandbox/state``, ``GET /_sandbox/calls?limit=N``, ``POST /_sandbox/reset``, ``POST /_sandbox/plugins/{id}``
with ``{"mode": "succeed|fail|flaky|slow|async|down", ...}`` and ``POST /_sandbox/services/{notifications|ops}``
with ``{"state": "up|down"}`` or ``{"fail_times": n}`` (see :mod:`powerx_agent.local.sandbox_control`).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

_PLUGIN_PATH = re.compile(r"^/plugin/runtime/(?P<plugin>[^/]+)/execute$")


@dataclass
class Behaviour:
    mode: str = "succeed"  # succeed | fail | slow | async
    status: int = 500
    remaining_failures: int = 0
    delay: float = 0.0
    outcome: str = "succeeded"
    rate: float = 0.0
    rng: random.Random | None = None


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    at: float = field(default_factory=time.time)


class Sandbox:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self._plugins: dict[str, Behaviour] = {}
        self._services_down: set[str] = set()
        self._service_failures: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []

    # -- configuration ---------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._plugins.clear()
            self._services_down.clear()
            self._service_failures.clear()

    def succeed(self, plugin: str) -> None:
        self._set(plugin, Behaviour("succeed"))

    def fail_times(self, plugin: str, times: int, status: int = 500) -> None:
        self._set(plugin, Behaviour("fail", status=status, remaining_failures=times))

    def fail_always(self, plugin: str, status: int = 500) -> None:
        self._set(plugin, Behaviour("fail", status=status, remaining_failures=-1))

    def slow(self, plugin: str, seconds: float, times: int = -1) -> None:
        self._set(plugin, Behaviour("slow", delay=seconds, remaining_failures=times))

    def async_callback(self, plugin: str, delay: float = 0.2, outcome: str = "succeeded") -> None:
        self._set(plugin, Behaviour("async", delay=delay, outcome=outcome))

    def flaky(self, plugin: str, rate: float, seed: int = 0, status: int = 503) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {rate}")
        self._set(plugin, Behaviour("flaky", status=status, rate=rate, rng=random.Random(seed)))

    def service_fail_times(self, service: str, times: int) -> None:
        with self._lock:
            self._service_failures[service] = times

    def service_down(self, service: str) -> None:
        with self._lock:
            self._services_down.add(service)

    def service_up(self, service: str) -> None:
        with self._lock:
            self._services_down.discard(service)

    def _set(self, plugin: str, behaviour: Behaviour) -> None:
        with self._lock:
            self._plugins[plugin] = behaviour

    # -- inspection ------------------------------------------------------------------------
    def calls(self, path_prefix: str = "") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def plugin_calls(self, plugin: str) -> list[Recorded]:
        return self.calls(f"/plugin/runtime/{plugin}/")

    def describe(self) -> dict[str, Any]:
        """The faults in force: what ``GET /_sandbox/state`` answers."""
        with self._lock:
            plugins = {plugin: {"mode": b.mode, "status": b.status, "remaining": b.remaining_failures,
                                "delay": b.delay, "outcome": b.outcome, "rate": b.rate}
                       for plugin, b in sorted(self._plugins.items()) if b.mode != "succeed"}
            services = {service: ("down" if service in self._services_down else "up")
                        for service in ("notifications", "ops")}
            transient = {s: n for s, n in self._service_failures.items() if n > 0}
            return {"plugins": plugins, "services": services, "service_failures": transient,
                    "calls": len(self.requests)}

    # -- server ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "sandbox not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self, port: int = 0) -> Sandbox:
        from powerx_agent.local import sandbox_control as control

        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                return

            def _send(self, status: int, answer: Any) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                self._send(*control.read(sandbox, self.path))

            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                length = int(self.headers.get("Content-Length") or 0)
                if length > control.MAX_BODY_BYTES and self.path.startswith(control.PREFIX):
                    self.close_connection = True
                    self._send(413, {"code": "sandbox.too_large", "message": "control bodies are small"})
                    return
                raw = self.rfile.read(length) if length else b""
                if self.path.startswith(control.PREFIX):
                    self._send(*control.change(sandbox, self.path, raw))
                    return
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = {"unparsed": raw[:200].decode(errors="replace")}
                status, answer = sandbox._answer(self.path, body)
                sandbox._record(self.path, dict(self.headers), body, status)
                self._send(status, answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _record(self, path: str, headers: dict[str, str], body: Any, status: int) -> None:
        with self._lock:
            self.requests.append(Recorded(path, headers, body, status))

    def _transient(self, service: str) -> bool:
        with self._lock:
            left = self._service_failures.get(service, 0)
            if left > 0:
                self._service_failures[service] = left - 1
            return left > 0

    def _answer(self, path: str, body: Any) -> tuple[int, Any]:
        if path in ("/notifications/agent-task", "/ops/manual-review"):
            service = "notifications" if path.startswith("/notifications") else "ops"
            if self._transient(service):
                return 503, {"error": f"{service} unavailable (sandbox transient fault)"}
        if path == "/notifications/agent-task":
            if "notifications" in self._services_down:
                return 503, {"error": "notifications unavailable (sandbox fault)"}
            return 202, {"notification_id": f"n-{len(self.requests) + 1}"}
        if path == "/ops/manual-review":
            if "ops" in self._services_down:
                return 503, {"error": "ops unavailable (sandbox fault)"}
            return 201, {"work_order": (body or {}).get("review_id"), "status": "open"}
        match = _PLUGIN_PATH.match(path)
        if not match:
            return 404, {"error": f"no route {path}"}
        plugin = match["plugin"]
        with self._lock:
            behaviour = self._plugins.setdefault(plugin, Behaviour("succeed"))
            mode = behaviour.mode
            if mode == "flaky":
                assert behaviour.rng is not None
                mode = "fail" if behaviour.rng.random() < behaviour.rate else "succeed"
            elif mode in ("fail", "slow") and behaviour.remaining_failures != 0:
                if behaviour.remaining_failures > 0:
                    behaviour.remaining_failures -= 1
            elif mode in ("fail", "slow"):
                mode = "succeed"
        if mode == "fail":
            return behaviour.status, {"error": f"{plugin} failed (sandbox fault)"}
        if mode == "slow":
            time.sleep(behaviour.delay)
        if mode == "async":
            callback_id = (body or {}).get("callback_id")
            url = (body or {}).get("callback_url")
            if not callback_id or not url:
                return 400, {"error": "asynchronous plugin called without callback_id and callback_url"}
            timer = threading.Timer(behaviour.delay, self._send_callback, args=(url, behaviour.outcome, plugin))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
            return 202, {"accepted": True, "callback_id": callback_id}
        return 200, {"plugin": plugin, "result": "ok", "echo": (body or {}).get("input")}

    def _send_callback(self, url: str, outcome: str, plugin: str) -> None:
        body = json.dumps({"outcome": outcome, "output": {"plugin": plugin, "result": "ok (async)"},
                           "reason": None if outcome == "succeeded" else "sandbox async failure"}).encode()
        session = requests.Session()
        session.trust_env = False
        session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
