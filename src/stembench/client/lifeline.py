"""Worker processes that never outlive their run, and runs that stop cleanly on a signal.

A local worker process runs :func:`watch_parent` when it starts. On Linux it asks the
kernel to kill it when its parent goes (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), and on
every platform a watchdog thread ends it once its parent process id changes, which is what
happens when the parent is killed, even with ``kill -9``. Workers ignore Ctrl-C: the
client handles it, keeps what finished and ends its workers with :func:`stop_executor`.
:func:`interrupt_on_sigterm` makes ``SIGTERM`` stop a run the way Ctrl-C does.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["PARENT_POLL_S", "POOL_CLOSE_WAIT_S", "give_up", "interrupt_on_sigterm", "stop_executor",
           "watch_parent"]

#: How often (seconds) a worker's watchdog checks that its parent is alive.
PARENT_POLL_S = 0.5
#: Seconds :func:`stop_executor` waits for a local pool to close once its workers are ended.
POOL_CLOSE_WAIT_S = 10.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask the Linux kernel to SIGKILL this process when its parent ends."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the watchdog thread still works
        return


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def watch_parent(parent_pid: int) -> None:
    """End this worker process when the process ``parent_pid`` that started it ends.

    Used as the ``initializer`` of local process pools (see
    :func:`stembench.client.executors.local_executor`).

    Parameters
    ----------
    parent_pid : int
        The client's process id, taken when the pool was made.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent was gone before the watch began
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="stembench-parent-watch",
                     daemon=True).start()


def stop_executor(executor: cf.Executor) -> None:
    """Shut ``executor`` down without waiting for its tasks; a local pool's workers end at once.

    The workers of a :class:`~stembench.client.executors.LocalPool` (its own record of them;
    no private attribute of the pool is read) are terminated, and the pool is given up to
    :data:`POOL_CLOSE_WAIT_S` to close (:meth:`~stembench.client.executors.LocalPool.wait_closed`).

    Shards still running in a process pool are abandoned: their results would be lost
    anyway, and a model that hangs would otherwise keep the client from exiting.
    """
    inner = getattr(executor, "inner", executor)  # the service wraps its pool
    workers = list(getattr(inner, "worker_processes", ()))  # a LocalPool's
    executor.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        if process.is_alive():
            process.terminate()
    wait_closed = getattr(inner, "wait_closed", None)  # a LocalPool's
    if callable(wait_closed):
        wait_closed(POOL_CLOSE_WAIT_S)


def give_up(future: cf.Future[Any]) -> bool:
    """Stop waiting for ``future``'s task; whether the future was cancelled.

    A local future is cancelled, which keeps a task that has not started from starting
    (a process pool's running task is not stopped by it: :func:`stop_executor` and the
    image deadline do that). A Globus Compute future is never cancelled: Globus Compute
    cannot stop a sent task (a shard's copy stops itself once past the ``not_after_unix``
    it was sent with: :mod:`stembench.endpoints.expiry`), and the SDK's result watcher
    keeps the future open; when the
    task's error result comes (the endpoint's ``GC_TASK_TIMEOUT``, say), the watcher sets
    its exception unguarded (globus_compute_sdk/sdk/executor.py:1575-1578), which raises
    ``InvalidStateError`` on a cancelled future in the watcher's thread, after it took every
    other result of the same batch off its watch list and acknowledged their messages: they
    would never arrive. The caller simply stops tracking it; the executor's shutdown forgets
    it (:func:`~stembench.client.executors.abandon_watched_futures`).

    Parameters
    ----------
    future : concurrent.futures.Future
        The future given up on (its deadline passed, the run was interrupted).
    """
    compute = sys.modules.get("globus_compute_sdk.sdk.asynchronous.compute_future")
    if compute is not None and isinstance(future, compute.ComputeFuture):
        return False
    return future.cancel()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Within the block, ``SIGTERM`` raises :class:`KeyboardInterrupt` in the main thread.

    Outside the main thread (where signal handlers cannot be set) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
