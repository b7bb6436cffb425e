"""The per-image deadline interrupts a model in the main thread and in other threads."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from stembench.endpoints.models.deadline import DeadlineExceeded, check_timeout, deadline
from stembench.errors import InputError


def _spin() -> None:
    while True:
        pass


def test_main_thread_sleep_is_interrupted_and_the_handler_restored() -> None:
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(DeadlineExceeded), deadline(0.2):
        time.sleep(10**6)
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_model_that_swallows_exceptions_is_still_interrupted() -> None:
    def stubborn() -> None:
        while True:
            try:
                _spin()
            except Exception:  # what a careless model does
                continue

    with pytest.raises(DeadlineExceeded), deadline(0.2):
        stubborn()


def test_other_threads_are_interrupted() -> None:
    outcome: list[str] = []

    def work() -> None:
        try:
            with deadline(0.2):
                _spin()
        except DeadlineExceeded:
            outcome.append("interrupted")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert outcome == ["interrupted"]


def _quick_then_past_then_slow() -> list[str]:
    """A quick call under a deadline, a wait past it outside the block, then a slow call."""
    events = []
    with deadline(0.2):
        events.append(str(sum(range(1000))))
    try:
        time.sleep(0.6)  # past the first deadline, outside its block
        events.append("left alone")
    except DeadlineExceeded:
        events.append("interrupted after its block")
    try:
        with deadline(0.2):
            time.sleep(5)
        events.append("slow call not cut")
    except DeadlineExceeded:
        events.append("slow call cut")
    return events


def test_a_call_within_its_deadline_is_left_alone() -> None:
    """Left alone in its block and after it, while the same deadline cuts a slow call."""
    expected = ["499500", "left alone", "slow call cut"]
    assert _quick_then_past_then_slow() == expected  # the main thread (SIGALRM)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.extend(_quick_then_past_then_slow()))
    thread.start()
    thread.join()
    assert outcome == expected  # another thread (asynchronous exception)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "10"])
def test_a_deadline_must_be_a_positive_number(bad: object) -> None:
    with pytest.raises(InputError, match="image timeout must be a positive number of seconds"):
        check_timeout(bad)  # type: ignore[arg-type]



def _model(locate: Callable[[Any, float], Any]) -> Any:
    from stembench.endpoints.models.loaders import CallableModel

    return CallableModel(locate, name="m")


def test_a_keyboard_interrupt_from_the_model_fails_its_image_only() -> None:
    from stembench.endpoints.models.guard import run_model_safely

    def interrupting(image: Any, pixel_size: float) -> Any:
        raise KeyboardInterrupt("raised by the model")

    try:
        output = run_model_safely(_model(interrupting), np.zeros((32, 32)), 0.1, image_id="i")
    except KeyboardInterrupt:
        pytest.fail("the model's own KeyboardInterrupt ended the caller")
    assert output.error == ("image 'i': model 'm' raised KeyboardInterrupt: raised by the "
                            "model (not a Ctrl-C: the model raised it itself; it fails this "
                            "image only)")


def test_the_users_ctrl_c_still_ends_the_call() -> None:
    import os

    from stembench.endpoints.models.guard import run_model_safely

    def pressed_during_the_call(image: Any, pixel_size: float) -> Any:
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C delivers
        time.sleep(10)
        return np.zeros((0, 2))

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        run_model_safely(_model(pressed_during_the_call), np.zeros((32, 32)), 0.1, image_id="i")
    assert signal.getsignal(signal.SIGINT) is before
