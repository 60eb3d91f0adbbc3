"""The sandbox's control routes: another process (``powerx-agent local sandbox ...``) injects faults into
the downstream services of a running ``local serve`` over loopback HTTP.

    GET  /_sandbox/state                      the faults in force and how many calls were recorded
    GET  /_sandbox/calls?limit=N              the last N recorded downstream calls (N ≤ 500)
    POST /_sandbox/reset                      every plugin and service answers normally again
    POST /_sandbox/plugins/{plugin}           {"mode": "succeed"}
                                              {"mode": "fail", "times": N, "status": 500}     (times -1: always)
                                              {"mode": "down"}                                (always 503)
                                              {"mode": "flaky", "rate": 0.3, "seed": 7, "status": 503}
                                              {"mode": "slow", "seconds": 3, "times": N}      (times -1: always)
                                              {"mode": "async", "delay": 1, "outcome": "succeeded|failed"}
    POST /_sandbox/services/{notifications|ops}  {"state": "down|up"} or {"fail_times": N}

Every field is checked and bounded; a bad request gets ``400`` with a code and changes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from powerx_agent.taskflow.model import PLUGIN_ID_RE

PREFIX = "/_sandbox/"
MAX_BODY_BYTES = 4096
MAX_CALLS = 500
SERVICES = ("notifications", "ops")
MODES = ("succeed", "fail", "down", "flaky", "slow", "async")
_PLUGIN = re.compile(PLUGIN_ID_RE)
_PLUGIN_ROUTE = re.compile(r"^/_sandbox/plugins/(?P<plugin>[^/?]{1,64})$")
_SERVICE_ROUTE = re.compile(r"^/_sandbox/services/(?P<service>[a-z]{1,20})$")

Answer = tuple[int, dict[str, Any]]


class Refused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _bad(code: str, message: str) -> Answer:
    return 400, {"code": code, "message": message}


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float, *, integer: bool) -> Any:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise Refused("sandbox.bad_value", f"{name} must be {'an integer' if integer else 'a number'}")
    if not low <= value <= high:
        raise Refused("sandbox.bad_value", f"{name} must be within [{low:g}, {high:g}], got {value}")
    return value


def _times(body: dict[str, Any]) -> int:
    times = _number(body, "times", -1, -1, 10_000, integer=True)
    if times == 0:
        raise Refused("sandbox.bad_value", "times must be -1 (always) or 1..10000")
    return int(times)


def _plugin_change(sandbox: Any, plugin: str, body: dict[str, Any]) -> Callable[[], None]:
    """Check everything first, return the change to make."""
    mode = body.get("mode")
    allowed = {"succeed": set(), "down": set(), "fail": {"times", "status"}, "flaky": {"rate", "seed", "status"},
               "slow": {"seconds", "times"}, "async": {"delay", "outcome"}}
    if mode not in allowed:
        raise Refused("sandbox.bad_mode", f"mode must be one of {', '.join(MODES)}")
    extra = set(body) - {"mode"} - allowed[mode]
    if extra:
        raise Refused("sandbox.unknown_field", f"{mode} takes no {', '.join(sorted(extra))}")
    if mode == "succeed":
        return lambda: sandbox.succeed(plugin)
    if mode == "down":
        return lambda: sandbox.fail_always(plugin, 503)
    if mode == "fail":
        times, status = _times(body), int(_number(body, "status", 500, 400, 599, integer=True))
        return (lambda: sandbox.fail_always(plugin, status)) if times < 0 else (
            lambda: sandbox.fail_times(plugin, times, status))
    if mode == "flaky":
        rate = float(_number(body, "rate", 0.5, 0.0, 1.0, integer=False))
        seed = int(_number(body, "seed", 0, 0, 2**31 - 1, integer=True))
        status = int(_number(body, "status", 503, 400, 599, integer=True))
        return lambda: sandbox.flaky(plugin, rate, seed, status)
    if mode == "slow":
        seconds = float(_number(body, "seconds", 3.0, 0.0, 120.0, integer=False))
        times = _times(body)
        return lambda: sandbox.slow(plugin, seconds, times)
    delay = float(_number(body, "delay", 1.0, 0.0, 3600.0, integer=False))
    outcome = body.get("outcome", "succeeded")
    if outcome not in ("succeeded", "failed"):
        raise Refused("sandbox.bad_value", "outcome must be succeeded or failed")
    return lambda: sandbox.async_callback(plugin, delay, outcome)


def _service_change(sandbox: Any, service: str, body: dict[str, Any]) -> Callable[[], None]:
    if service not in SERVICES:
        raise Refused("sandbox.unknown_service", f"service must be {' or '.join(SERVICES)}")
    if set(body) == {"state"} and body["state"] in ("up", "down"):
        if body["state"] == "down":
            return lambda: sandbox.service_down(service)
        return lambda: (sandbox.service_up(service), sandbox.service_fail_times(service, 0))
    if set(body) == {"fail_times"}:
        times = int(_number(body, "fail_times", 1, 1, 10_000, integer=True))
        return lambda: sandbox.service_fail_times(service, times)
    raise Refused("sandbox.bad_request", 'give {"state": "up"|"down"} or {"fail_times": N}')


def change(sandbox: Any, path: str, raw: bytes) -> Answer:
    route = urlsplit(path).path
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return _bad("sandbox.invalid_json", "the body is not JSON")
    if not isinstance(body, dict):
        return _bad("sandbox.invalid_json", "the body must be a JSON object")
    try:
        if route == "/_sandbox/reset":
            sandbox.reset()
            return 200, {"reset": True, **sandbox.describe()}
        plugin = _PLUGIN_ROUTE.match(route)
        service = _SERVICE_ROUTE.match(route)
        if plugin:
            name = plugin["plugin"]
            if not _PLUGIN.fullmatch(name) or ".." in name:
                raise Refused("sandbox.bad_plugin", f"{name[:64]!r} is not a plugin id")
            _plugin_change(sandbox, name, body)()
        elif service:
            _service_change(sandbox, service["service"], body)()
        else:
            return 404, {"code": "sandbox.no_route", "message": f"no control route {route[:80]}"}
    except Refused as exc:
        return _bad(exc.code, exc.message)
    return 200, sandbox.describe()


def read(sandbox: Any, path: str) -> Answer:
    parts = urlsplit(path)
    if parts.path == "/_sandbox/state":
        return 200, sandbox.describe()
    if parts.path == "/_sandbox/calls":
        raw = (parse_qs(parts.query).get("limit") or ["50"])[0]
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_CALLS:
            return _bad("sandbox.bad_value", f"limit must be 1..{MAX_CALLS}")
        calls = sandbox.calls()[-int(raw):]
        return 200, {"calls": [{"path": c.path, "status": c.status, "at": c.at,
                                "idempotency_key": c.headers.get("Idempotency-Key")} for c in calls]}
    return 404, {"code": "sandbox.no_route", "message": f"no route {parts.path[:80]}"}


class SandboxUnreachable(RuntimeError):
    pass


class SandboxClient:
    """What ``powerx-agent local sandbox`` calls: the control routes of a running sandbox, on loopback."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        import requests

        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # loopback: never through a proxy

    def _call(self, method: str, route: str, body: dict[str, Any] | None = None) -> Answer:
        import requests

        try:
            response = self._session.request(method, f"{self.url}{PREFIX}{route}", json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SandboxUnreachable(f"no sandbox answers at {self.url} ({type(exc).__name__}): is "
                                     "`powerx-agent local serve` running? (it prints the sandbox URL)") from None
        try:
            answer = response.json()
        except ValueError:
            raise SandboxUnreachable(f"{self.url} answered {response.status_code} without JSON: "
                                     "not a PowerX sandbox") from None
        if response.status_code == 404 and isinstance(answer, dict) and "code" not in answer:
            raise SandboxUnreachable(f"{self.url} is not a PowerX sandbox (no control routes)")
        return response.status_code, answer

    def state(self) -> Answer:
        return self._call("GET", "state")

    def calls(self, limit: int) -> Answer:
        return self._call("GET", f"calls?limit={limit}")

    def reset(self) -> Answer:
        return self._call("POST", "reset", {})

    def plugin(self, plugin: str, body: dict[str, Any]) -> Answer:
        return self._call("POST", f"plugins/{plugin}", body)

    def service(self, service: str, body: dict[str, Any]) -> Answer:
        return self._call("POST", f"services/{service}", body)
