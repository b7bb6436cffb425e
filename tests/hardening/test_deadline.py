"""The per-image deadline interrupts a model in the main thread and in other threads."""

from __future__ import annotations

import signal
import threading
import time

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


def test_a_call_within_its_deadline_is_left_alone() -> None:
    with deadline(5.0):
        value = sum(range(1000))
    time.sleep(0.01)
    assert value == 499500


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "10"])
def test_a_deadline_must_be_a_positive_number(bad: object) -> None:
    with pytest.raises(InputError, match="image timeout must be a positive number of seconds"):
        check_timeout(bad)  # type: ignore[arg-type]

