"""Where ``local serve`` listens. ``--port P`` makes every endpoint predictable: the AWS endpoint (moto)
on P, the sandbox downstream services on P + 1, the internal API on P + 2 and the operations console
on P + 3. P = 0 takes free ports."""

from __future__ import annotations

import socket
from dataclasses import dataclass

SPAN = 4


@dataclass(frozen=True)
class Ports:
    moto: int
    sandbox: int
    api: int
    console: int


def service_ports(port: int) -> Ports:
    if port == 0:
        return Ports(0, 0, 0, 0)
    if not 1024 <= port <= 65535 - SPAN:
        raise ValueError(f"port must be 0 (free ports) or within 1024..{65535 - SPAN}, got {port}")
    return Ports(port, port + 1, port + 2, port + 3)


def busy(ports: Ports) -> list[int]:
    """The fixed ports some other process already listens on (checked before anything starts)."""
    taken = []
    for port in (ports.moto, ports.sandbox, ports.api, ports.console):
        if not port:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                taken.append(port)
    return taken
