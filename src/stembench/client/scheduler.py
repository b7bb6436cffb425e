"""The shard scheduler: targets, retries and deadlines, for one or several evaluations.

:class:`ShardScheduler` keeps every target's pool filled up to its ``max_in_flight``,
retries failed shards with exponential backoff on the next target in turn, fails tasks
past the task deadline, rebuilds a broken local pool, and hands each finished shard to
the :class:`ShardSink` of its evaluation (results file, counts, progress bar).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import math
import os
import signal
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from stembench.client.executors import remote_error_line
from stembench.client.lifeline import give_up
from stembench.client.partial_shards import FinishedImages
from stembench.client.results_file import ResultsFile
from stembench.endpoints.progress import overdue_calls, record_kill
from stembench.endpoints.requests import FEATURES, ShardRequest
from stembench.errors import InputError
from stembench.schemas import check_message

__all__ = ["Evaluation", "RetryPolicy", "ShardScheduler", "ShardSink", "Target",
           "describe_error"]

ShardFunction = Callable[[dict[str, Any]], dict[str, Any]]


def _wall_clock() -> float:
    """This machine's wall clock, the one a request's ``not_after_unix`` is on."""
    return time.time()


def describe_error(exc: BaseException) -> str:
    """One line for a failed task.

    A web service's refusal reads ``HTTP <status>: <message>``: ``globus_sdk.GlobusAPIError``
    carries ``http_status`` and ``message`` (globus_sdk/exc/api.py); its ``str`` is a tuple
    of the whole request. A task that failed on a Globus Compute endpoint reads as the last
    line of its remote traceback (the exception raised there): the SDK's
    ``TaskExecutionFailed`` keeps that traceback in ``remote_data`` and its ``str`` is the
    whole traceback (globus_compute_sdk/errors/error_types.py); the whole of it goes to the
    debug log.
    """
    status = getattr(exc, "http_status", None)
    if isinstance(status, int):
        return f"{type(exc).__name__}: HTTP {status}: {getattr(exc, 'message', '') or exc}"
    remote = getattr(exc, "remote_data", None)
    if isinstance(remote, str):
        return f"{type(exc).__name__}: {remote_error_line(remote)}"
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently failed shards are retried (delays in seconds)."""

    max_attempts: int = 3
    backoff_s: float = 1.0
    backoff_factor: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.backoff_s < 0 or self.backoff_factor < 1:
            raise InputError(f"retry policy: invalid values {self}")

    def delay(self, attempt: int) -> float:
        """Delay before attempt number ``attempt`` (2 = first retry)."""
        return self.backoff_s * self.backoff_factor ** max(0, attempt - 2)


@dataclass
class Target:
    """An executor shards go to, with what rebuilds it if its pool breaks.

    Attributes
    ----------
    name : str
        Shown in progress and errors (e.g. ``"local"`` or an endpoint id).
    executor : concurrent.futures.Executor
        Where shards run.
    factory : callable or None
        Builds a fresh executor after a broken pool (``None``: user-owned, not rebuilt).
    max_in_flight : int
        Shards submitted to this target at once.
    gone : callable or None
        Says (one line) why the target can finish nothing more, e.g. its endpoint went
        offline (:meth:`stembench.client.endpoint_watch.EndpointWatch.gone`), else ``None``;
        asked at every turn of the scheduler, so it must answer at once.
    features : frozenset of str or None
        The request fields the target's stembench understands
        (:data:`~stembench.endpoints.requests.FEATURES`); default: this stembench's own (a
        local pool runs this code). ``None``: not known yet (a remote endpoint); the first
        dataset listing it answers says (:func:`~stembench.client.target_calls.list_images`),
        and until then no such field is sent to it.
    """

    name: str
    executor: cf.Executor
    factory: Callable[[], cf.Executor] | None = None
    max_in_flight: int = 4
    gone: Callable[[], str | None] | None = None
    features: frozenset[str] | None = frozenset(FEATURES)

    def lost(self) -> str | None:
        """What :attr:`gone` says (``None`` without it)."""
        return self.gone() if self.gone is not None else None


