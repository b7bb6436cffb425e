"""One-off calls to a target, each with a deadline and retries: the dataset listing and the
results identity of each model (the shards themselves go through
:class:`~stembench.client.scheduler.ShardScheduler`).

A target that says it is gone (:attr:`~stembench.client.scheduler.Target.gone`, e.g. its
endpoint went offline) ends a wait at once with its reason; a refused or failed call is sent
again with the retry policy's backoff, then reported in one line.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from stembench._version import __version__
from stembench.client.lifeline import give_up
from stembench.client.scheduler import RetryPolicy, Target, describe_error
from stembench.endpoints.requests import DatasetRef, ModelSpec
from stembench.endpoints.shard import describe_dataset, describe_identity
from stembench.errors import StembenchError

__all__ = ["DEFAULT_TASK_DEADLINE_S", "GONE_CHECK_S", "answer_within", "ask", "list_images",
           "results_identities", "shard_identity"]

#: Seconds a task may take from submission to result before it counts as failed.
DEFAULT_TASK_DEADLINE_S = 3600.0

#: Seconds between two looks at :attr:`Target.gone` while waiting for one answer.
GONE_CHECK_S = 0.5


def answer_within(target: Target, future: cf.Future[Any], what: str, deadline_s: float | None, *,
            waited: bool = False) -> Any:
    """The future's result within ``deadline_s`` (at once when the deadline was ``waited``).

    A target that says it is gone (:attr:`Target.gone`, asked every
    :data:`GONE_CHECK_S`) ends the wait at once with its reason.

    Parameters
    ----------
    target : Target
        Where the future's task was sent.
    future : concurrent.futures.Future
        The task's future; given up on (never cancelled when remote) past the deadline.
    what : str
        What the task answers, for the message (e.g. ``"the dataset listing"``).
    deadline_s : float or None
        Seconds to wait; ``None``: no deadline.
    waited : bool, optional
        The deadline has passed already (the caller waited): take the result only if ready.
    """
    now = time.monotonic()
    end = now if waited else None if deadline_s is None else now + deadline_s
    while True:
        left = None if end is None else max(0.0, end - time.monotonic())
        step = left
        if target.gone is not None:
            step = GONE_CHECK_S if left is None else min(GONE_CHECK_S, left)
        try:
            return future.result(timeout=step)
        except cf.TimeoutError as exc:
            reason = target.lost()
            if reason is None and (end is None or time.monotonic() < end):
                continue
            give_up(future)
            raise StembenchError(reason or (
                f"{target.name}: no answer to {what} within {deadline_s:g} s (task deadline); "
                "is the endpoint running and are its workers able to start?")) from exc


def ask(target: Target, what: str, deadline_s: float | None, retry: RetryPolicy,
         fn: Callable[..., Any], *args: Any, sent: cf.Future[Any] | None = None) -> Any:
    """The answer of ``fn(*args)`` on ``target`` (``sent``: its first attempt, already sent).

    A refused submission or a failed task (a remote executor's 4xx, a lost worker) is sent
    again with the retry policy's backoff, then reported in one line; no answer within the
    deadline stops at once (:func:`answer_within`).

    Parameters
    ----------
    target : Target
        Where it runs.
    what : str
        What it answers, for messages.
    deadline_s : float or None
        Seconds to wait for each attempt.
    retry : RetryPolicy
        Attempts and backoff.
    fn : callable
        The task.
    *args
        Its arguments.
    sent : concurrent.futures.Future, optional
        The first attempt's future when it was sent already.
    """
    for attempt in range(1, retry.max_attempts + 1):
        try:
            future = sent if attempt == 1 and sent is not None else target.executor.submit(
                fn, *args)
            return answer_within(target, future, what, deadline_s)
        except StembenchError:
            raise
        except Exception as exc:  # reported below, after the last attempt
            if attempt == retry.max_attempts:
                raise StembenchError(f"{target.name}: {what} failed {attempt} time(s), last: "
                                     f"{describe_error(exc)}") from exc
            time.sleep(retry.delay(attempt + 1))
    raise AssertionError("unreachable: RetryPolicy has max_attempts >= 1")


def list_images(target: Target, dataset: DatasetRef,
                deadline_s: float | None = DEFAULT_TASK_DEADLINE_S,
                retry: RetryPolicy | None = None, *,
                describe: Callable[..., dict[str, Any]] = describe_dataset) -> list[str]:
    """The dataset's image ids, listed on ``target`` by ``describe``.

    A refused or failed listing is asked again with the retry policy's backoff, then
    reported in one line; no answer within ``deadline_s`` stops at once. A target whose
    :attr:`~stembench.client.scheduler.Target.features` are not known yet takes them from
    the answer (an endpoint older than them lists none).

    Parameters
    ----------
    target : Target
        Where the listing runs (an executor).
    dataset : DatasetRef
        The dataset.
    deadline_s : float or None, optional
        Seconds to wait for the listing; ``None``: no deadline; default
        :data:`DEFAULT_TASK_DEADLINE_S`.
    retry : RetryPolicy, optional
        Retries of a refused or failed listing; default :class:`RetryPolicy`.
    describe : callable, optional
        The task that lists the dataset; default :func:`describe_dataset`.
    """
    listing = ask(target, "the dataset listing", deadline_s, retry or RetryPolicy(),
                   describe, asdict(dataset), __version__)
    if target.features is None:  # what an endpoint understands: its answer says
        target.features = frozenset(listing.get("features") or ())
    return [row["image_id"] for row in listing["images"]]


def shard_identity(target: Target, dataset: DatasetRef, spec: ModelSpec,
                   deadline_s: float | None = DEFAULT_TASK_DEADLINE_S) -> dict[str, Any]:
    """The identity of ``spec``'s results on ``dataset``, asked of ``target``
    (:func:`~stembench.endpoints.shard.describe_identity`; retried, then one line).

    Parameters
    ----------
    target : Target
        Where it is asked.
    dataset : DatasetRef
        The dataset.
    spec : ModelSpec
        The model.
    deadline_s : float or None, optional
        Seconds to wait for the answer; default :data:`DEFAULT_TASK_DEADLINE_S`.
    """
    return dict(ask(target, "the results' identity", deadline_s, RetryPolicy(),
                     describe_identity, asdict(dataset), asdict(spec), __version__))


def results_identities(identify: Callable[..., dict[str, Any]] | None,
                       targets: Mapping[str, Target], dataset: DatasetRef,
                       specs: Mapping[str, ModelSpec], deadline_s: float | None,
                       retry: RetryPolicy | None = None) -> dict[str, dict[str, Any] | None]:
    """Each model's results identity, asked of its target (the endpoint's all at once).

    Parameters
    ----------
    identify : callable or None
        Asks one model's identity (:func:`shard_identity`, whose calls are sent at once);
        ``None``: no identity (every model's is ``None``).
    targets : mapping of str to Target
        Each model's target.
    dataset : DatasetRef
        The dataset.
    specs : mapping of str to ModelSpec
        The models.
    deadline_s : float or None
        Seconds to wait for each answer.
    retry : RetryPolicy, optional
        Retries of a refused or failed call; default :class:`RetryPolicy`.
    """
    if identify is None:
        return dict.fromkeys(specs)
    if identify is not shard_identity:
        return {model: identify(targets[model], dataset, spec) for model, spec in specs.items()}
    calls: dict[str, tuple[Any, ...]] = {
        model: (asdict(dataset), asdict(spec), __version__) for model, spec in specs.items()}
    sent: dict[str, cf.Future[Any] | None] = {}
    for model, args in calls.items():
        try:
            sent[model] = targets[model].executor.submit(describe_identity, *args)
        except Exception:  # refused at once: ask sends it again
            sent[model] = None
    return {model: dict(ask(targets[model], "the results' identity", deadline_s,
                             retry or RetryPolicy(), describe_identity, *calls[model],
                             sent=sent[model]))
            for model in specs}
