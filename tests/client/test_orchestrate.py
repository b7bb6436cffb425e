"""Sharding, resume, retries and fault handling of the client orchestrator."""

from __future__ import annotations

import concurrent.futures as cf
import json
import threading
from pathlib import Path

import pytest
import stembench_faults as faults

from stembench.client.executors import local_executor
from stembench.client.orchestrate import (
    RetryPolicy,
    Target,
    evaluate,
    evaluate_models,
    plan_shards,
)
from stembench.client.partial_shards import FinishedImages
from stembench.client.results_file import ResultsFile
from stembench.endpoints.requests import DatasetRef
from stembench.errors import InputError

IDS = [f"img-{i}" for i in range(10)]
FAST_RETRY = RetryPolicy(max_attempts=3, backoff_s=0.01)


def _run(tmp_path: Path, task, *, targets=None, ids=IDS, retry=FAST_RETRY):
    dataset = DatasetRef(cache_dir=str(tmp_path))
    return evaluate("echo", results_path=tmp_path / "results.jsonl", dataset=dataset,
                    targets=targets, image_ids=ids, shard_size=2, retry=retry,
                    progress=False, shard_function=task, identify=None)


def test_plan_shards_sizes_and_order() -> None:
    shards = plan_shards(IDS, shard_size=4)
    assert shards == [tuple(IDS[0:4]), tuple(IDS[4:8]), tuple(IDS[8:10])]
    # default: several shards per worker, never more than 64 images
    assert len(plan_shards([str(i) for i in range(1000)], n_workers=2)) == 1000 // 64 + 1
    assert plan_shards([str(i) for i in range(16)], n_workers=2) == [
        tuple(str(i) for i in range(j, j + 2)) for j in range(0, 16, 2)]
    with pytest.raises(InputError, match="shard size"):
        plan_shards(IDS, shard_size=0)


def test_every_shard_written_and_resume_skips_them(tmp_path: Path) -> None:
    first = _run(tmp_path, faults.echo_shard)
    assert first.complete and first.n_finished == 5
    records = ResultsFile(tmp_path / "results.jsonl").records()
    assert sorted(r["image_id"] for r in records) == IDS
    second = _run(tmp_path, faults.echo_shard)
    assert second.n_finished == 0 and second.n_skipped == 5 and second.complete
    assert len(ResultsFile(tmp_path / "results.jsonl").records()) == 10


def test_task_that_raises_is_retried(tmp_path: Path) -> None:
    outcome = _run(tmp_path, faults.raise_once)
    assert outcome.complete and outcome.n_finished == 5
    assert len(list(tmp_path.glob("raise-*"))) == 5  # every shard failed once


def test_permanent_failure_reported_and_other_shards_kept(tmp_path: Path) -> None:
    outcome = _run(tmp_path, faults.always_raise)
    assert len(outcome.failed_shards) == 1
    (reason,) = outcome.failed_shards.values()
    assert "permanent failure" in reason
    kept = {r["image_id"] for r in ResultsFile(tmp_path / "results.jsonl").records()}
    assert kept == set(IDS) - {"img-0", "img-1"}


def test_worker_killed_mid_task_pool_rebuilt(tmp_path: Path) -> None:
    target = Target("local", local_executor(2), factory=lambda: local_executor(2),
                    max_in_flight=2)
    try:
        outcome = _run(tmp_path, faults.die_once, targets=[target])
    finally:
        target.executor.shutdown(wait=False, cancel_futures=True)
    assert outcome.complete, outcome.failed_shards
    kept = sorted(r["image_id"] for r in ResultsFile(tmp_path / "results.jsonl").records())
    assert kept == IDS


def test_fan_out_over_two_targets(tmp_path: Path) -> None:
    a = Target("site-a", local_executor(1), max_in_flight=1)
    b = Target("site-b", local_executor(1), max_in_flight=1)
    try:
        outcome = _run(tmp_path, faults.echo_shard, targets=[a, b])
    finally:
        a.executor.shutdown()
        b.executor.shutdown()
    assert outcome.complete and outcome.n_finished == 5


