"""Evaluate models over a dataset on one or more executors, shard by shard.

Shards carry a dataset reference and image ids, never pixels. Each finished shard is
appended to the results file at once, so an interrupted run (Ctrl-C, a crash, a lost
worker) resumes without redoing finished shards. Failed shards are retried with
exponential backoff, on the next executor in turn; a shard that keeps failing is
reported, and its images are written to the results file as failed (scored as finding
nothing), so that every image of a run is in its report. Several models run through one scheduler
(:func:`evaluate_models`), so the workers go from one model's shards to the next without
waiting for the slowest shard of each.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from stembench.client.lifeline import stop_executor
from stembench.client.partial_shards import FinishedImages
from stembench.client.results_file import ResultsFile
from stembench.client.results_lock import ResultsLock
from stembench.client.scheduler import (
    Evaluation,
    RetryPolicy,
    ShardFunction,
    ShardScheduler,
    ShardSink,
    Target,
    describe_error,
)
from stembench.client.target_calls import (
    DEFAULT_TASK_DEADLINE_S,
    answer_within,
    list_images,
    results_identities,
    shard_identity,
)
from stembench.endpoints.models.deadline import DEFAULT_IMAGE_TIMEOUT_S
from stembench.endpoints.requests import (
    RESULT_LIMIT_BYTES,
    DatasetRef,
    ModelSpec,
    ScoringOptions,
    ShardRequest,
)
from stembench.endpoints.shard import (
    evaluate_shard,
    score_failed_shard,
)
from stembench.errors import InputError

__all__ = ["DEFAULT_TASK_DEADLINE_S", "Evaluation", "RetryPolicy", "Target", "evaluate",
           "evaluate_models", "list_images", "plan_shards"]

#: Expected JSON bytes per image in a result (scores + ~1000 coordinates).
BYTES_PER_IMAGE = 40_000

def plan_shards(
    image_ids: Sequence[str], *, shard_size: int | None = None, n_workers: int = 1,
    result_limit_bytes: int = RESULT_LIMIT_BYTES,
) -> list[tuple[str, ...]]:
    """Split image ids into shards sized to the result limit and the workers.

    The default size keeps a shard's result well under the result limit
    (``BYTES_PER_IMAGE`` per image) and gives each worker several shards, so progress
    is visible and a lost shard costs little; it never exceeds 64 images.

    Parameters
    ----------
    image_ids : sequence of str
        The images to evaluate.
    shard_size : int, optional
        Images per shard; default: sized as described above.
    n_workers : int, optional
        Tasks that run at once (all targets together); default 1.
    result_limit_bytes : int, optional
        Largest result a task may return, bytes; default :data:`RESULT_LIMIT_BYTES`.
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
    identify: Callable[[Target, DatasetRef, ModelSpec], dict[str, Any]] | None = shard_identity,
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
    return evaluate_models(
        {model: results_path}, dataset=dataset, targets=targets, image_ids=image_ids,
        model_options=model_options, scoring=scoring, shard_size=shard_size, retry=retry,
        progress=progress, shard_function=shard_function, identify=identify,
        task_deadline_s=task_deadline_s, image_timeout_s=image_timeout_s)[model]


def evaluate_models(
    results_paths: Mapping[str, str | Path],
    *,
    dataset: DatasetRef | None = None,
    targets: Sequence[Target] | None = None,
    image_ids: Sequence[str] | None = None,
    model_options: dict[str, Any] | None = None,
    scoring: ScoringOptions | None = None,
    shard_size: int | None = None,
    retry: RetryPolicy | None = None,
    progress: bool = True,
    shard_function: ShardFunction = evaluate_shard,
    identify: Callable[[Target, DatasetRef, ModelSpec], dict[str, Any]] | None = shard_identity,
    task_deadline_s: float | None = DEFAULT_TASK_DEADLINE_S,
    image_timeout_s: float | None = DEFAULT_IMAGE_TIMEOUT_S,
    lanes: Mapping[str, int] | None = None,
) -> dict[str, Evaluation]:
    """Evaluate several models through one scheduler; see :func:`evaluate` for the options.

    Parameters
    ----------
    results_paths : mapping of str to path-like
        Model spec -> its JSON-lines results file; the models are evaluated in this order,
        the next one's shards starting as soon as a worker is free, so no worker waits for
        the last shard of a model. ``model_options`` apply to every model.
    dataset, targets, image_ids, model_options, scoring, shard_size, retry, progress
        As in :func:`evaluate`.
    shard_function, identify, task_deadline_s, image_timeout_s
        As in :func:`evaluate`.
    lanes : mapping of str to int, optional
        Model spec -> index of the target its identity call and shards go to (while that
        target is usable); other models go to any target (identity: the first).

    Returns
    -------
    dict of str to Evaluation
        One per model, in the order given.
    """
    from stembench.client.executors import local_executor

    dataset = dataset or DatasetRef()
    owned = targets is None
    target_list = list(targets) if targets is not None else [
        Target("local", local_executor(2), factory=lambda: local_executor(2), max_in_flight=4)
    ]
    if not target_list:
        raise InputError("evaluate: at least one target executor is needed")
    locks: list[ResultsLock] = []
    bars: list[Any] = []
    try:
        if task_deadline_s is not None and task_deadline_s <= 0:
            raise InputError(f"task deadline must be > 0 seconds, got {task_deadline_s}")
        files: dict[str, ResultsFile] = {}
        for model, path in results_paths.items():  # a linked path: the file it points to
            locks.append(ResultsLock(path))
            files[model] = ResultsFile(locks[-1].path)
        ids = list(image_ids) if image_ids is not None else list_images(
            target_list[0], dataset, task_deadline_s, retry)
        shards = plan_shards(ids, shard_size=shard_size, n_workers=sum(
            t.max_in_flight for t in target_list))
        specs = {model: ModelSpec(model, dict(model_options or {})) for model in results_paths}
        if any(not 0 <= lane < len(target_list) for lane in (lanes or {}).values()):
            raise InputError(f"evaluate: lanes {dict(lanes or {})} name a target outside "
                             f"0-{len(target_list) - 1}")
        own = {model: target_list[(lanes or {}).get(model, 0)] for model in specs}
        identities = results_identities(identify, own, dataset, specs, task_deadline_s, retry)
        evaluations: dict[str, Evaluation] = {}
        work: list[tuple[ShardRequest, ShardSink]] = []
        for position, (model, results) in enumerate(files.items()):
            requests = [ShardRequest(dataset=dataset, model=specs[model], image_ids=shard,
                                     scoring=scoring or ScoringOptions(),
                                     identity=identities[model] or {},
                                     image_timeout_s=image_timeout_s) for shard in shards]
            sink, todo = _sink(model, results, requests, identities[model],
                               n_images=len(ids), progress=progress, position=position)
            bars.append(sink.bar)
            evaluations[model] = sink.evaluation
            work.extend((request, sink) for request in todo)
        scheduler = ShardScheduler(target_list, retry or RetryPolicy(), shard_function,
                                   task_deadline_s, lanes=lanes)
        try:
            scheduler.run(work)
            if shard_function is evaluate_shard:
                _record_failed_shards(target_list, work, task_deadline_s, scheduler.kept)
        except KeyboardInterrupt:
            scheduler.cancel()
            for evaluation in evaluations.values():
                evaluation.interrupted = not evaluation.complete
        return evaluations
    finally:
        for bar in bars:
            bar.close()
        for lock in locks:
            lock.release()
        if owned:
            for target in target_list:
                stop_executor(target.executor)


