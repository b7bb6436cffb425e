"""The client's side of copies that stop where they run (issue 22, read22b findings 2 and 5).

A copy carries ``not_after_unix`` (this machine's wall clock); the client gives it up by
its monotonic clock or once the wall clock passes that time, whichever comes first, and an
expired copy's finished images are kept: only the others are sent again. The clocks are
read through ``scheduler._wall_clock`` (patched here: a laptop's sleep is a jump of it), and
the executors answer at once with what an endpoint would answer.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from stembench_faults import echo_shard

from stembench.client import orchestrate, scheduler
from stembench.client.orchestrate import Target, evaluate
from stembench.client.results_file import ResultsFile
from stembench.client.scheduler import Evaluation, RetryPolicy, ShardScheduler, ShardSink
from stembench.endpoints.requests import DatasetRef, ModelSpec, ShardRequest
from stembench.endpoints.shard import score_failed_shard

WALL = 1_900_000_000.0
ENDPOINT_BLAME = "the endpoint's clock is more than 10 s ahead of the sender's"


class Endpoint(cf.Executor):
    """Answers each task at once with ``answer(function, args, copy number)``, or never
    (``None``); keeps what was sent."""

    def __init__(self, answer: Callable[[Any, tuple[Any, ...], int], Any]) -> None:
        self.answer, self.sent = answer, []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        self.sent.append(args[0])
        future: cf.Future[Any] = cf.Future()
        value = self.answer(fn, args, len(self.sent))
        if isinstance(value, BaseException):
            future.set_exception(value)
        elif value is not None:
            future.set_result(value)
        return future


def expired(request: dict[str, Any], finished: int) -> dict[str, Any]:
    """What the endpoint answers for a copy it stopped after ``finished`` images."""
    answer = echo_shard(request)
    for entry in answer["images"]:
        entry["seconds"] = 7.0  # marks the images this copy computed
    return {**answer, "ok": False, "expired": True, "images": answer["images"][:finished],
            "error": "expired: its sender stopped waiting for this copy at 1 (Unix time) "
                     f"...; if the sender was still waiting, {ENDPOINT_BLAME}"}


def one_shard(tmp_path: Path, endpoint: Endpoint, *, attempts: int = 3) -> tuple[
        ShardScheduler, ShardRequest, Evaluation]:
    request = ShardRequest(dataset=DatasetRef(cache_dir=str(tmp_path)), model=ModelSpec("echo"),
                           image_ids=("img0",))
    work = ShardScheduler([Target("endpoint", endpoint)], RetryPolicy(max_attempts=attempts),
                          echo_shard, deadline_s=300.0)
    evaluation = Evaluation(model="echo", results_path=tmp_path / "r.jsonl", n_shards=1)
    work.sinks = {request.shard_id: ShardSink(ResultsFile(evaluation.results_path), evaluation,
                                              SimpleNamespace(update=lambda n: None))}
    work.pending = [(0.0, 1, request)]
    return work, request, evaluation


def test_a_copy_is_given_up_once_the_wall_clock_passes_the_time_it_was_sent_with(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The time sent and the time given up at are one reading of the wall clock plus the
    deadline; the wall clock past it (a laptop woke up) gives the copy up although the
    monotonic clock has counted almost nothing."""
    monkeypatch.setattr(scheduler, "_wall_clock", lambda: WALL)
    endpoint = Endpoint(lambda fn, args, copy: None)  # no answer yet
    work, _, _ = one_shard(tmp_path, endpoint)
    work._submit_ready()
    (future,) = work.running
    assert endpoint.sent[0]["not_after_unix"] == WALL + 300.0 == work.not_after[future]

    work._expire()
    assert future in work.running  # neither clock is past it
    monkeypatch.setattr(scheduler, "_wall_clock", lambda: WALL + 301.0)  # slept 6 minutes
    work._expire()
    assert future not in work.running and [p[1] for p in work.pending] == [2]


def test_an_expired_copy_after_this_machines_clock_jumped_does_not_blame_the_endpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler, "_wall_clock", lambda: WALL)
    endpoint = Endpoint(lambda fn, args, copy: None)
    work, request, evaluation = one_shard(tmp_path, endpoint, attempts=1)
    work._submit_ready()
    (future,) = work.running
    future.set_result(expired(endpoint.sent[0], 0))  # the endpoint stopped it: its time passed
    monkeypatch.setattr(scheduler, "_wall_clock", lambda: WALL + 301.0)  # and so did ours

    work._collect(future)

    reason = evaluation.failed_shards[request.shard_id]
    assert ENDPOINT_BLAME not in reason and "this machine's wall clock has passed" in reason


def test_an_expired_copys_finished_images_are_kept_and_only_the_rest_sent_again(
        tmp_path: Path) -> None:
    endpoint = Endpoint(lambda fn, args, copy: expired(args[0], 1) if copy == 1
                        else echo_shard(args[0]))
    outcome = evaluate("echo", results_path=tmp_path / "results.jsonl",
                       dataset=DatasetRef(cache_dir=str(tmp_path)),
                       targets=[Target("endpoint", endpoint)], image_ids=["a", "b", "c"],
                       shard_size=3, progress=False, shard_function=echo_shard, identify=None,
                       task_deadline_s=300.0, retry=RetryPolicy(backoff_s=0))

    assert [sent["image_ids"] for sent in endpoint.sent] == [["a", "b", "c"], ["b", "c"]]
    assert outcome.complete and outcome.n_finished == 1
    (line,) = (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()
    shard = json.loads(line)
    assert shard["ok"] and shard["shard_id"] == outcome.shard_ids[0]
    assert [(e["image_id"], e["seconds"]) for e in shard["images"]] == [
        ("a", 7.0), ("b", 0.0), ("c", 0.0)]


def test_an_expired_copys_finished_images_stay_scored_when_the_shard_fails_after_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shard's later copy fails for good: only the images not finished are scored as
    failed; the one the stopped copy finished keeps its score."""
    def answer(fn: Any, args: tuple[Any, ...], copy: int) -> Any:
        if fn is score_failed_shard:  # the model is not loaded: every image found nothing
            failed = echo_shard(args[0])
            for entry in failed["images"]:
                entry["error"] = f"its shard failed as a whole: {args[1]}"
            return {**failed, "ok": False, "shard_failed": True, "error": args[1]}
        return expired(args[0], 1) if copy == 1 else RuntimeError("CUDA out of memory")

    monkeypatch.setattr(orchestrate, "evaluate_shard", echo_shard)  # failed shards: scored
    endpoint = Endpoint(answer)
    outcome = evaluate("echo", results_path=tmp_path / "results.jsonl",
                       dataset=DatasetRef(cache_dir=str(tmp_path)),
                       targets=[Target("endpoint", endpoint)], image_ids=["a", "b", "c"],
                       shard_size=3, progress=False, shard_function=echo_shard, identify=None,
                       task_deadline_s=300.0, retry=RetryPolicy(max_attempts=2, backoff_s=0))

    assert [sent["image_ids"] for sent in endpoint.sent] == [["a", "b", "c"], ["b", "c"],
                                                               ["b", "c"]]
    (reason,) = outcome.failed_shards.values()
    assert reason.endswith("CUDA out of memory")
    records = ResultsFile(tmp_path / "results.jsonl").records(outcome.shard_ids)
    assert [(r["image_id"], r["failed"]) for r in records] == [
        ("a", False), ("b", True), ("c", True)]
