"""A model that waits at a gate the test opens, for fault tests on the Globus Compute stack.

``gated(image, pixel_size)`` finds no columns. While the file ``closed`` exists in the gate
folder (``stembench-gate`` in ``$STEMBENCH_CACHE``, the dataset cache the endpoint's workers
and the test share), it first waits in a Python loop, so that a test knows a shard is
certainly running on the endpoint at the moment it injects a fault, however fast the
machine. It writes ``entered-<pid>-<n>`` (holding the Slurm job id) when it starts waiting
and ``left-<pid>-<n>`` when the wait ends: ``opened``, or the class name of the exception
that ended it (the endpoint's ``GC_TASK_TIMEOUT`` raises parsl's ``AppTimeout`` into the
task's thread); a process killed with its Slurm job writes nothing more.

``counted(image, pixel_size)`` is the ``atomap-like`` model that first appends one line to
``calls`` in the gate folder per call, so that a test sees every model call made anywhere.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GATE_FOLDER", "calls", "counted", "gate_folder", "gated"]

GATE_FOLDER = "stembench-gate"
_calls = itertools.count()


def gate_folder(cache: str | Path | None = None) -> Path:
    """The gate folder in ``cache`` (default ``$STEMBENCH_CACHE``)."""
    return Path(cache if cache is not None else os.environ["STEMBENCH_CACHE"]) / GATE_FOLDER


def gated(image: Any, pixel_size: float) -> np.ndarray:
    """No columns, once the gate is open (at once when it is not closed)."""
    folder = gate_folder()
    closed = folder / "closed"
    if closed.exists():
        name = f"{os.getpid()}-{next(_calls)}"
        (folder / f"entered-{name}").write_text(os.environ.get("SLURM_JOB_ID", ""),
                                                 encoding="utf-8")
        how = "opened"
        try:
            while closed.exists():
                time.sleep(0.05)
        except BaseException as exc:
            how = type(exc).__name__
            raise
        finally:
            (folder / f"left-{name}").write_text(how, encoding="utf-8")
    return np.zeros((0, 2))


def calls(cache: str | Path | None = None) -> list[str]:
    """The lines :func:`counted` wrote in ``cache``'s gate folder: one per model call."""
    path = gate_folder(cache) / "calls"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def counted(image: Any, pixel_size: float) -> np.ndarray:
    """The ``atomap-like`` model's columns, after recording the call in ``calls``."""
    from stembench.endpoints.models.registry import load_model

    with open(gate_folder() / "calls", "a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()} {os.environ.get('SLURM_JOB_ID', '')}\n")
    return np.asarray(load_model("atomap-like").locate(image, pixel_size=pixel_size))