def _record_failed_shards(targets: Sequence[Target],
                          work: Sequence[tuple[ShardRequest, ShardSink]],
                          deadline_s: float | None, kept: FinishedImages) -> None:
    """Write each failed shard's images to its results file as failed (found nothing).

    The images are scored on the first target that is not gone (:attr:`Target.gone`)
    without the model (see :func:`~stembench.endpoints.shard.score_failed_shard`), all at
    once and within one task deadline in all (an endpoint that stopped answering costs one
    deadline, not one per shard); when even that fails, the shard's reason says so and its
    images stay without a result. When every target is gone nothing is sent: the images
    stay without a result (the run's exit status says to run it again). Images a stopped
    copy finished (``kept``) keep their scores; only the others are scored as failed.
    """
    failed = [(request, sink) for request, sink in work
              if request.shard_id in sink.evaluation.failed_shards]
    usable = [target for target in targets if target.lost() is None]
    if not failed or not usable:
        return
    target = usable[0]
    futures: list[cf.Future[Any] | BaseException] = []
    for request, sink in failed:
        reason = sink.evaluation.failed_shards[request.shard_id]
        rest = kept.rest(request).to_dict()
        try:
            futures.append(target.executor.submit(score_failed_shard, rest, reason))
        except cf.BrokenExecutor as exc:
            if target.factory is None:
                futures.append(exc)
                continue
            target.executor = target.factory()
            futures.append(target.executor.submit(score_failed_shard, rest, reason))
        except Exception as exc:  # refused (e.g. a remote endpoint refusing submissions)
            futures.append(exc)
    cf.wait([f for f in futures if isinstance(f, cf.Future)], timeout=deadline_s)
    for (request, sink), future in zip(failed, futures, strict=True):
        try:
            if isinstance(future, BaseException):
                raise future
            sink.results.append(kept.merged(request, answer_within(
                target, future, "the failed shard's scores", deadline_s, waited=True)))
        except (Exception, SystemExit) as exc:  # the shard stays failed, without images
            sink.evaluation.failed_shards[request.shard_id] += (
                f"; its images could not be recorded as failed either: "
                f"{describe_error(exc)}")


def _sink(model: str, results: ResultsFile, requests: list[ShardRequest],
          identity: dict[str, Any] | None, *, n_images: int, progress: bool,
          position: int) -> tuple[ShardSink, list[ShardRequest]]:
    """The sink of one model's shards and those of its shards not yet in its results."""
    if identity is not None and (stale := results.stale_shards(identity)):
        warnings.warn(f"{results.path}: {stale} shard(s) of {model!r} came from another "
                      f"dataset, scorer, model version or weights; they are ignored and "
                      f"the current ones evaluated", stacklevel=3)
    done = results.finished_shard_ids(identity)
    todo = [r for r in requests if r.shard_id not in done]
    evaluation = Evaluation(model=model, results_path=results.path, n_shards=len(requests),
                            n_images=n_images,
                            n_skipped=len(requests) - len(todo),
                            shard_ids=tuple(r.shard_id for r in requests), identity=identity)
    skipped_images = sum(len(r.image_ids) for r in requests if r.shard_id in done)
    bar = tqdm(total=n_images, initial=skipped_images, unit="img", desc=model,
               disable=not progress, position=position)
    return ShardSink(results, evaluation, bar), todo
