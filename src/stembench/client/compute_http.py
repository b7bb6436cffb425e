"""A Globus Compute executor that submits and polls over HTTPS only.

``globus_compute_sdk.Executor`` receives results over AMQP, whose ports HPC login
nodes often block. :class:`PollingComputeExecutor` uses only the web service through
``globus_compute_sdk.Client``: functions are registered once (``POST /v3/functions``),
tasks are sent in batches (``POST /v3/endpoints/{endpoint}/submit``) and their status
is polled (``POST /v2/batch_status``) by a background thread.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stembench._optional import require
from stembench.client.executors import (
    TASK_LIMIT_BYTES,
    RemoteTaskError,
    TaskTooLargeError,
    remote_error_line,
)
from stembench.endpoints.remote import DATA_STRATEGY
from stembench.errors import InputError

__all__ = ["MAX_POLL_INTERVAL_S", "PollingComputeExecutor", "next_poll_interval",
           "polling_executor", "settle_future"]

#: Longest wait between two polls after repeated rate limiting (seconds).
MAX_POLL_INTERVAL_S = 60.0


def next_poll_interval(current_s: float, *, base_s: float, rate_limited: bool) -> float:
    """Seconds to wait before the next poll.

    A rate-limited poll doubles the wait (capped at :data:`MAX_POLL_INTERVAL_S`); any
    other poll returns to ``base_s``.

    Parameters
    ----------
    current_s : float
        The wait before the poll just made, seconds.
    base_s : float
        The normal wait between polls, seconds.
    rate_limited : bool
        Whether that poll was refused for its rate (HTTP 429).
    """
    if rate_limited:
        return min(MAX_POLL_INTERVAL_S, max(current_s, base_s) * 2)
    return base_s


@dataclass
class _Queued:
    """A task accepted by ``submit`` and not yet sent to the web service."""

    future: cf.Future[Any]
    function_id: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def _is_rate_limited(exc: BaseException) -> bool:
    return getattr(exc, "http_status", None) == 429


def settle_future(future: cf.Future[Any], *, result: Any = None,
            exc: BaseException | None = None) -> None:
    """Complete ``future`` unless it is complete already (a shutdown or stop came first).

    Parameters
    ----------
    future : concurrent.futures.Future
        The future to complete.
    result : Any, optional
        Its result, when ``exc`` is ``None``; default ``None``.
    exc : BaseException, optional
        Its exception; default none (complete with ``result``).
    """
    try:
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)
    except cf.InvalidStateError:
        pass


class PollingComputeExecutor(cf.Executor):
    """Run tasks on a Globus Compute endpoint, submitting and polling over HTTPS.

    Parameters
    ----------
    endpoint_id : str
        UUID of a Globus Compute endpoint that has stembench installed.
    client : globus_compute_sdk.Client or None
        The web-service client; ``None`` builds ``globus_compute_sdk.Client()`` (the
        user's Globus login).
    poll_interval_s : float
        Seconds between two status polls (doubled after each rate-limited request,
        up to :data:`MAX_POLL_INTERVAL_S`).
    batch_size : int
        Most tasks sent in one submission request; grouping keeps the client under
        the service's 20 requests per 10 seconds.
    max_payload_bytes : int
        Largest serialized task (arguments) accepted; Globus Compute rejects tasks
        over 10 MB.
    user_endpoint_config : dict or None
        Per-task options the endpoint's user template accepts (e.g. account, walltime).
    result_serializers : tuple of str
        Strategies the endpoint serializes results with (default: JSON only, never a
        pickle; an empty tuple leaves the endpoint's default, which pickles).

    Notes
    -----
    A future's ``task_id`` is ``None`` until its batch is sent, then the Compute task
    id. Only the background thread talks to the service after registration.
    """

    def __init__(
        self,
        endpoint_id: str,
        *,
        client: Any = None,
        poll_interval_s: float = 2.0,
        batch_size: int = 32,
        max_payload_bytes: int = TASK_LIMIT_BYTES,
        user_endpoint_config: dict[str, Any] | None = None,
        result_serializers: tuple[str, ...] = (DATA_STRATEGY,),
    ) -> None:
        if poll_interval_s <= 0 or batch_size < 1 or max_payload_bytes < 1:
            raise InputError(
                f"PollingComputeExecutor: poll_interval_s > 0, batch_size >= 1 and "
                f"max_payload_bytes >= 1 expected, got {poll_interval_s}, {batch_size}, "
                f"{max_payload_bytes}"
            )
        if client is None:
            sdk = require("globus_compute_sdk", extra="compute", purpose="Remote evaluation")
            client = sdk.Client()
        self.endpoint_id = str(endpoint_id)
        self.client = client
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size
        self.max_payload_bytes = max_payload_bytes
        self.user_endpoint_config = dict(user_endpoint_config) if user_endpoint_config else None
        self.result_serializers = tuple(result_serializers)
        self._function_ids: dict[Callable[..., Any], str] = {}
        self._queued: list[_Queued] = []
        self._running: dict[str, cf.Future[Any]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._interval_s = poll_interval_s
        self._thread = threading.Thread(target=self._loop, name="stembench-compute-poller",
                                        daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        """Queue ``fn(*args, **kwargs)`` for the endpoint; registers ``fn`` on first use.

        Raises
        ------
        TaskTooLargeError
            The serialized arguments exceed ``max_payload_bytes`` (nothing is sent).
        RuntimeError
            The executor was shut down.
        """
        self._check_open()
        self._check_size(getattr(fn, "__name__", str(fn)), args, kwargs)
        return self._queue(self._register(fn), args, kwargs)

    def submit_to_registered_function(self, function_id: str, args: tuple[Any, ...] | None = None,
                                      kwargs: dict[str, Any] | None = None) -> cf.Future[Any]:
        """Queue a task of the already registered function ``function_id``.

        Same signature as ``globus_compute_sdk.Executor.submit_to_registered_function``.

        Parameters
        ----------
        function_id : str
            The registered function's UUID.
        args : tuple, optional
            Positional arguments of the task; default none.
        kwargs : dict, optional
            Keyword arguments of the task; default none.
        """
        self._check_open()
        args, kwargs = tuple(args or ()), dict(kwargs or {})
        self._check_size(f"function {function_id}", args, kwargs)
        return self._queue(str(function_id), args, kwargs)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("cannot submit to a PollingComputeExecutor after shutdown")

    def _check_size(self, what: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        size = self._payload_bytes(args, kwargs)
        if size > self.max_payload_bytes:
            raise TaskTooLargeError(
                f"task for {what} on endpoint {self.endpoint_id} is {size} bytes serialized, "
                f"over the {self.max_payload_bytes}-byte limit: send dataset references and "
                "image ids, not pixels"
            )

    def _queue(self, function_id: str, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        future.task_id = None  # type: ignore[attr-defined]
        with self._lock:
            self._queued.append(_Queued(future, function_id, args, dict(kwargs)))
        self._wake.set()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; the poller ends once no task is left.

        With ``cancel_futures`` queued tasks are cancelled and tasks already sent are
        abandoned (their futures raise ``CancelledError``). With ``wait`` this blocks
        until the poller has ended.
        """
        with self._lock:
            self._closed = True
            if cancel_futures:
                abandoned = [q.future for q in self._queued] + list(self._running.values())
                self._queued.clear()
                self._running.clear()
                for future in abandoned:
                    if not future.cancel():  # already marked running
                        settle_future(future, exc=cf.CancelledError("executor shut down"))
        self._wake.set()
        if wait:
            self._thread.join()

    def _payload_bytes(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
        """Size of the task payload exactly as ``Batch.add`` builds it."""
        serde = self.client.fx_serializer
        payload = serde.pack_buffers([serde.serialize(args), serde.serialize(kwargs)])
        return len(payload)

    def _register(self, fn: Callable[..., Any]) -> str:
        with self._lock:
            known = self._function_ids.get(fn)
        if known is not None:
            return known
        function_id = str(self.client.register_function(fn))
        with self._lock:
            return self._function_ids.setdefault(fn, function_id)

    def _loop(self) -> None:
        while True:
            with self._lock:
                idle = not self._queued and not self._running
                if idle and self._closed:
                    return
            rate_limited = self._send_queued()
            if not rate_limited and self._running:
                rate_limited = self._poll()
            self._interval_s = next_poll_interval(self._interval_s, base_s=self.poll_interval_s,
                                                  rate_limited=rate_limited)
            with self._lock:
                busy = bool(self._running or self._queued)
            self._wake.wait(self._interval_s if busy else None)
            self._wake.clear()

    def _send_queued(self) -> bool:
        """Send queued tasks in batches; True when the service rate-limited us."""
        while True:
            with self._lock:
                self._queued = [q for q in self._queued
                                if q.future.running() or q.future.set_running_or_notify_cancel()]
                group = self._queued[: self.batch_size]
            if not group:
                return False
            # results as JSON (the endpoint tries these strategies in turn,
            # globus_compute_endpoint/engines/helper.py:117); without them it pickles
            batch = self.client.create_batch(user_endpoint_config=self.user_endpoint_config,
                                             result_serializers=list(self.result_serializers))
            for item in group:
                batch.add(item.function_id, item.args, item.kwargs)
            try:
                response = self.client.batch_run(self.endpoint_id, batch)
            except Exception as exc:
                if _is_rate_limited(exc):
                    return True
                with self._lock:
                    self._queued = [q for q in self._queued if q not in group]
                for item in group:
                    settle_future(item.future, exc=exc)
                continue
            self._record_sent(group, response)

    def _record_sent(self, group: list[_Queued], response: dict[str, Any]) -> None:
        task_ids = {str(fid): list(ids) for fid, ids in response["tasks"].items()}
        with self._lock:
            self._queued = [q for q in self._queued if q not in group]
            for item in group:
                task_id = str(task_ids[item.function_id].pop(0))
                item.future.task_id = task_id  # type: ignore[attr-defined]
                if not item.future.done():  # not abandoned by shutdown meanwhile
                    self._running[task_id] = item.future

    def _poll(self) -> bool:
        """Poll the running tasks once; True when the service rate-limited us."""
        with self._lock:
            task_ids = list(self._running)
        try:
            statuses = self.client.get_batch_result(task_ids)
        except Exception as exc:
            if _is_rate_limited(exc):
                return True
            for task_id in task_ids:  # e.g. an expired login: fail them rather than hang
                self._finish(task_id, exc=exc)
            return False
        for task_id in task_ids:
            status = statuses.get(task_id)
            if status is None:  # the SDK leaves out tasks whose status it could not unpack
                try:
                    status = self.client.get_task(task_id)
                except Exception as exc:
                    if _is_rate_limited(exc):
                        return True
                    self._finish(task_id, exc=self._remote_error(task_id, exc))
                    continue
            if status.get("pending", True):
                continue
            if "result" in status:
                self._finish(task_id, result=status["result"])
            else:
                reason = status.get("reason", "no result returned")
                self._finish(task_id, exc=RemoteTaskError(
                    f"task {task_id} on endpoint {self.endpoint_id} ended with status "
                    f"{status.get('status')!r}: {reason}"))
        return False

    def _remote_error(self, task_id: str, exc: BaseException) -> BaseException:
        remote = getattr(exc, "remote_data", None)
        if remote is None:
            return exc
        return RemoteTaskError(f"task {task_id} failed on endpoint {self.endpoint_id}: "
                               f"{remote_error_line(str(remote))}")

    def _finish(self, task_id: str, *, result: Any = None,
                exc: BaseException | None = None) -> None:
        with self._lock:
            future = self._running.pop(task_id, None)
        if future is not None:
            settle_future(future, result=result, exc=exc)


def polling_executor(endpoint_id: str, **options: Any) -> PollingComputeExecutor:
    """A :class:`PollingComputeExecutor` for ``endpoint_id`` (options as its constructor)."""
    return PollingComputeExecutor(endpoint_id, **options)
