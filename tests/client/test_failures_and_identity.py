"""A failure is a score, and results know the dataset, scorer and model they belong to.

Real path: the shard function, the model registry, the scorer and the orchestrator run on
a real (mini) dataset file, in this process (thread executors), so that the fault models
of ``stembench_faults`` can be told which images to fail on.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import stembench_faults as faults
from typer.testing import CliRunner

from stembench.cli import app
from stembench.client.analysis import compute_cutoffs
from stembench.client.orchestrate import Evaluation, Target, evaluate
from stembench.client.results_file import ResultsFile
from stembench.client.run import collect_failure_cases, image_counts
from stembench.dataset_publish.storage.stembench_layout import DatasetWriter, open_dataset
from stembench.endpoints.requests import DatasetRef

GROUP, SERIES = "SrTiO3-simulated", "contrast"


@pytest.fixture
def marked() -> Iterator[set[str]]:
    faults.MARKED.clear()
    yield faults.MARKED
    faults.MARKED.clear()


def _ids(path: Path, series: str, group: str) -> list[str]:
    with open_dataset(path) as dataset:
        return [i for i in dataset.ids if dataset.metadata(i)["series"] == series
                and dataset.metadata(i)["group"] == group]


def _evaluate(model: str, path: Path, results: Path, ids: list[str]) -> Evaluation:
    target = Target("threads", cf.ThreadPoolExecutor(1), max_in_flight=2)
    try:
        return evaluate(model, results_path=results, targets=[target], image_ids=ids,
                        dataset=DatasetRef(source="path", path=str(path)), shard_size=4,
                        progress=False)
    finally:
        target.executor.shutdown(wait=True)


def _copy(source: Path, target: Path, ids: list[str], *, scale: float = 1.0) -> Path:
    """Write ``ids`` of ``source`` to ``target`` (replacing it), images times ``scale``."""
    with open_dataset(source) as dataset, DatasetWriter(
            target, name=dataset.name, version=dataset.version, generator_params={},
            overwrite=True) as writer:
        for image_id in ids:
            image = dataset[image_id]
            writer.add(dataclasses.replace(image, image=image.image * np.float32(scale)))
    return target


def test_raising_on_the_worst_step_is_no_better_than_finding_nothing(
        mini_dataset_path: Path, tmp_path: Path, marked: set[str]) -> None:
    ids = _ids(mini_dataset_path, SERIES, GROUP)
    with open_dataset(mini_dataset_path) as dataset:
        worst = max(dataset.metadata(i)["step"] for i in ids)
        marked.update(faults.image_hash(dataset[i].image) for i in ids
                      if dataset.metadata(i)["step"] == worst)
    cutoffs = {}
    for model in ("stembench_faults:raise_on_marked", "stembench_faults:nothing_on_marked"):
        outcome = _evaluate(model, mini_dataset_path, tmp_path / f"{model}.jsonl", ids)
        records = ResultsFile(outcome.results_path).records(outcome.shard_ids)
        assert len(records) == len(ids)  # no image left out
        (cutoffs[model],) = compute_cutoffs(records, bootstrap=0, methods=("pchip",),
                                            progress=False)
    raised, nothing = (cutoffs[f"stembench_faults:{m}_on_marked"] for m in ("raise", "nothing"))
    # the plain LoG detector never fails this series; failing on its worst step must show
    assert raised.status == nothing.status == "crossed" and raised.criterion == "recall"
    assert raised.value == pytest.approx(nothing.value)
    assert (raised.n_images, raised.n_failed) == (len(ids), len(marked))
    assert nothing.n_failed == 0


def test_failed_images_are_scored_counted_and_reported(
        mini_dataset_path: Path, tmp_path: Path, marked: set[str]) -> None:
    ids = _ids(mini_dataset_path, "generality", "generality")[:4]
    with open_dataset(mini_dataset_path) as dataset:
        marked.add(faults.image_hash(dataset[ids[0]].image))
    outcome = _evaluate("stembench_faults:raise_on_marked", mini_dataset_path,
                        tmp_path / "r.jsonl", ids)
    assert image_counts(outcome) == (4, 1)
    (failed,) = [r for r in ResultsFile(outcome.results_path).records(outcome.shard_ids)
                 if r["failed"]]
    assert failed["image_id"] == ids[0] and "injected failure" in failed["error"]
    assert failed["recall"] == 0.0 and failed["tp"] == 0 and failed["fn"] > 0
    with open_dataset(mini_dataset_path) as dataset:
        (case, *_) = collect_failure_cases([outcome], dataset, per_model=1)
    assert case["image_id"] == ids[0] and len(case["predicted"]) == 0


def test_evaluate_command_reports_even_when_every_image_failed(
        mini_dataset_path: Path, tmp_path: Path) -> None:
    subset = _copy(mini_dataset_path, tmp_path / "subset.h5",
                   _ids(mini_dataset_path, SERIES, GROUP))
    results = tmp_path / "out" / "results.jsonl"
    answer = CliRunner().invoke(app, ["evaluate", "--model", "stembench_faults:crashing_model",
                                      "--dataset", str(subset), "--results", str(results),
                                      "--workers", "1"])
    assert answer.exit_code == 1, answer.output  # the report is written, the status says
    assert "8 image(s) evaluated, 8 failed" in answer.output
    assert "Exit status 1: every image failed (8 of 8)" in answer.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (summary,) = report["group_summary"]
    assert (summary["n_images"], summary["n_failed"], summary["mean_recall"]) == (8, 8, 0.0)
    assert {c["status"] for c in report["cutoffs"]} == {"fails from start"}
    assert len(report["provenance"]["image_errors"]) == 8


def test_rebuilt_dataset_redoes_every_shard_and_hides_old_failures(
        mini_dataset_path: Path, tmp_path: Path, marked: set[str]) -> None:
    ids = _ids(mini_dataset_path, "generality", "generality")
    path = _copy(mini_dataset_path, tmp_path / "data.h5", ids)
    with open_dataset(path) as dataset:  # the model fails on every image of this build
        marked.update(faults.image_hash(dataset[i].image) for i in ids)
    results = tmp_path / "r.jsonl"
    first = _evaluate("stembench_faults:raise_on_marked", path, results, ids)
    assert first.complete and image_counts(first) == (len(ids), len(ids))
    # the same ids, rebuilt with a change: every shard is redone, nothing old is read
    _copy(mini_dataset_path, path, ids, scale=2.0)
    with pytest.warns(UserWarning, match=f"{first.n_shards} shard"):
        again = _evaluate("stembench_faults:raise_on_marked", path, results, ids)
    assert again.n_skipped == 0 and again.n_finished == again.n_shards == first.n_shards
    assert again.identity is not None and first.identity is not None
    assert again.identity["dataset_sha256"] != first.identity["dataset_sha256"]
    current = ResultsFile(results)
    records = current.records(again.shard_ids)
    assert len(records) == len(ids) and not any(r["failed"] for r in records)
    assert {r["dataset_manifest_sha256"] for r in records} == {again.identity["dataset_sha256"]}
    assert current.image_errors(again.shard_ids) == [] and current.image_errors() == []
    with open_dataset(path) as dataset:
        cases = collect_failure_cases([again], dataset, per_model=len(ids))
    assert len(cases) == len(ids) and all(len(c["predicted"]) > 0 for c in cases)
    # resuming now redoes nothing (and still says the old shards are ignored)
    with pytest.warns(UserWarning, match=f"{first.n_shards} shard"):
        resumed = _evaluate("stembench_faults:raise_on_marked", path, results, ids)
    assert resumed.n_finished == 0 and resumed.n_skipped == resumed.n_shards
