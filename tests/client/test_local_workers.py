"""Local workers share the machine's cores instead of each taking all of them."""

from __future__ import annotations

import concurrent.futures
import os

import torch

from stembench.client.executors import local_executor, threads_per_worker


def test_each_worker_gets_its_share_of_the_cores(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        monkeypatch.delenv(name, raising=False)
    cores = len(os.sched_getaffinity(0))
    assert threads_per_worker(2) == max(1, cores // 2)
    assert threads_per_worker(4 * cores) == 1
    executor = local_executor(2)
    try:
        assert executor.submit(os.getenv, "OMP_NUM_THREADS").result() == str(max(1, cores // 2))
        assert executor.submit(os.getenv, "TF_NUM_INTEROP_THREADS").result() == "1"
        # PyTorch, imported in the worker after the initializer ran, sized its pool by it
        assert executor.submit(torch.get_num_threads).result() == max(1, cores // 2)
    finally:
        executor.shutdown()


def test_a_thread_count_set_by_the_user_is_kept(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    executor = local_executor(2)
    try:
        assert executor.submit(torch.get_num_threads).result() == 2
    finally:
        executor.shutdown()


def test_a_stopped_pool_has_closed_before_stop_executor_returns() -> None:
    """Once stop_executor returns, the pool's manager thread has ended, so the interpreter's
    exit hook finds nothing to race with (Python 3.11 printed "Exception ignored in: <module
    'threading'> ... Bad file descriptor" at exit when the thread was still closing its pipe)."""
    import threading
    import time

    from stembench.client.lifeline import stop_executor

    before = set(threading.enumerate())
    executor = local_executor(1)
    busy = executor.submit(time.sleep, 600)
    for _ in range(600):
        if busy.running():
            break
        time.sleep(0.05)
    assert busy.running()
    started = set(threading.enumerate()) - before
    assert started  # the pool's manager thread (and its queue feeder)
    stop_executor(executor)
    assert not [t for t in started if t.is_alive()]
    assert busy.done()


def test_stopping_a_pool_ends_a_worker_that_is_busy() -> None:
    """stop_executor terminates the pool's workers (found through the pool's own record)."""
    import time

    from stembench.client.executors import LocalPool
    from stembench.client.lifeline import stop_executor

    executor = local_executor(1)
    assert isinstance(executor, LocalPool)
    assert executor.submit(os.getpid).result() in {p.pid for p in executor.worker_processes}
    busy = executor.submit(time.sleep, 600)  # a model that never returns
    for _ in range(600):  # until the pool has handed it to its worker (not cancellable then)
        if busy.running():
            break
        time.sleep(0.05)
    assert busy.running()
    workers = executor.worker_processes
    assert workers and all(p.is_alive() for p in workers)
    stop_executor(executor)
    for process in workers:
        process.join(60)  # bounded: a worker left alive fails below, it is not waited for
    assert not any(p.is_alive() for p in workers)
    # the pool's manager thread marks the future broken once it sees its worker gone
    concurrent.futures.wait([busy], timeout=60)
    assert busy.done()
