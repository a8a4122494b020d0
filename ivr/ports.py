"""Free local ports, so that several stacks (tests, a demo) can run side by side."""

from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def free_port_pair(host: str = "127.0.0.1") -> int:
    """An even UDP port whose successor is free too (RTP and RTCP)."""
    for _ in range(200):
        port = free_port(socket.SOCK_DGRAM, host)
        if port % 2 == 0 and port < 65535:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second:
                    second.bind((host, port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no free UDP port pair")
