"""A task given up on (deadline, Ctrl-C, a cancelled job) must not cost other tasks their results.

globus-compute-sdk's result watcher (``_ResultWatcher``, sdk/executor.py) takes every
matched future off its watch list, then sets an error result's exception unguarded: on a
future we cancelled that raises ``InvalidStateError`` in its AMQP thread, and the healthy
results of the same batch, already acknowledged, never reach their futures. These tests
feed the installed watcher the results as RabbitMQ delivers them (``_on_message``), then let
it match them (``_match_results_to_futures``), with no broker and no thread.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from stembench_faults import echo_shard

pytest.importorskip("globus_compute_sdk")

import globus_sdk
from globus_compute_common import messagepack
from globus_compute_common.messagepack.message_types import Result, ResultErrorDetails
from globus_compute_endpoint.exception_handling import (
    get_error_string,
    get_result_error_details,
)
from globus_compute_sdk import Client
from globus_compute_sdk.sdk import executor as sdk_executor
from globus_compute_sdk.sdk.asynchronous.compute_future import ComputeFuture

from stembench.client.lifeline import give_up
from stembench.client.orchestrate import Target, evaluate, list_images
from stembench.client.scheduler import Evaluation, RetryPolicy, ShardScheduler, ShardSink
from stembench.endpoints import expiry
from stembench.endpoints.requests import DatasetRef, ModelSpec, ShardRequest
from stembench.endpoints.shard import evaluate_shard
from stembench.service.job_executor import CancellableExecutor


class WatchedExecutor(cf.Executor):
    """Hands out the SDK's futures, watched by ``watcher`` as the SDK's Executor does once
    the web service gave each task its id (sdk/executor.py, ``_get_result_watcher``)."""

    def __init__(self, watcher: Any) -> None:
        self.watcher, self.futures = watcher, []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        future = ComputeFuture(task_id=str(uuid.uuid4()))
        self.watcher.watch_for_task_results(self, [future])
        self.futures.append(future)
        return future


@pytest.fixture
def watcher() -> Iterator[Any]:
    client = Client(authorizer=globus_sdk.AccessTokenAuthorizer("token"),
                    do_version_check=False)
    watcher = sdk_executor._ResultWatcher(uuid.uuid4(), client)
    yield watcher
    sdk_executor._RESULT_WATCHERS.pop(watcher.task_group_id, None)


def deliver(watcher: Any, results: list[tuple[ComputeFuture, Any]]) -> None:
    """Deliver one batch: ``(future, value)``, a value ``None`` being the endpoint's
    task-timeout error and an exception a task that raised it on the endpoint; then let the
    watcher match them to their futures."""
    for tag, (future, value) in enumerate(results, start=1):
        if value is None:
            result = Result(task_id=uuid.UUID(future.task_id), data="AppTimeout: task timed out",
                            error_details=ResultErrorDetails(code="AppTimeout",
                                                             user_message="timed out"))
        elif isinstance(value, BaseException):  # as the endpoint reports it
            code, message = get_result_error_details(value)
            result = Result(task_id=uuid.UUID(future.task_id), data=get_error_string(exc=value),
                            error_details=ResultErrorDetails(code=code, user_message=message))
        else:
            result = Result(task_id=uuid.UUID(future.task_id),
                            data=watcher.client.fx_serializer.serialize(value))
        watcher._on_message(None, SimpleNamespace(delivery_tag=tag),
                            SimpleNamespace(headers={}, timestamp=1), messagepack.pack(result))
    watcher._match_results_to_futures()


def request(shard: str) -> ShardRequest:
    return ShardRequest(dataset=DatasetRef(preset="mini"),
                        model=ModelSpec(spec="atomap-like"), image_ids=(shard,))


def test_a_task_past_its_deadline_leaves_the_batchs_other_results_intact(watcher: Any) -> None:
    executor = WatchedExecutor(watcher)
    scheduler = ShardScheduler([Target("endpoint", executor)], RetryPolicy(), dict,
                               deadline_s=60.0)
    late, healthy_a, healthy_b = (executor.submit(dict) for _ in range(3))
    for index, future in enumerate((late, healthy_a, healthy_b)):
        scheduler.running[future] = (0, 1, request(f"img{index}"))
        scheduler.started[future] = time.monotonic()
    scheduler.started[late] -= 120.0  # submitted two deadlines ago: the scheduler gives up
    scheduler._expire()
    assert late not in scheduler.running and [p[1] for p in scheduler.pending] == [2]

    deliver(watcher, [(late, None), (healthy_a, {"ok": 1}), (healthy_b, {"ok": 2})])

    assert healthy_a.result(timeout=0) == {"ok": 1} and healthy_b.result(timeout=0) == {"ok": 2}
    assert isinstance(late.exception(timeout=0), Exception)
    assert not watcher.get_open_futures()


def test_an_unanswered_listing_leaves_the_batchs_other_results_intact(watcher: Any) -> None:
    executor = WatchedExecutor(watcher)
    target = Target("endpoint", executor)
    with pytest.raises(Exception, match="no answer to the dataset listing within"):
        list_images(target, DatasetRef(preset="mini"), deadline_s=0.0,
                    retry=RetryPolicy(max_attempts=1))
    (listing,) = executor.futures
    healthy = executor.submit(dict)

    deliver(watcher, [(listing, None), (healthy, {"ok": 1})])

    assert healthy.result(timeout=0) == {"ok": 1}


def test_a_cancelled_jobs_tasks_leave_other_jobs_results_intact(watcher: Any) -> None:
    executor = WatchedExecutor(watcher)
    job = CancellableExecutor(executor)
    stopped = job.submit(dict)
    other = executor.submit(dict)  # another job's task, in the same task group
    job.stop()
    with pytest.raises(cf.BrokenExecutor):
        stopped.result(timeout=0)

    deliver(watcher, [(executor.futures[0], None), (other, {"ok": 1})])

    assert other.result(timeout=0) == {"ok": 1}


def test_a_local_task_given_up_on_before_it_started_never_starts() -> None:
    queued: cf.Future[Any] = cf.Future()  # a process pool's task still in its queue
    assert give_up(queued) and not queued.set_running_or_notify_cancel()


def _load_weights(device: str) -> None:
    raise RuntimeError(f"CUDA out of memory on {device}")


def test_a_task_that_raised_on_the_endpoint_is_reported_in_one_line(
        watcher: Any, tmp_path: Path) -> None:
    executor = WatchedExecutor(watcher)
    scheduler = ShardScheduler([Target("endpoint", executor)], RetryPolicy(max_attempts=1),
                               dict)
    evaluation = Evaluation(model="atomap-like", results_path=tmp_path / "r.jsonl", n_shards=1)
    shard = request("img0")
    scheduler.sinks[shard.shard_id] = ShardSink(results=None, evaluation=evaluation,
                                                bar=SimpleNamespace(update=lambda n: None))
    future = executor.submit(dict)
    scheduler.running[future] = (0, 1, shard)
    try:
        _load_weights("cuda:0")
    except RuntimeError as exc:
        raised = exc
    deliver(watcher, [(future, raised)])
    assert "Traceback" in str(future.exception(timeout=0))  # the SDK's text: the traceback

    scheduler._collect(future)

    assert evaluation.failed_shards == {shard.shard_id: (
        "endpoint: TaskExecutionFailed: RuntimeError: CUDA out of memory on cuda:0")}


class CopiesExecutor(cf.Executor):
    """An endpoint whose queue is busy: a shard's first copy waits there; when the client
    sends the shard again, the first copy's late result (expired: the endpoint function run
    on that very request, by then past its ``not_after_unix``) and then the second copy's
    result come through the SDK's result watcher."""

    def __init__(self, watcher: Any) -> None:
        self.watcher = watcher
        self.sent: list[tuple[ComputeFuture, dict[str, Any]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        (request,) = args
        future = ComputeFuture(task_id=str(uuid.uuid4()))
        self.watcher.watch_for_task_results(self, [future])
        earlier = [(f, r) for f, r in self.sent if r["image_ids"] == request["image_ids"]]
        self.sent.append((future, request))
        if len(earlier) == 1:  # a third copy, if sent, never answers
            (late, late_request), = earlier
            deliver(self.watcher, [(late, evaluate_shard(late_request)),
                                   (future, fn(request))])
        return future


def test_a_late_expired_copy_neither_fails_the_shard_nor_replaces_the_later_one(
        watcher: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expiry, "_now", lambda: time.time() + 10 * 3600)  # both copies late
    executor = CopiesExecutor(watcher)
    outcome = evaluate("echo", results_path=tmp_path / "results.jsonl",
                       dataset=DatasetRef(cache_dir=str(tmp_path)),
                       targets=[Target("endpoint", executor)], image_ids=["img0"],
                       progress=False, shard_function=echo_shard, identify=None,
                       task_deadline_s=0.05, retry=RetryPolicy(backoff_s=0))

    (first, _), (second, _) = executor.sent  # given up once, sent again, nothing more
    assert first.result(timeout=0)["expired"] and second.result(timeout=0)["ok"]
    assert outcome.complete and outcome.n_finished == 1 and not outcome.failed_shards
    (line,) = (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["ok"] and "expired" not in json.loads(line)


class AnsweringExecutor(cf.Executor):
    """Answers each task at once with ``answer(request, copy number)``."""

    def __init__(self, answer: Callable[[dict[str, Any], int], dict[str, Any]]) -> None:
        self.answer, self.sent = answer, []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        self.sent.append(args[0])
        future: cf.Future[Any] = cf.Future()
        future.set_result(self.answer(args[0], len(self.sent)))
        return future


def test_an_expired_copy_still_awaited_is_sent_again_not_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoint's clock more than the margin ahead: it stops the first copy before the
    client gave it up; the client sends the shard again (an attempt), it is no failure."""
    monkeypatch.setattr(expiry, "_now", lambda: time.time() + 600)
    executor = AnsweringExecutor(lambda request, copy: evaluate_shard(request) if copy == 1
                                 else echo_shard(request))
    before = time.time()
    outcome = evaluate("echo", results_path=tmp_path / "results.jsonl",
                       dataset=DatasetRef(cache_dir=str(tmp_path)),
                       targets=[Target("endpoint", executor)], image_ids=["img0"],
                       progress=False, shard_function=echo_shard, identify=None,
                       task_deadline_s=300.0, retry=RetryPolicy(backoff_s=0))
    after = time.time()

    assert outcome.complete and outcome.n_finished == 1 and not outcome.failed_shards
    assert len(executor.sent) == 2
    for sent in executor.sent:  # each copy's own time: when it was sent + the deadline
        assert before + 300.0 <= sent["not_after_unix"] <= after + 300.0
