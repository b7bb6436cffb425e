"""Keep freed memory in the process on CPU inference, instead of returning it to the kernel.

glibc's ``malloc`` serves every block over its mmap threshold (128 KiB to 32 MiB, adjusted as
the program runs) with a fresh ``mmap`` and gives it back with ``munmap`` when freed, and it
trims the top of the heap once more than 128 KiB there is free. A convolutional network on a
1024x1024 image allocates and frees activation maps of up to 268 MB at every layer, so every
layer's output is page-faulted in afresh. On a 2-core machine that was a third of
AtomSegNet's forward pass at 1024x1024 (3.7 s, 17 s of system time over a run of five
passes; with freed memory kept: 2.3 s and 4 s of system time; see
``bench/bench_compute_bound.py``).

:func:`keep_freed_memory` raises both thresholds so that freed blocks are reused, as the
tcmalloc/jemalloc set-ups recommended for CPU inference do. The cost: the process keeps the
peak of its heap (about 1.5 GB for AtomSegNet at 1024x1024) until it ends, which suits a
worker that runs one model over a dataset. It changes no result.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["keep_freed_memory"]

#: mallopt parameters (glibc ``malloc.h``)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: blocks up to this size come from the heap and are reused after they are freed
_MMAP_THRESHOLD_BYTES = 1 << 30
#: free memory at the top of the heap is handed back to the kernel only above this
_TRIM_THRESHOLD_BYTES = (1 << 31) - 1

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Make glibc reuse freed large blocks for the rest of this process (once; idempotent).

    Returns
    -------
    bool
        True when the setting is in effect: Linux with glibc, both ``mallopt`` calls accepted.
        False elsewhere (macOS, Windows, musl), where nothing is changed.
    """
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
    )
