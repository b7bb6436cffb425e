"""Local stand-ins for an MDF that cannot be used: a server that accepts connections and
never answers, a port nobody listens on, and a host name that never resolves (RFC 6761
reserves ``.invalid``). Imported by name (``conftest.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

UNRESOLVABLE = "http://mdf.stembench.invalid"


@contextmanager
def silent_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """Yield ``(url, accepted)``: a local server that accepts and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()


def closed_port_url() -> str:
    """A local URL whose port refuses connections (bound, then released)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
