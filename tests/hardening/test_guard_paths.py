"""One output guard, one error per image, in every path a model's output takes:
``evaluate`` (which ``run`` calls), the service's worker, and ``assess --run``."""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from stembench.client.orchestrate import Target, evaluate
from stembench.client.results_file import ResultsFile
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.endpoints.models.guard import run_model_safely
from stembench.endpoints.models.loaders import CallableModel
from stembench.endpoints.requests import DatasetRef
from stembench.service.job_executor import CancellableExecutor
from stembench.service.settings import ServiceSettings
from stembench.service.worker import import_function

BAD = "stembench_faults:wrong_shape_model"
REFUSAL = f"model {BAD!r} returned shape (5, 3), expected (N, 2) x, y pixel positions"


def _errors(results: Path) -> dict[str, str]:
    return {e["image_id"]: e["error"] for e in ResultsFile(results).image_errors()}


def _ids(dataset: Path) -> list[str]:
    with open_dataset(dataset) as opened:
        return list(opened.ids)


@pytest.mark.parametrize(("result", "problem"), [
    (np.ones((5, 3)), "returned shape (5, 3), expected (N, 2)"),
    (np.array([[1.0, math.nan]]), "returned 1 NaN or infinite position(s), first at row 0"),
    (np.array([[1.0, 1.0], [40.0, 2.0]]), "returned 1 position(s) outside the 32x32 px image"),
    (np.zeros((10**6, 2)), "returned 1000000 positions for a 32x32 px image, more than one "
                           "per 4 pixels (256): not a column map"),
])
def test_the_guard_refuses_what_is_not_a_column_map(result: np.ndarray, problem: str) -> None:
    model = CallableModel(lambda image, pixel_size: result, name="m")
    output = run_model_safely(model, np.zeros((32, 32)), 0.1, image_id="i")
    assert output.coordinates is None
    assert str(output.error).startswith(f"image 'i': model 'm' {problem}"), output.error


def test_evaluate_command_fails_each_image_once(tmp_path: Path, tiny_dataset_path: Path,
                                                stembench: Callable[..., object]) -> None:
    results = tmp_path / "r.jsonl"
    answer = stembench("evaluate", "--model", BAD, "--dataset", str(tiny_dataset_path),
                       "--results", str(results), "--workers", "1", "--no-report")
    assert answer.code == 1, answer.text  # type: ignore[attr-defined]
    assert "Exit status 1: every image failed (3 of 3)" in answer.text  # type: ignore[attr-defined]
    errors = _errors(results)
    assert sorted(errors) == sorted(_ids(tiny_dataset_path))
    assert all(e == f"image {i!r}: {REFUSAL}" for i, e in errors.items())


def test_service_worker_path_fails_each_image_once(tmp_path: Path,
                                                   tiny_dataset_path: Path) -> None:
    """What :class:`~stembench.service.worker.Worker` runs for a job on its thread executor."""
    settings = ServiceSettings(data_dir=tmp_path, executor="thread", workers=1)
    target = Target("thread", CancellableExecutor(cf.ThreadPoolExecutor(1)), max_in_flight=2)
    results = tmp_path / "results.jsonl"
    outcome = evaluate(BAD, results_path=results, targets=[target],
                       dataset=DatasetRef(source="path", path=str(tiny_dataset_path)),
                       image_ids=_ids(tiny_dataset_path), progress=False, identify=None,
                       shard_function=import_function(settings.shard_function))
    target.executor.shutdown()
    assert outcome.complete
    errors = _errors(results)
    assert sorted(errors) == sorted(_ids(tiny_dataset_path))
    assert all(e == f"image {i!r}: {REFUSAL}" for i, e in errors.items())


def test_a_thread_executor_also_keeps_the_deadline(tmp_path: Path, tiny_dataset_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """In a thread (the service's thread executor) a spinning model is interrupted too."""
    monkeypatch.setenv("STEMBENCH_FAULT_DIR", str(tmp_path))
    results = tmp_path / "r.jsonl"
    with cf.ThreadPoolExecutor(1) as pool:
        evaluate("stembench_faults:spin_once", results_path=results,
                 targets=[Target("thread", pool)], image_timeout_s=1.0,
                 dataset=DatasetRef(source="path", path=str(tiny_dataset_path)),
                 image_ids=_ids(tiny_dataset_path), shard_size=3, progress=False)
    errors = list(_errors(results).values())
    assert len(errors) == 1 and "ran past the 1 s deadline per image" in errors[0]
    records = ResultsFile(results).records()  # the failed image is scored as finding nothing
    assert len(records) == 3 and sum(r["failed"] for r in records) == 1


def test_assess_run_goes_through_the_guard(tmp_path: Path,
                                           stembench: Callable[..., object]) -> None:
    y, x = np.mgrid[0:128, 0:128]
    lattice = 0.05 + ((np.cos(2 * np.pi * x / 12) + 1) * (np.cos(2 * np.pi * y / 12) + 1)) ** 3
    np.save(tmp_path / "image.npy", lattice)
    answer = stembench("assess", str(tmp_path / "image.npy"), "--pixel-size", "0.2", "--out",
                       str(tmp_path / "out"), "--run", BAD, "--no-twin")
    assert answer.code == 1
    assert answer.stderr.strip().splitlines()[-1] == (  # type: ignore[attr-defined]
        f"stembench: error: image 'image.npy': {REFUSAL}")
    written = json.loads((tmp_path / "out" / "image_assess.json").read_text())
    assert written["assessment"]["lattice"]["kind"] == "square"  # the assessment is kept
    assert written.get("predictions") is None