def test_truncated_last_line_is_redone(tmp_path: Path) -> None:
    _run(tmp_path, faults.echo_shard)
    path = tmp_path / "results.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    with pytest.warns(UserWarning, match="incomplete"):
        again = _run(tmp_path, faults.echo_shard)
    assert again.n_finished == 1 and again.n_skipped == 4
    assert json.loads(path.read_text().splitlines()[-1])["ok"] is True


def test_retry_policy_backoff() -> None:
    policy = RetryPolicy(max_attempts=4, backoff_s=0.5, backoff_factor=3)
    assert [policy.delay(a) for a in (2, 3, 4)] == [0.5, 1.5, 4.5]
    with pytest.raises(InputError):
        RetryPolicy(max_attempts=0)


class _GatedExecutor(cf.Executor):
    """Runs nothing until ``gate`` tasks are waiting (or 20 s passed: ``stalled``)."""

    def __init__(self, gate: int) -> None:
        self.gate, self.stalled = gate, False
        self.waiting: list[tuple[object, tuple, cf.Future]] = []
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future: cf.Future = cf.Future()
        with self.lock:
            self.waiting.append((fn, args, future))
            if self.timer is None:
                self.timer = threading.Timer(20, self._release, kwargs={"stalled": True})
                self.timer.start()
            ready = len(self.waiting) >= self.gate
        if ready:
            self._release()
        return future

    def _release(self, stalled: bool = False) -> None:
        with self.lock:
            self.stalled |= stalled
            waiting, self.waiting = self.waiting, []
            if self.timer is not None:
                self.timer.cancel()
            self.timer = None
        for fn, args, future in waiting:
            future.set_result(fn(*args))  # type: ignore[operator]


def test_models_share_the_workers_without_waiting_for_each_others_last_shard(
        tmp_path: Path) -> None:
    # two models of two shards each, four in flight: only when the second model's shards
    # are submitted before the first model's finish do all four ever wait together
    executor = _GatedExecutor(gate=4)
    paths = {"echo-a": tmp_path / "a.jsonl", "echo-b": tmp_path / "b.jsonl"}
    outcomes = evaluate_models(paths, dataset=DatasetRef(cache_dir=str(tmp_path)),
                               targets=[Target("gated", executor, max_in_flight=4)],
                               image_ids=IDS[:4], shard_size=2, retry=FAST_RETRY,
                               progress=False, shard_function=faults.echo_shard,
                               identify=None)
    assert not executor.stalled
    assert list(outcomes) == ["echo-a", "echo-b"]
    for model, path in paths.items():
        assert outcomes[model].complete and outcomes[model].n_finished == 2
        assert sorted(r["image_id"] for r in ResultsFile(path).records()) == IDS[:4]


def test_failed_shards_are_recorded_within_one_deadline_in_all(tmp_path: Path) -> None:
    """An endpoint that stopped answering costs one task deadline, not one per failed shard."""
    from stembench.client.orchestrate import _record_failed_shards
    from stembench.client.scheduler import Evaluation, ShardSink
    from stembench.endpoints.requests import ModelSpec, ShardRequest

    granted: list[float | None] = []

    class Unanswered(cf.Future):  # type: ignore[type-arg]
        """A task the endpoint never answers; records how long the client waited on it."""

        def result(self, timeout: float | None = None) -> object:
            granted.append(timeout)
            raise cf.TimeoutError

    class Silent(cf.Executor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            return Unanswered()

    requests = [ShardRequest(dataset=DatasetRef(cache_dir=str(tmp_path)),
                             model=ModelSpec("echo"), image_ids=(f"img-{i}",))
                for i in range(4)]
    evaluation = Evaluation(model="echo", results_path=tmp_path / "r.jsonl", n_shards=4,
                            failed_shards={r.shard_id: "worker lost" for r in requests})
    sink = ShardSink(ResultsFile(tmp_path / "r.jsonl"), evaluation, None)
    _record_failed_shards([Target("ep", Silent())], [(r, sink) for r in requests], 0.05,
                          FinishedImages())
    # the four tasks shared one deadline (waited on together), none was given another
    assert sum(t or 0.0 for t in granted) <= 0.05
    assert all(reason.startswith("worker lost; its images could not be recorded as failed "
                                 "either: StembenchError: ep: no answer to the failed shard's "
                                 "scores within "
                                 "0.05 s") for reason in evaluation.failed_shards.values())
