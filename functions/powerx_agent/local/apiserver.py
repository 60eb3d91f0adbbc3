"""The internal API on loopback, as ``sam local start-api`` does it.

moto keeps the API Gateway resources but does not serve invoke URLs with Lambda proxy
integrations, so this small server turns each HTTP request into an API Gateway (REST) proxy
event and invokes the same Lambda function through the Lambda API.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from powerx_agent import spec

_ROUTES = {(method, path): key for key, (method, path) in spec.API_ROUTES.items()}
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit


def proxy_event(method: str, path: str, headers: dict[str, str], body: bytes, query: str = "") -> dict[str, Any]:
    multi = parse_qs(query, keep_blank_values=True) if query else {}
    return {
        "resource": path, "path": path, "httpMethod": method, "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        # as API Gateway: the last value of a repeated parameter, every value in the multi-value map
        "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
        "multiValueQueryStringParameters": multi or None, "pathParameters": None, "stageVariables": None,
        "requestContext": {"resourcePath": path, "httpMethod": method, "path": f"/local{path}", "stage": "local",
                           "requestId": str(uuid.uuid4()), "requestTimeEpoch": int(time.time() * 1000),
                           "identity": {"sourceIp": "127.0.0.1"}},
        "body": body.decode("utf-8", errors="replace") if body else None, "isBase64Encoded": False,
    }


class ApiServer:
    def __init__(self, invoke: Callable[[str, dict[str, Any]], tuple[Any, str | None]]) -> None:
        self._invoke = invoke
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self, port: int = 0) -> ApiServer:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                path, _, query = self.path.partition("?")
                key = _ROUTES.get(("POST", path))
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_REQUEST_BYTES:
                    self._reply(413, b'{"code":"request.too_large","message":"over 10 MB"}',
                                {"Content-Type": "application/json"})
                    return
                body = self.rfile.read(length) if length else b""
                if key is None:
                    self._reply(404, b'{"code":"route.not_found","message":"no such route"}',
                                {"Content-Type": "application/json"})
                    return
                payload, error = api._invoke(key, proxy_event("POST", path, dict(self.headers), body, query))
                if error or not isinstance(payload, dict) or "statusCode" not in payload:
                    # API Gateway's own answer to a failed integration; never the function's trace
                    self._reply(502, b'{"message":"Internal server error"}', {"Content-Type": "application/json"})
                    return
                data = (payload.get("body") or "").encode()
                self._reply(int(payload["statusCode"]), data, payload.get("headers") or {})

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
