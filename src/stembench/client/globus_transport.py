"""Bounded calls to Globus services: one shared way to give a globus_sdk client a timeout
and a retry limit.

globus_sdk's defaults are 60 s a request and up to 5 retries on network errors, 429 and
5xx (globus_sdk/transport/requests.py, retry_config.py): minutes per call on a hung service.
Every client stembench builds for a call that must end soon takes these options instead.
"""

from __future__ import annotations

from typing import Any

__all__ = ["bounded_transport"]


def bounded_transport(*, timeout_s: float, max_retries: int = 0) -> dict[str, Any]:
    """The ``transport`` and ``retry_config`` keyword arguments of a globus_sdk client
    whose requests make ``max_retries + 1`` attempts at most, each bounded by ``timeout_s``.

    Parameters
    ----------
    timeout_s : float
        Seconds one request may take.
    max_retries : int, optional
        Attempts after the first of a request that fails; default 0.

    The caller has checked that globus_sdk is installed (it builds the client).
    """
    from globus_sdk.transport import RequestsTransport, RetryConfig

    return {"transport": RequestsTransport(http_timeout=timeout_s),
            "retry_config": RetryConfig(max_retries=max_retries)}
