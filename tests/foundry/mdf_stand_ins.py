"""Local stand-ins for an MDF that cannot be used: a server that accepts connections and
never answers, a port nobody listens on, a host name that never resolves (RFC 6761
reserves ``.invalid``), and a resolver that never answers for one host name. Imported by
name (``conftest.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from silent_servers import silent_server

__all__ = ["STUCK_HOST", "UNRESOLVABLE", "closed_port_url", "silent_server", "stuck_resolver"]

UNRESOLVABLE = "http://mdf.stembench.invalid"
STUCK_HOST = "mdf-dns-hangs.stembench.invalid"


def closed_port_url() -> str:
    """A local URL whose port refuses connections (bound, then released)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextmanager
def stuck_resolver(host: str = STUCK_HOST) -> Iterator[tuple[list[str], threading.Event]]:
    """Yield ``(asked, released)``: ``socket.getaddrinfo`` never answers for ``host``.

    A lookup of ``host`` is recorded in ``asked`` and blocks until ``released`` is set (on
    leaving the block, or after 60 s), then fails as a DNS timeout (``EAI_AGAIN``); other
    names resolve as usual. ``requests``' timeouts do not cover this wait.
    """
    real = socket.getaddrinfo
    asked: list[str] = []
    released = threading.Event()

    def lookup(name: Any, *args: Any, **kwargs: Any) -> Any:
        if name != host:
            return real(name, *args, **kwargs)
        asked.append(name)
        released.wait(60)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    socket.getaddrinfo = lookup  # type: ignore[assignment]
    try:
        yield asked, released
    finally:
        released.set()
        socket.getaddrinfo = real
