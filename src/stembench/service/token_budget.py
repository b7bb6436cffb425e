"""Who may start a token check: a budget per client address, and room kept for known callers.

Each token the service has not seen costs a call to Globus Auth, so made-up tokens must not
be able to take every check: a client address (an IPv6 client's /64 network, which one
machine commonly holds whole) may have at most :data:`PER_ADDRESS` checks in flight, and
:data:`RESERVED` of the :data:`TOTAL` are kept for addresses that have passed a check
before (a token of theirs was accepted), which also introspect on threads of their own. A
refused check (429 or 503) takes nothing from anyone else. Behind a reverse proxy, run
uvicorn with ``--forwarded-allow-ips`` so that the address is the client's, not the proxy's.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict, defaultdict

__all__ = ["PER_ADDRESS", "RESERVED", "TOTAL", "IntrospectionBudget", "client_network"]

#: Checks in flight at most: one address's, all addresses', and those kept for known callers.
PER_ADDRESS = 2
TOTAL = 64
RESERVED = 16
#: Addresses remembered as known (least recently seen forgotten first).
_KNOWN_SIZE = 4096


def client_network(host: str | None) -> str:
    """The key a client address counts under: ``address <ip>``, or ``network <ip>/64``
    for IPv6 (a name that is no address, as a test client's, counts as itself)."""
    host = host or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "address " + host
    if address.version == 6:
        return "network " + str(ipaddress.ip_network(f"{address}/64", strict=False))
    return "address " + str(address)


class IntrospectionBudget:
    """Counts the token checks in flight per address and in all (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._out: defaultdict[str, int] = defaultdict(int)
        self._known: OrderedDict[str, None] = OrderedDict()
        self._total = 0

    def known(self, network: str) -> bool:
        """True when a check from ``network`` has passed before."""
        with self._lock:
            return network in self._known

    def passed(self, network: str) -> None:
        """Remember that a token from ``network`` was accepted."""
        with self._lock:
            self._known[network] = None
            self._known.move_to_end(network)
            while len(self._known) > _KNOWN_SIZE:
                self._known.popitem(last=False)

    def take(self, network: str) -> tuple[int, str] | None:
        """Count one more check from ``network``; the refusal (status, message) when its
        address, or all unknown addresses together, have used their share."""
        with self._lock:
            if self._out[network] >= PER_ADDRESS:
                return 429, (f"too many token checks from your address are waiting for "
                             f"Globus Auth (at most {PER_ADDRESS}); try again shortly")
            limit = TOTAL if network in self._known else TOTAL - RESERVED
            if self._total >= limit:
                return 503, ("too many token checks are waiting for Globus Auth; try again "
                             "later")
            self._out[network] += 1
            self._total += 1
        return None

    def give(self, network: str) -> None:
        """A check from ``network`` ended."""
        with self._lock:
            self._total -= 1
            self._out[network] -= 1
            if self._out[network] <= 0:
                del self._out[network]
