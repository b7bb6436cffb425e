"""Evaluate a model over a dataset on one or more executors, shard by shard.

Shards carry a dataset reference and image ids, never pixels. Each finished shard is
appended to the results file at once, so an interrupted run (Ctrl-C, a crash, a lost
worker) resumes without redoing finished shards. Failed shards are retried with
exponential backoff, on the next executor in turn; shards that keep failing are
reported, never silently dropped.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from stembench._version import __version__
from stembench.client.lifeline import stop_executor
from stembench.client.results_file import ResultsFile
from stembench.client.results_lock import ResultsLock
from stembench.endpoints.models.deadline import DEFAULT_IMAGE_TIMEOUT_S
from stembench.endpoints.requests import (
    RESULT_LIMIT_BYTES,
    DatasetRef,
    ModelSpec,
    ScoringOptions,
    ShardRequest,
)
from stembench.endpoints.shard import describe_dataset, describe_identity, evaluate_shard
from stembench.errors import InputError, StembenchError

__all__ = ["DEFAULT_TASK_DEADLINE_S", "Evaluation", "RetryPolicy", "Target", "evaluate",
           "plan_shards"]

ShardFunction = Callable[[dict[str, Any]], dict[str, Any]]

#: Expected JSON bytes per image in a result (scores + ~1000 coordinates).
BYTES_PER_IMAGE = 40_000

#: Seconds a task may take from submission to result before it counts as failed.
DEFAULT_TASK_DEADLINE_S = 3600.0


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
    """

    name: str
    executor: cf.Executor
    factory: Callable[[], cf.Executor] | None = None
    max_in_flight: int = 4


@dataclass
class Evaluation:
    """What an evaluation did; scores themselves are in the results file."""

    model: str
    results_path: Path
    n_shards: int
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


