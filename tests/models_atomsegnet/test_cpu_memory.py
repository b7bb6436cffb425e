"""Freed memory kept in the process: glibc's own accounting (``mallinfo2``) in a fresh
interpreter, with and without :func:`keep_freed_memory`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_ACCOUNTING = """
import ctypes, json, sys
import numpy as np
if sys.argv[1] == "keep":
    from stembench.endpoints.models.cpu_memory import keep_freed_memory
    assert keep_freed_memory() and keep_freed_memory()
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
block = np.ones(16 << 20, dtype=np.float32)  # 64 MiB, over glibc's largest mmap threshold
alive = libc.mallinfo2()
del block
freed = libc.mallinfo2()
print(json.dumps({"mmapped_alive": alive.hblkhd, "heap_after_free": freed.arena,
                  "free_in_heap_after_free": freed.fordblks}))
"""
_BLOCK = 64 << 20


def _accounting(mode: str) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", _ACCOUNTING, mode], capture_output=True,
                          text=True, check=True)
    return dict(json.loads(done.stdout))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux's")
def test_large_blocks_come_from_the_heap_and_stay_after_free() -> None:
    default = _accounting("default")
    assert default["mmapped_alive"] >= _BLOCK  # its own mmap, unmapped (faulted anew) on free
    assert default["heap_after_free"] < _BLOCK
    kept = _accounting("keep")
    assert kept["mmapped_alive"] < _BLOCK  # served from the heap ...
    assert kept["heap_after_free"] >= _BLOCK  # ... which keeps it once freed,
    assert kept["free_in_heap_after_free"] >= _BLOCK  # free for the next allocation
