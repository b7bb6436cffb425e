"""Executors the client can run shards on.

The client accepts any :class:`concurrent.futures.Executor`. This module builds the
three kinds stembench knows:

* :func:`local_executor`: a local process pool (the embedded default);
* :class:`EngineExecutor`: a Globus Compute endpoint engine (``ProcessPoolEngine``
  or ``GlobusComputeEngine``) run in this process, with the real Compute serializer,
  no web service needed;
* :func:`globus_executor`: ``globus_compute_sdk.Executor`` bound to an endpoint id,
  using the user's Globus login.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import contextlib
import contextvars
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from stembench._optional import require
from stembench.errors import StembenchError

__all__ = [
    "EngineExecutor",
    "RemoteTaskError",
    "TaskTooLargeError",
    "abandon_watched_futures",
    "globus_executor",
    "local_executor",
    "remote_error_line",
    "submitter_wait",
    "threads_per_worker",
]

#: Globus Compute's limit on one submitted task (bytes).
TASK_LIMIT_BYTES = 10 * 1024 * 1024


log = logging.getLogger(__name__)


class RemoteTaskError(StembenchError):
    """A task raised on the endpoint; the message is the last line of the remote traceback."""


def remote_error_line(remote_data: str) -> str:
    """The last line of a remote traceback (the exception raised on the endpoint).

    A message that is no traceback (an endpoint's failure notice, e.g. ``Identity failed to
    map to a local user name.`` followed by the identity on lines of its own:
    globus_compute_endpoint/endpoint/core_endpoint.py:690-693, 746-753) is kept whole, its
    lines joined with ``; ``. The whole text goes to the debug log.

    Parameters
    ----------
    remote_data : str
        The traceback the endpoint sent (``TaskExecutionFailed.remote_data``, a failed
        ``Result``'s data).
    """
    log.debug("remote task failed: %s", remote_data)
    lines = [line.strip() for line in remote_data.splitlines() if line.strip()]
    if not lines:
        return "no remote traceback"
    return with_upgrade_advice(
        lines[-1] if "Traceback (most recent call last)" in remote_data else "; ".join(lines))


#: What an endpoint's older stembench answers a newer client: an operation
#: (``endpoints.remote``) or a request field (``endpoints.requests``) it does not know.
_OLDER_ENDPOINT_ANSWERS = ("unknown stembench operation", "unknown field(s)")


def with_upgrade_advice(line: str) -> str:
    """``line``, with the advice to upgrade the endpoint's stembench where it refuses a request.

    An endpoint keeps the stembench its administrator installed; a client of a newer release
    may send operations or request fields it does not know, and the endpoint refuses them in
    one line that alone would not say what to do. Versions do not tell (both sides may say
    the same release), so the advice names what the endpoint said, not which side is older.

    Parameters
    ----------
    line : str
        One line describing a task that failed on an endpoint.

    Examples
    --------
    >>> line = with_upgrade_advice("shard request: unknown field(s) ['x']; expected ...")
    >>> line[line.index("(the"):line.index(": upgrade")]
    "(the endpoint's stembench does not know this request's field or operation"
    >>> line[line.index("upgrade"):]
    'upgrade stembench where the endpoint runs, restart it)'
    >>> with_upgrade_advice("model failed")
    'model failed'
    """
    if any(answer in line for answer in _OLDER_ENDPOINT_ANSWERS) and "upgrade" not in line:
        line += (" (the endpoint's stembench does not know this request's field or operation: "
                 "upgrade stembench where the endpoint runs, restart it)")
    return line


class TaskTooLargeError(StembenchError):
    """A serialized task exceeds Globus Compute's 10 MB submission limit."""


#: Environment variables that set the thread pools of OpenMP (PyTorch), TensorFlow and BLAS.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS")


def threads_per_worker(max_workers: int) -> int:
    """This machine's usable cores shared evenly among ``max_workers`` workers (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, max_workers))


def _start_worker(parent_pid: int, threads: int, progress_dir: str) -> None:
    """Initializer of local workers: size the thread pools, log progress where the client
    watches (:mod:`stembench.endpoints.progress`), then follow the parent's life."""
    from stembench.client.lifeline import watch_parent
    from stembench.endpoints.progress import PROGRESS_DIR_ENV

    os.environ[PROGRESS_DIR_ENV] = progress_dir

    chosen = os.environ.get("OMP_NUM_THREADS") or str(threads)  # the user's choice stands
    for name in THREAD_VARIABLES:  # read when torch / TensorFlow / BLAS first start
        os.environ.setdefault(name, chosen)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    watch_parent(parent_pid)


class _RecordingContext:
    """A ``multiprocessing`` context that remembers every process it makes.

    It is a pool's ``mp_context`` (a public parameter of
    :class:`concurrent.futures.ProcessPoolExecutor`): the pool makes its workers with
    ``mp_context.Process``, so the pool's owner knows them without reading the pool's
    private state. Everything else is the underlying context's.
    """

    def __init__(self, method: str) -> None:
        self._context: Any = multiprocessing.get_context(method)
        self.processes: list[multiprocessing.process.BaseProcess] = []

    def Process(self, *args: Any, **kwargs: Any) -> multiprocessing.process.BaseProcess:  # noqa: N802
        process = self._context.Process(*args, **kwargs)
        self.processes.append(process)
        return process

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class LocalPool(cf.ProcessPoolExecutor):
    """A local process pool that knows its worker processes (:attr:`worker_processes`) and
    where they log their progress (:attr:`progress_dir`, ``None`` when they do not)."""

    progress_dir: Path | None = None
    _closing: threading.Thread | None = None

    def __init__(self, max_workers: int, *, initializer: Any, initargs: tuple[Any, ...]) -> None:
        self._recording = _RecordingContext("spawn")
        context: Any = self._recording
        super().__init__(max_workers=max_workers, mp_context=context, initializer=initializer,
                         initargs=initargs)

    @property
    def worker_processes(self) -> list[multiprocessing.process.BaseProcess]:
        """Every worker process this pool started (live or ended)."""
        return list(self._recording.processes)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """As :meth:`concurrent.futures.ProcessPoolExecutor.shutdown`, remembering the pool's
        manager thread first (the base class drops it on a shutdown that does not wait), so
        that :meth:`wait_closed` can wait for it."""
        thread = getattr(self, "_executor_manager_thread", None)  # CPython 3.9-3.13
        if isinstance(thread, threading.Thread):
            self._closing = thread
        super().shutdown(wait=wait, cancel_futures=cancel_futures)

    def wait_closed(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a shut-down pool's manager thread to end; whether
        it did. Python 3.11's exit hook writes to that thread's wake-up pipe without a lock and
        prints "Exception ignored ... Bad file descriptor" if the thread is closing it at that
        moment (fixed in 3.12); a pool that has closed leaves nothing to race with."""
        if self._closing is None:
            return True
        self._closing.join(timeout)
        return not self._closing.is_alive()


def local_executor(max_workers: int = 2, *, share_of: int | None = None) -> LocalPool:
    """A local process pool using the ``spawn`` start method (safe with torch/TF threads).

    Each worker's thread pools (PyTorch's OpenMP, TensorFlow's, BLAS) get this machine's
    cores divided among the workers (among ``share_of`` workers in all, when this pool is
    one of several running at once), unless ``OMP_NUM_THREADS`` is already set (then its
    value is used for all of them); otherwise each framework starts one thread per core in
    every worker, and the workers' threads contend for the same cores. Its workers end when
    this process ends, however it ends (see :func:`stembench.client.lifeline.watch_parent`).
    """
    pool = LocalPool(max_workers, initializer=_start_worker,
                     initargs=(os.getpid(), threads_per_worker(share_of or max_workers),
                               str(progress_dir())))
    pool.progress_dir = progress_dir()
    return pool


_PROGRESS_DIR: list[Path] = []


def progress_dir() -> Path:
    """The folder this process's local workers log their progress in (removed at exit).

    One per client process, shared by every local pool it makes, so that a shard retried
    on a rebuilt pool finds what its killed attempt finished.
    """
    if not _PROGRESS_DIR:
        folder = Path(tempfile.mkdtemp(prefix="stembench-progress-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _PROGRESS_DIR.append(folder)
    return _PROGRESS_DIR[0]


def globus_executor(endpoint_id: str, **options: Any) -> cf.Executor:
    """``globus_compute_sdk.Executor`` bound to ``endpoint_id`` (needs a Globus login).

    Parameters
    ----------
    endpoint_id : str
        UUID of a Globus Compute endpoint that has stembench installed.
    **options
        Passed to ``globus_compute_sdk.Executor`` (e.g. ``client=``, ``batch_size=``).

    Notes
    -----
    Every Executor made here starts in a task group of its own (one the web service
    creates for its first batch), never in one another Executor of this process used.
    """
    sdk = require("globus_compute_sdk", extra="compute", purpose="Remote evaluation")
    executor = sdk.Executor(endpoint_id=endpoint_id, **options)
    if "task_group_id" not in options:
        # globus_compute_sdk/sdk/executor.py:193-195 starts an Executor in the class-wide
        # Executor._default_task_group_id, which executor.py:320-325 sets to the task
        # group of any earlier Executor in this process (another user's, in the service);
        # the web service refuses a task group the caller may not use (sdk/client.py:529-533).
        # None makes the service create a new group on the first batch (client.py:533);
        # the setter leaves the class default alone for None (executor.py:322-325).
        executor.task_group_id = None
    result: cf.Executor = executor
    return result


#: Seconds :func:`abandon_watched_futures` waits for a batch being sent at shutdown.
SUBMITTER_WAIT_S = 60.0
_SUBMITTER_WAIT_S = contextvars.ContextVar("stembench_submitter_wait_s",
                                          default=SUBMITTER_WAIT_S)


@contextlib.contextmanager
def submitter_wait(seconds: float) -> Iterator[None]:
    """Within the block (this thread only), :func:`abandon_watched_futures` waits at most
    ``seconds`` for a batch being sent, instead of :data:`SUBMITTER_WAIT_S`.

    For a process that is stopping (the service's worker): a batch still in flight after
    that is left to the process's exit.
    """
    token = _SUBMITTER_WAIT_S.set(seconds)
    try:
        yield
    finally:
        _SUBMITTER_WAIT_S.reset(token)


def abandon_watched_futures(executor: Any) -> int:
    """Stop waiting for the results of ``executor``'s submitted tasks; their number.

    ``globus_compute_sdk.Executor.shutdown(cancel_futures=True)`` cancels only tasks not
    yet sent (sdk/executor.py:907-915). A sent task stays in its task group's result
    watcher (``_RESULT_WATCHERS``, executor.py:49 and 1392) even when its future was
    cancelled; the watcher's stopper thread, which is not a daemon, and the SDK's exit
    thread (executor.py:52-64, 1479-1488) wait until every such task has a result, so a
    process that gave up on a task (deadline, Ctrl-C) would not exit before the remote
    task ends. Shutting the watcher down with ``cancel_futures`` (executor.py:1454-1490)
    forgets them. Globus Compute cannot stop the remote task itself: the endpoint's
    ``GC_TASK_TIMEOUT`` does that (see
    :func:`stembench.endpoints.endpoint_config.user_config_schema`).

    Call it after ``executor.shutdown``: a batch that was being sent (its POST in flight)
    gets its task group and its result watcher only when the answer comes
    (executor.py:1232-1235, then ``_get_result_watcher``), after ``shutdown`` returned; so
    the submitter thread, which ends after that batch, is waited for first (at most
    :data:`SUBMITTER_WAIT_S`, or what :func:`submitter_wait` sets; the POST itself is
    bounded by globus-sdk's timeouts).

    Anything that is not an SDK Executor with a task group is left alone (0).
    """
    submitter = getattr(executor, "_task_submitter", None)
    if isinstance(submitter, threading.Thread) and submitter is not threading.current_thread():
        submitter.join(timeout=_SUBMITTER_WAIT_S.get())
    module = sys.modules.get("globus_compute_sdk.sdk.executor")
    group = getattr(executor, "task_group_id", None)
    watchers = getattr(module, "_RESULT_WATCHERS", None)
    if group is None or not isinstance(watchers, dict):
        return 0
    watcher = watchers.get(group)
    if watcher is None:
        return 0
    n_open = len(watcher.get_open_futures())
    watcher.shutdown(wait=False, cancel_futures=True)
    return n_open


class EngineExecutor(cf.Executor):
    """Run tasks through a Globus Compute endpoint engine in this process.

    Tasks are serialized with ``globus_compute_sdk.serialize.ComputeSerializer`` and
    packed as Compute ``Task`` messages exactly as an endpoint receives them, so this
    is the endpoint's real execution path without the web service.

    Parameters
    ----------
    engine : object or None
        A started-or-not ``globus_compute_endpoint.engines`` engine. ``None`` builds a
        ``ProcessPoolEngine`` with ``max_workers`` workers.
    max_workers : int
        Workers of the default engine.
    run_dir : str or None
        Engine run directory; a temporary one by default.
    """

    def __init__(
        self, engine: Any = None, *, max_workers: int = 2, run_dir: str | None = None
    ) -> None:
        serialize = require("globus_compute_sdk.serialize", extra="compute",
                            purpose="The endpoint engine executor")
        engines = require("globus_compute_endpoint.engines", extra="compute",
                          purpose="The endpoint engine executor")
        self._serializer = serialize.ComputeSerializer()
        self._engine = engine or engines.ProcessPoolEngine(max_workers=max_workers)
        self._engine.start(
            endpoint_id=uuid.uuid4(), run_dir=run_dir or tempfile.mkdtemp(prefix="stembench-gc-")
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        """Serialize ``fn(*args, **kwargs)`` as a Compute task and hand it to the engine."""
        from globus_compute_common import messagepack
        from globus_compute_common.messagepack.message_types import Task
        from globus_compute_endpoint.engines.base import GCFuture

        ser = self._serializer
        buffer = ser.pack_buffers([ser.serialize(fn), ser.serialize(args), ser.serialize(kwargs)])
        if len(buffer) > TASK_LIMIT_BYTES:
            raise TaskTooLargeError(
                f"task of {len(buffer)} bytes exceeds Globus Compute's {TASK_LIMIT_BYTES}-byte "
                "limit: send dataset references and image ids, not pixels"
            )
        task_id = uuid.uuid4()
        inner = GCFuture(gc_task_id=task_id)
        outer: cf.Future[Any] = cf.Future()
        outer.task_id = str(task_id)  # type: ignore[attr-defined]

        def unpack(done: cf.Future[Any]) -> None:
            try:
                result: Any = messagepack.unpack(done.result())
                if result.is_error:
                    outer.set_exception(RemoteTaskError(remote_error_line(str(result.data))))
                else:
                    outer.set_result(ser.deserialize(result.data))
            except Exception as exc:  # any failure becomes the future's exception
                outer.set_exception(exc)

        inner.add_done_callback(unpack)
        task = messagepack.pack(Task(task_id=task_id, task_buffer=buffer))
        self._engine.submit(inner, task, resource_specification={})
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the engine (running tasks finish when ``wait`` is true)."""
        self._engine.shutdown(block=wait)