def plan_shards(
    image_ids: Sequence[str], *, shard_size: int | None = None, n_workers: int = 1,
    result_limit_bytes: int = RESULT_LIMIT_BYTES,
) -> list[tuple[str, ...]]:
    """Split image ids into shards sized to the result limit and the workers.

    The default size keeps a shard's result well under the result limit
    (``BYTES_PER_IMAGE`` per image) and gives each worker several shards, so progress
    is visible and a lost shard costs little; it never exceeds 64 images.
    """
    ids = list(image_ids)
    if not ids:
        return []
    if shard_size is None:
        by_payload = max(1, result_limit_bytes // (2 * BYTES_PER_IMAGE))
        by_balance = max(1, math.ceil(len(ids) / (4 * max(1, n_workers))))
        shard_size = min(64, by_payload, by_balance)
    if shard_size < 1:
        raise InputError(f"shard size must be >= 1, got {shard_size}")
    return [tuple(ids[i : i + shard_size]) for i in range(0, len(ids), shard_size)]


def _answer(target: Target, future: cf.Future[Any], what: str, deadline_s: float | None) -> Any:
    try:
        return future.result(timeout=deadline_s)
    except cf.TimeoutError as exc:
        future.cancel()
        raise StembenchError(f"{target.name}: no answer to {what} within {deadline_s:g} s "
                             "(task deadline); is the endpoint running and are its workers "
                             "able to start?") from exc


def _list_images(target: Target, dataset: DatasetRef,
                 deadline_s: float | None = DEFAULT_TASK_DEADLINE_S) -> list[str]:
    future = target.executor.submit(describe_dataset, asdict(dataset), __version__)
    listing = _answer(target, future, "the dataset listing", deadline_s)
    return [row["image_id"] for row in listing["images"]]


def _shard_identity(target: Target, dataset: DatasetRef, spec: ModelSpec,
                    deadline_s: float | None = DEFAULT_TASK_DEADLINE_S) -> dict[str, Any]:
    future = target.executor.submit(describe_identity, asdict(dataset), asdict(spec),
                                    __version__)
    return dict(_answer(target, future, "the results' identity", deadline_s))


class _Scheduler:
    """Submits shards to targets, retries failures, and records finished shards."""

    def __init__(self, targets: list[Target], results: ResultsFile, retry: RetryPolicy,
                 evaluation: Evaluation, bar: Any, task: ShardFunction,
                 deadline_s: float | None = None) -> None:
        self.targets, self.results, self.retry, self.task = targets, results, retry, task
        self.evaluation, self.bar, self.deadline_s = evaluation, bar, deadline_s
        self.pending: list[tuple[float, int, ShardRequest]] = []  # (not before, attempt, req)
        self.running: dict[cf.Future[Any], tuple[int, int, ShardRequest]] = {}
        self.started: dict[cf.Future[Any], float] = {}
        self.turn = 0
        self.dead: set[int] = set()

    def _load(self, index: int) -> int:
        return sum(1 for t, _, _ in self.running.values() if t == index)

    def _submit_ready(self) -> None:
        now = time.monotonic()
        for item in sorted(self.pending, key=lambda p: p[0]):
            if item[0] > now:
                continue
            alive = [i for i in range(len(self.targets)) if i not in self.dead]
            if not alive:
                self._fail(self.retry.max_attempts, item[2], "every executor is broken")
                self.pending.remove(item)
                continue
            free = [i for i in alive if self._load(i) < self.targets[i].max_in_flight]
            if not free:
                return
            index = free[(self.turn + item[1] - 1) % len(free)]
            self.turn += 1
            try:
                future = self.targets[index].executor.submit(self.task, item[2].to_dict())
            except cf.BrokenExecutor:
                self._rebuild(index)
                continue
            self.pending.remove(item)
            self.running[future] = (index, item[1], item[2])
            self.started[future] = time.monotonic()

    def _rebuild(self, index: int) -> None:
        """Replace a broken executor, or retire it when it is not ours to rebuild."""
        target = self.targets[index]
        if target.factory is None:
            self.dead.add(index)
            return
        target.executor.shutdown(wait=False, cancel_futures=True)
        target.executor = target.factory()

    def _fail(self, attempt: int, request: ShardRequest, reason: str) -> None:
        if attempt < self.retry.max_attempts:
            not_before = time.monotonic() + self.retry.delay(attempt + 1)
            self.pending.append((not_before, attempt + 1, request))
        else:
            self.evaluation.failed_shards[request.shard_id] = reason
            self.bar.update(len(request.image_ids))

    def _expire(self) -> None:
        """Fail (and so retry) every task running past the deadline."""
        if self.deadline_s is None:
            return
        now = time.monotonic()
        for future in [f for f in self.running if now - self.started[f] > self.deadline_s]:
            index, attempt, request = self.running.pop(future)
            self.started.pop(future, None)
            future.cancel()
            self._fail(attempt, request, f"{self.targets[index].name}: no result within "
                                         f"{self.deadline_s:g} s (task deadline)")

    def _collect(self, future: cf.Future[Any]) -> None:
        index, attempt, request = self.running.pop(future)
        self.started.pop(future, None)
        try:
            result = future.result()
        except cf.BrokenExecutor as exc:
            self._rebuild_once(index)
            self._fail(attempt, request, f"{self.targets[index].name}: worker lost ({exc})")
            return
        except (Exception, SystemExit) as exc:  # a task that raised remotely or locally
            self._fail(attempt, request, f"{self.targets[index].name}: {type(exc).__name__}: "
                                         f"{exc}")
            return
        if not result.get("ok"):
            self.evaluation.failed_shards[request.shard_id] = str(result.get("error"))
            self.bar.update(len(request.image_ids))
            return
        self.results.append(result)
        self.evaluation.n_finished += 1
        self.bar.update(len(request.image_ids))

    def _rebuild_once(self, index: int) -> None:
        stale = [f for f, (t, _, _) in self.running.items() if t == index]
        self._rebuild(index)
        for future in stale:  # their pool is gone: requeue them without counting an attempt
            _, attempt, request = self.running.pop(future)
            self.started.pop(future, None)
            self.pending.append((time.monotonic(), attempt, request))

    def run(self, requests: list[ShardRequest]) -> None:
        self.pending = [(0.0, 1, r) for r in requests]
        while self.pending or self.running:
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

    def cancel(self) -> None:
        for future in self.running:
            future.cancel()


def _identify(identify: Callable[..., dict[str, Any]] | None, target: Target,
              dataset: DatasetRef, spec: ModelSpec,
              deadline_s: float | None) -> dict[str, Any] | None:
    if identify is None:
        return None
    if identify is _shard_identity:
        return _shard_identity(target, dataset, spec, deadline_s)
    return identify(target, dataset, spec)


def evaluate(
    model: str,
    *,
    results_path: str | Path,
    dataset: DatasetRef | None = None,
    targets: Sequence[Target] | None = None,
    image_ids: Sequence[str] | None = None,
    model_options: dict[str, Any] | None = None,
    scoring: ScoringOptions | None = None,
    shard_size: int | None = None,
    retry: RetryPolicy | None = None,
    progress: bool = True,
    shard_function: ShardFunction = evaluate_shard,
    identify: Callable[[Target, DatasetRef, ModelSpec], dict[str, Any]] | None = _shard_identity,
    task_deadline_s: float | None = DEFAULT_TASK_DEADLINE_S,
    image_timeout_s: float | None = DEFAULT_IMAGE_TIMEOUT_S,
) -> Evaluation:
    """Evaluate ``model`` on a dataset, writing each finished shard to ``results_path``.

    Parameters
    ----------
    model : str
        Model spec resolved on the endpoint (registry name, file, ``module:function``).
    results_path : path-like
        JSON-lines results file (``.jsonl``); shards already in it are skipped (resume).
        The run holds an exclusive lock on it: a second run on the same file stops at once.
    dataset : DatasetRef, optional
        The dataset as the endpoints see it; default: the standard benchmark in their cache.
    targets : sequence of Target, optional
        Executors to fan out to; default: a local process pool with 2 workers.
    image_ids : sequence of str, optional
        Images to evaluate; default: all images of the dataset (listed on the first target).
    model_options, scoring, shard_size, retry, progress
        Model constructor options, scoring options, images per shard (default from the
        result size limit), retry policy, and whether to show a progress bar.
    shard_function : callable
        The function each shard runs (default :func:`~stembench.endpoints.shard.evaluate_shard`);
        a wrapper must be importable on the endpoint and keep its JSON contract.
    identify : callable or None
        Asks the first target what the results will belong to (dataset content hash,
        scorer version, model identity: :func:`stembench.identity.shard_identity`); it is
        part of every shard id, so a resumed run redoes shards of another dataset, scorer
        or model, and the endpoint refuses a shard planned for another identity. ``None``
        skips it (a shard function that is not a registered model).
    task_deadline_s : float or None
        Seconds from submitting a task to its result; a shard past it counts as failed
        (retried, then reported) and a listing or identity call past it stops the run with
        an error. ``None``: wait without limit.
    image_timeout_s : float or None
        Seconds the model may take on one image before that image is failed (``None``:
        no deadline).

    Returns
    -------
    Evaluation
        Counts of finished, skipped and failed shards; ``interrupted`` after Ctrl-C; the
        planned ``shard_ids`` and the ``identity`` (select the current results with them).
    """
    from stembench.client.executors import local_executor

    dataset = dataset or DatasetRef()
    owned = targets is None
    target_list = list(targets) if targets is not None else [
        Target("local", local_executor(2), factory=lambda: local_executor(2), max_in_flight=4)
    ]
    if not target_list:
        raise InputError("evaluate: at least one target executor is needed")
    results = ResultsFile(results_path)
    lock = ResultsLock(results.path)
    try:
        if task_deadline_s is not None and task_deadline_s <= 0:
            raise InputError(f"task deadline must be > 0 seconds, got {task_deadline_s}")
        ids = list(image_ids) if image_ids is not None else _list_images(
            target_list[0], dataset, task_deadline_s)
        shards = plan_shards(ids, shard_size=shard_size, n_workers=sum(
            t.max_in_flight for t in target_list))
        spec = ModelSpec(model, dict(model_options or {}))
        identity = _identify(identify, target_list[0], dataset, spec, task_deadline_s)
        requests = [ShardRequest(dataset=dataset, model=spec, image_ids=s,
                                 scoring=scoring or ScoringOptions(), identity=identity or {},
                                 image_timeout_s=image_timeout_s) for s in shards]
        if identity is not None and (stale := results.stale_shards(identity)):
            warnings.warn(f"{results.path}: {stale} shard(s) of {model!r} came from another "
                          f"dataset, scorer, model version or weights; they are ignored and "
                          f"the current ones evaluated", stacklevel=2)
        done = results.finished_shard_ids(identity)
        todo = [r for r in requests if r.shard_id not in done]
        evaluation = Evaluation(model=model, results_path=results.path, n_shards=len(requests),
                                n_skipped=len(requests) - len(todo),
                                shard_ids=tuple(r.shard_id for r in requests), identity=identity)
        skipped_images = sum(len(r.image_ids) for r in requests if r.shard_id in done)
        with tqdm(total=len(ids), initial=skipped_images, unit="img", desc=model,
                  disable=not progress) as bar:
            scheduler = _Scheduler(target_list, results, retry or RetryPolicy(), evaluation, bar,
                                   shard_function, task_deadline_s)
            try:
                scheduler.run(todo)
            except KeyboardInterrupt:
                scheduler.cancel()
                evaluation.interrupted = True
        return evaluation
    finally:
        lock.release()
        if owned:
            for target in target_list:
                stop_executor(target.executor)
