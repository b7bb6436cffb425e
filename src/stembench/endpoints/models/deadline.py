"""A deadline on one model call: a model that runs past it is interrupted, not waited for.

In the main thread (a worker process of a local pool, an endpoint worker, ``assess --run``)
the deadline is a ``SIGALRM`` timer, which also interrupts blocking sleeps and waits. In
any other thread (a thread-pool executor) the exception is raised asynchronously in the
thread that runs the model, which takes effect at its next Python bytecode. A model stuck
inside native code that never returns to Python cannot be interrupted from within its
process; the client's task deadline is what ends that.
"""

from __future__ import annotations

import ctypes
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from stembench.errors import InputError

__all__ = ["DEFAULT_IMAGE_TIMEOUT_S", "DeadlineExceeded", "check_timeout", "deadline",
           "user_interrupts"]

#: Seconds one model call on one image may take before the image is failed.
DEFAULT_IMAGE_TIMEOUT_S = 300.0


class DeadlineExceeded(BaseException):
    """Raised inside a model call that ran past its deadline.

    A ``BaseException`` so that a model's own ``except Exception`` cannot swallow it.
    """


def check_timeout(seconds: float | None, *, option: str = "image timeout") -> float | None:
    """Return ``seconds`` if it is ``None`` or a positive finite number; else InputError."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not (
            math.isfinite(seconds) and seconds > 0):
        raise InputError(f"{option} must be a positive number of seconds, got {seconds!r}")
    return float(seconds)


def _raise_deadline(signum: int, frame: Any) -> None:
    raise DeadlineExceeded


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    previous_handler = signal.signal(signal.SIGALRM, _raise_deadline)
    start = time.monotonic()
    previous_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay > 0:  # give an outer timer (e.g. pytest-timeout) back what is left
            left = previous_delay - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))


def _set_async_exception(thread_id: int, exception: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception) if exception else None)


@contextmanager
def _async_raise(seconds: float) -> Iterator[None]:
    thread_id = threading.get_ident()
    lock, finished = threading.Lock(), threading.Event()
    state = {"active": True, "fired": False}

    def fire() -> None:
        if finished.wait(seconds):
            return
        with lock:
            if state["active"]:
                state["fired"] = True
                _set_async_exception(thread_id, DeadlineExceeded)

    timer = threading.Thread(target=fire, name="stembench-deadline", daemon=True)
    timer.start()
    try:
        yield
    finally:
        with lock:
            state["active"] = False
            if state["fired"]:  # raised but not yet delivered: take it back
                _set_async_exception(thread_id, None)
        finished.set()


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`DeadlineExceeded` in the calling thread after ``seconds``.

    Parameters
    ----------
    seconds : float or None
        The deadline; ``None`` sets none.
    """
    if seconds is None:
        yield
    elif threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM"):
        with _alarm(seconds):
            yield
    else:
        with _async_raise(seconds):
            yield


@contextmanager
def user_interrupts() -> Iterator[threading.Event]:
    """Tell the user's Ctrl-C apart from a ``KeyboardInterrupt`` a model raises itself.

    Yields an event that is set when ``SIGINT`` arrives within the block (in the main
    thread; the previous handler then runs as it would have). A ``KeyboardInterrupt``
    caught with the event unset was raised by the code in the block, not by the user. In
    another thread no signal is delivered, so the event stays unset.
    """
    pressed = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # a handler set outside Python: leave it alone
        yield pressed
        return

    def on_sigint(signum: int, frame: Any) -> None:
        pressed.set()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)
