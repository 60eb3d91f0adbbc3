"""Serve the console on 127.0.0.1 in a thread (``local serve``) or until Ctrl-C (``powerx-agent console``)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from werkzeug.serving import make_server

from powerx_agent.console.app import ConsoleContext, create_app


class ConsoleServer:
    def __init__(self, context: ConsoleContext, port: int = 0) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.context = context
        self._server: Any = make_server("127.0.0.1", port, create_app(context), threaded=True)
        self.port = int(self._server.server_port)
        context.allowed_hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> ConsoleServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="console-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
