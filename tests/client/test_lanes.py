"""Lanes: each model's identity call and shards on one target, frameworks grouped per lane."""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import stembench_faults as faults

from stembench.client.executors import THREAD_VARIABLES, local_executor
from stembench.client.lanes import assign_lanes
from stembench.client.orchestrate import RetryPolicy, Target, evaluate_models
from stembench.endpoints.requests import DatasetRef, ModelSpec, ShardRequest
from stembench.errors import InputError

IDS = [f"img-{i}" for i in range(8)]
FAST_RETRY = RetryPolicy(max_attempts=3, backoff_s=0.01)


class _Recording(cf.ThreadPoolExecutor):
    """Runs tasks on one thread and remembers the model of every shard it was given."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.models: list[str] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        self.models.append(ShardRequest.from_dict(args[0]).model.spec)
        return super().submit(fn, *args, **kwargs)


def test_each_model_stays_on_its_lane_retries_and_identity_included(tmp_path: Path) -> None:
    targets = [Target(f"lane-{i}", _Recording(), max_in_flight=2) for i in range(2)]
    asked: dict[str, str] = {}

    def identify(target: Target, dataset: DatasetRef, spec: ModelSpec) -> dict[str, Any]:
        asked[spec.spec] = target.name
        return {}

    paths = {m: tmp_path / f"{m}.jsonl" for m in ("echo-a", "echo-b", "echo-c")}
    try:
        outcomes = evaluate_models(
            paths, dataset=DatasetRef(cache_dir=str(tmp_path)), targets=targets,
            image_ids=IDS, shard_size=2, retry=FAST_RETRY, progress=False,
            shard_function=faults.raise_once, identify=identify,
            lanes={"echo-a": 1, "echo-b": 0})
    finally:
        for target in targets:
            target.executor.shutdown()
    assert all(o.complete and o.n_finished == 4 for o in outcomes.values())
    lane0, lane1 = (t.executor.models for t in targets)  # type: ignore[attr-defined]
    # every shard ran twice (raise_once): both attempts of a laned model on its lane
    assert lane1.count("echo-a") == 8 and "echo-a" not in lane0
    assert lane0.count("echo-b") == 8 and "echo-b" not in lane1
    assert lane0.count("echo-c") + lane1.count("echo-c") == 8  # no lane: anywhere
    assert asked == {"echo-a": "lane-1", "echo-b": "lane-0", "echo-c": "lane-0"}


class _HeldUntil(_Recording):
    """Holds every task it is given until ``event`` is set (fails it after a bounded wait)."""

    def __init__(self, event: threading.Event) -> None:
        super().__init__()
        self.event = event

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        def held(*inner: Any) -> Any:
            if not self.event.wait(timeout=60):
                raise RuntimeError("held: the other lane never got its shards")
            return fn(*inner)

        self.models.append(ShardRequest.from_dict(args[0]).model.spec)
        return cf.ThreadPoolExecutor.submit(self, held, *args)


class _Announcing(_Recording):
    """Sets ``event`` when it is given a shard of ``model``."""

    def __init__(self, event: threading.Event, model: str) -> None:
        super().__init__()
        self.event, self.model = event, model

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        if self.models[-1] == self.model:
            self.event.set()
        return future


def test_a_full_lane_does_not_hold_back_the_other_lanes_shards(tmp_path: Path) -> None:
    # lane 1 holds echo-a's shards until lane 0 has been given one of echo-b's, which come
    # after all of echo-a's: only a scheduler that passes over the full lane finishes
    got_b = threading.Event()
    targets = [Target("lane-0", _Announcing(got_b, "echo-b"), max_in_flight=2),
               Target("lane-1", _HeldUntil(got_b), max_in_flight=2)]
    paths = {m: tmp_path / f"{m}.jsonl" for m in ("echo-a", "echo-b")}
    try:
        outcomes = evaluate_models(
            paths, dataset=DatasetRef(cache_dir=str(tmp_path)), targets=targets,
            image_ids=IDS, shard_size=2, retry=RetryPolicy(max_attempts=1), progress=False,
            shard_function=faults.echo_shard, identify=None, lanes={"echo-a": 1, "echo-b": 0})
    finally:
        got_b.set()
        for target in targets:
            target.executor.shutdown()
    assert all(o.complete for o in outcomes.values()), [o.failed_shards for o in outcomes.values()]


def test_a_lane_outside_the_targets_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"lanes \{'echo': 1\} name a target outside 0-0"):
        evaluate_models({"echo": tmp_path / "e.jsonl"},
                        dataset=DatasetRef(cache_dir=str(tmp_path)),
                        targets=[Target("only", cf.ThreadPoolExecutor(1))], image_ids=IDS,
                        progress=False, shard_function=faults.echo_shard, identify=None,
                        lanes={"echo": 1})


def test_models_of_one_framework_share_a_lane_and_the_rest_balance() -> None:
    built_ins = ["atomsegnet", "atomnet-cubic", "atomnet-hexagonal", "atomap-like", "log-blob"]
    lanes = assign_lanes(built_ins, 2)
    # TensorFlow (2 models + import) on lane 0, PyTorch on lane 1, the classical ones spread
    assert lanes == {"atomnet-cubic": 0, "atomnet-hexagonal": 0, "atomsegnet": 1,
                     "atomap-like": 1, "log-blob": 0}
    assert set(assign_lanes(built_ins, 1).values()) == {0}
    # a weights file or a user's file is grouped by its framework too
    by_file = assign_lanes(["atomsegnet", "mine.pt", "other.h5", "atomnet-cubic"], 3)
    assert by_file["mine.pt"] == by_file["atomsegnet"] != by_file["other.h5"]
    assert by_file["other.h5"] == by_file["atomnet-cubic"]


def test_one_worker_lanes_share_the_cores_among_all_lanes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3}, raising=False)
    pool = local_executor(1, share_of=2)
    try:
        seen = {name: pool.submit(os.getenv, name).result(timeout=120)
                for name in THREAD_VARIABLES}
    finally:
        pool.shutdown()
    assert seen == dict.fromkeys(THREAD_VARIABLES, "2")  # 4 cores / 2 lanes