@dataclass
class Evaluation:
    """What an evaluation did; scores themselves are in the results file."""

    model: str
    results_path: Path
    n_shards: int
    n_images: int = 0
    n_skipped: int = 0
    n_finished: int = 0
    failed_shards: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    shard_ids: tuple[str, ...] = ()
    identity: dict[str, Any] | None = None

    @property
    def complete(self) -> bool:
        """True when every shard finished."""
        return not self.failed_shards and not self.interrupted and (
            self.n_finished + self.n_skipped == self.n_shards
        )


@dataclass(frozen=True)
class ShardSink:
    """Where the shards of one evaluation go: its results file, its counts, its progress bar."""

    results: ResultsFile
    evaluation: Evaluation
    bar: Any


class ShardScheduler:
    """Submits shards to targets, retries failures, and records finished shards.

    The shards of several evaluations (models) can run through one scheduler: each
    request comes with the :class:`ShardSink` its result goes to, and the targets stay
    busy from one model to the next instead of waiting for each model's last shard.
    ``lanes`` (model spec -> target index) keeps a model's shards, retries included, on one
    target while it is usable (so a framework is imported by one worker, not by all).
    """

    def __init__(self, targets: list[Target], retry: RetryPolicy, task: ShardFunction,
                 deadline_s: float | None = None, *,
                 lanes: Mapping[str, int] | None = None) -> None:
        self.targets, self.retry, self.task, self.deadline_s = targets, retry, task, deadline_s
        self.lanes = dict(lanes or {})
        self.sinks: dict[str, ShardSink] = {}  # shard id -> where its result goes
        self.pending: list[tuple[float, int, ShardRequest]] = []  # (not before, attempt, req)
        self.running: dict[cf.Future[Any], tuple[int, int, ShardRequest]] = {}
        self.started: dict[cf.Future[Any], float] = {}  # monotonic clock at submission
        self.not_after: dict[cf.Future[Any], float] = {}  # wall clock it is given up at
        self.kept = FinishedImages()  # images of stopped copies, not sent again
        self.unstoppable: set[int] = set()  # targets warned that given-up copies run on
        self.turn = 0
        self.dead: dict[int, str] = {}  # target index -> why it takes no more shards

    def _load(self, index: int) -> int:
        return sum(1 for t, _, _ in self.running.values() if t == index)

    def _submit_ready(self) -> None:
        now = time.monotonic()
        for item in sorted(self.pending, key=lambda p: p[0]):
            alive = [i for i in range(len(self.targets)) if i not in self.dead]
            if not alive:  # at once, without waiting for its retry's backoff
                self.pending.remove(item)
                self._fail(self.retry.max_attempts, item[2],
                           "; ".join(dict.fromkeys(self.dead.values())))
                continue
            if item[0] > now:
                continue
            lane = self.lanes.get(item[2].model.spec)
            eligible = [lane] if lane in alive else alive
            free = [i for i in eligible if self._load(i) < self.targets[i].max_in_flight]
            if not free:  # its lane is full: a later shard may go to another
                if all(self._load(i) >= self.targets[i].max_in_flight for i in alive):
                    return
                continue
            index = free[(self.turn + item[1] - 1) % len(free)]
            self.turn += 1
            wall, now = _wall_clock(), time.monotonic()  # one moment on both clocks
            try:
                future = self.targets[index].executor.submit(
                    self.task, self._sent(index, item[2], wall))
            except cf.BrokenExecutor:
                self._rebuild(index)
                continue
            except Exception as exc:  # refused at submission (e.g. a remote executor that
                # stopped after a failed batch and could not be rebuilt): retried with backoff
                self.pending.remove(item)
                self._fail(item[1], item[2], f"{self.targets[index].name}: submission failed: "
                                             f"{describe_error(exc)}")
                continue
            self.pending.remove(item)
            self.running[future] = (index, item[1], item[2])
            self.started[future] = now
            if self.deadline_s is not None:
                self.not_after[future] = wall + self.deadline_s

    def _sent(self, index: int, request: ShardRequest, wall: float) -> dict[str, Any]:
        """The request as sent at ``wall`` (this machine's wall clock) to target ``index``.

        Only the images not finished by an earlier stopped copy go (:attr:`kept`). With a
        deadline, it carries the time after which its result is no longer wanted
        (``not_after_unix``), so that a copy given up on stops where it runs
        (:mod:`stembench.endpoints.expiry`) instead of working for nobody; a target that
        does not say it understands the field gets none, and a warning, once.
        """
        request = self.kept.rest(request)
        if self.deadline_s is None:
            return request.to_dict()
        target = self.targets[index]
        if "not_after_unix" not in (target.features or ()):
            if index not in self.unstoppable:
                self.unstoppable.add(index)
                warnings.warn(
                    f"{target.name}: its stembench does not say it understands a shard's "
                    "'not_after_unix', so shards go there without it and a copy this client "
                    "gives up on keeps running there to its end, until stembench is upgraded "
                    "where the endpoint runs", stacklevel=2)
            return request.to_dict()
        return replace(request, not_after_unix=wall + self.deadline_s).to_dict()

    def _forget(self, future: cf.Future[Any]) -> float | None:
        """Stop timing ``future``; the wall-clock time it was given up at, if any."""
        self.started.pop(future, None)
        return self.not_after.pop(future, None)

    def _rebuild(self, index: int) -> None:
        """Replace a broken executor, or retire it when it is not ours to rebuild."""
        target = self.targets[index]
        if target.factory is None:
            self.dead[index] = f"{target.name}: its executor is broken"
            return
        target.executor.shutdown(wait=False, cancel_futures=True)
        target.executor = target.factory()

    def _fail(self, attempt: int, request: ShardRequest, reason: str) -> None:
        if attempt < self.retry.max_attempts:
            not_before = time.monotonic() + self.retry.delay(attempt + 1)
            self.pending.append((not_before, attempt + 1, request))
        else:
            sink = self.sinks[request.shard_id]
            sink.evaluation.failed_shards[request.shard_id] = reason
            sink.bar.update(len(request.image_ids))

    def _give_up_lost(self) -> None:
        """Stop using each target that says it is gone; its running shards fail at once.

        They are retried on another target if there is one, else they fail for good with
        the target's reason (:meth:`_submit_ready`), without waiting for a deadline.
        """
        for index, target in enumerate(self.targets):
            reason = None if index in self.dead else target.lost()
            if reason is None:
                continue
            self.dead[index] = reason
            for future in [f for f, (t, _, _) in self.running.items() if t == index]:
                _, attempt, request = self.running.pop(future)
                self._forget(future)
                give_up(future)
                self._fail(attempt, request, reason)

    def _expire(self) -> None:
        """Fail (and so retry) every task running past the deadline; it is no longer tracked.

        Past the deadline means either clock: the monotonic one counted from submission, or
        the wall clock past the ``not_after_unix`` the copy was sent with (the two part
        after a laptop's sleep or a clock step; the endpoint judges by the wall clock).

        A remote copy given up on cannot be cancelled: it stops itself where it runs once
        past the ``not_after_unix`` it was sent with (:meth:`_sent`), and whatever it
        returns then is never read, so it can neither fail the shard nor replace the result
        of a later copy.
        """
        if self.deadline_s is None:
            return
        now, wall = time.monotonic(), _wall_clock()
        for future in [f for f in self.running if now - self.started[f] > self.deadline_s
                       or wall > self.not_after.get(f, math.inf)]:
            index, attempt, request = self.running.pop(future)
            self._forget(future)
            give_up(future)  # never cancel a sent Globus Compute task: see give_up
            self._fail(attempt, request, f"{self.targets[index].name}: no result within "
                                         f"{self.deadline_s:g} s (task deadline)")

    def _collect(self, future: cf.Future[Any]) -> None:
        index, attempt, request = self.running.pop(future)
        not_after = self._forget(future)
        try:
            result = future.result()
        except cf.BrokenExecutor as exc:
            self._rebuild_once(index)
            self._fail(attempt, request, f"{self.targets[index].name}: worker lost ({exc})")
            return
        except (Exception, SystemExit) as exc:  # a task that raised remotely or locally
            self._fail(attempt, request, f"{self.targets[index].name}: {describe_error(exc)}")
            return
        try:
            check_message("shard-result", result, what="shard result")
        except InputError as exc:
            self._fail(attempt, request, f"{self.targets[index].name}: {exc}")
            return
        if result.get("expired"):  # stopped by its endpoint before this client gave it up
            self.kept.keep(request, result)
            self._fail(attempt, request, self._expired_reason(index, result, not_after))
            return
        result = self.kept.merged(request, result)
        sink = self.sinks[request.shard_id]
        if not result.get("ok"):
            sink.evaluation.failed_shards[request.shard_id] = str(result.get("error"))
            sink.bar.update(len(request.image_ids))
            return
        try:
            sink.results.append(result)
        except (OSError, InputError) as exc:  # a full disk, a link planted during the run
            sink.evaluation.failed_shards[request.shard_id] = (
                f"results file {sink.results.path}: cannot append this shard's result: {exc}")
            sink.bar.update(len(request.image_ids))
            return
        sink.evaluation.n_finished += 1
        sink.bar.update(len(request.image_ids))

    def _expired_reason(self, index: int, result: dict[str, Any],
                        not_after: float | None) -> str:
        """Why a copy this client still waited for came back expired: the endpoint's clock
        ahead, unless this machine's wall clock is past the copy's time too (it jumped)."""
        name = self.targets[index].name
        if not_after is None or _wall_clock() <= not_after:
            return f"{name}: {result.get('error')}"
        return (f"{name}: no result before {not_after:.0f} (Unix time), which this machine's "
                "wall clock has passed too, sooner than its monotonic clock counts the task "
                "deadline (a sleep or a clock step): the copy stopped on its endpoint as asked")

    def _rebuild_once(self, index: int) -> None:
        stale = [f for f, (t, _, _) in self.running.items() if t == index]
        self._rebuild(index)
        for future in stale:  # their pool is gone: requeue them without counting an attempt
            _, attempt, request = self.running.pop(future)
            self._forget(future)
            self.pending.append((time.monotonic(), attempt, request))

    def run(self, work: Sequence[tuple[ShardRequest, ShardSink]]) -> None:
        """Run every request to a result or a reported failure, in the order given."""
        self.sinks = {request.shard_id: sink for request, sink in work}
        self.pending = [(0.0, 1, request) for request, _ in work]
        while self.pending or self.running:
            self._give_up_lost()
            self._submit_ready()
            if not self.running:
                time.sleep(min(0.2, self.retry.backoff_s))
                continue
            done, _ = cf.wait(list(self.running), timeout=0.5,
                              return_when=cf.FIRST_COMPLETED)
            for future in done:
                if future in self.running:  # a broken pool may have requeued it already
                    self._collect(future)
            self._expire()
            self._kill_overdue()

    def _kill_overdue(self) -> None:
        """Kill local workers whose model call ran past its image deadline and did not stop.

        The deadline inside the worker (``SIGALRM``) stops a model that cooperates; one that
        ignores it is killed from here (:mod:`stembench.endpoints.progress`). Its pool breaks
        and is rebuilt; the shard's next attempt keeps the images it finished.
        """
        for target in self.targets:
            folder = getattr(target.executor, "progress_dir", None)
            if folder is None:
                continue
            for pid, shard_id, image_ids in overdue_calls(folder):
                record_kill(folder, shard_id, pid, image_ids)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def cancel(self) -> None:
        """Give up on what is still running (after Ctrl-C): see :func:`give_up`."""
        for future in self.running:
            give_up(future)
