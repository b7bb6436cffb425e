"""Waiting for a condition on the stack, failing the test by name when it does not come."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

__all__ = ["wait_for"]


def wait_for(condition: Callable[[], object], what: str, seconds: float = 300, *,
             details: Callable[[], str] = str) -> None:
    """Wait until ``condition()`` is true; fail naming ``what`` (and ``details()``) after
    ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.5)
    extra = details()
    pytest.fail(f"{what} did not happen within {seconds:.0f} s" + (f"\n{extra}" if extra else ""))
