"""A shard that failed as a whole is a result on the service too: its images count as
failed (scored as finding nothing) in the entry, the leaderboard and the report, exactly as
the local report counts them; neither the upload nor the job is refused for it.

The shard fails as it does on a Globus Compute endpoint: log-blob (the real model, through
the real :func:`~stembench.endpoints.shard.evaluate_shard`) is stopped by the endpoint's
per-task limit (parsl's ``AppTimeout``) on one image, every attempt.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from service_helpers import bearer, make_settings
from service_uploads import packed, shards, upload

from stembench.client.results_file import ResultsFile
from stembench.dataset_publish.simulate.build import DATASET_NAME, DATASET_VERSION
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.service.worker import Worker, job_folder

FAILING = "SrTiO3-simulated:noise:step02:seed0"  # an image of the mini preset


@pytest.fixture
def settings(tmp_path: Path, database_url: str, dataset_cache: Path) -> Any:
    """A service that evaluates with the real shard function (thread workers)."""
    return make_settings(tmp_path, database_url,
                         shard_function="stembench.endpoints.shard:evaluate_shard",
                         describe_function="stembench.endpoints.shard:describe_dataset",
                         options_check="stembench.endpoints.models.options:check_options")


@pytest.fixture
def task_limit_on_failing(mini_dataset_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """log-blob meets the endpoint's per-task limit on image :data:`FAILING`, every time."""
    from parsl.app.errors import AppTimeout

    from stembench.endpoints.models.classical import LoGDetector

    with open_dataset(mini_dataset_path) as dataset:
        stuck = np.array(dataset[FAILING].image)
    real = LoGDetector.locate

    def locate(self: Any, image: Any, pixel_size: float) -> Any:
        if np.array_equal(image, stuck):
            raise AppTimeout("task timed out")
        return real(self, image, pixel_size)

    monkeypatch.setattr(LoGDetector, "locate", locate)
    yield


def _failed_shard_ids(items: list[dict[str, Any]]) -> set[str]:
    (shard,) = [s for s in items if s.get("shard_failed")]
    assert FAILING in {e["image_id"] for e in shard["images"]}
    return {e["image_id"] for e in shard["images"]}


def _stored(client: Any, entry: str) -> dict[str, dict[str, Any]]:
    answer = client.get(f"/api/jobs/{entry}/scores", params={"limit": 500}).json()
    return {s["image_id"]: s for s in answer["scores"]}


def _report_failed(settings: Any, entry: str) -> int:
    report = json.loads((job_folder(settings, entry) / "report" / "report.json").read_text())
    (model,) = report["models"].values()
    return int(model["n_failed"])


def _board_failed(client: Any, entry: str) -> int:
    row = client.get("/api/leaderboard", params={"group": FAILING.split(":")[0]}).json()
    (mine,) = [r for r in row["rows"] if r["job_id"] == entry]
    return int(mine["n_failed"])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_upload_with_a_failed_shard_counts_its_images_as_failed(
        client, tmp_path: Path, dataset_cache: Path, task_limit_on_failing: None) -> None:
    from stembench.client.orchestrate import RetryPolicy, Target, evaluate
    from stembench.endpoints.requests import DatasetRef

    path = tmp_path / "r.jsonl"
    dataset = DatasetRef(name=DATASET_NAME, preset="mini", version=str(DATASET_VERSION),
                         cache_dir=str(dataset_cache))
    with cf.ThreadPoolExecutor(2) as pool:  # as a user evaluates (model identity included)
        evaluate("log-blob", results_path=path, dataset=dataset,
                 targets=[Target("t", pool, max_in_flight=4)], progress=False,
                 retry=RetryPolicy(max_attempts=1))
    items = shards(path)
    failed = _failed_shard_ids(items)
    local = {r["image_id"]: r for r in ResultsFile(path).records()}

    answer = upload(client, packed(items))
    assert answer.status_code == 202, answer.text
    entry = answer.json()["entry"]["id"]
    assert Worker(client.app.state.settings, client.app.state.sessions).run_once()
    job = client.get(f"/api/jobs/{entry}", headers=bearer("alice")).json()
    assert job["status"] == "done", job
    stored = _stored(client, entry)
    assert set(stored) == set(local)
    assert {i for i, s in stored.items() if s["error"]} == failed == {
        i for i, r in local.items() if r["failed"]}
    for image_id in failed:  # scored as finding nothing, here as locally
        assert "its shard failed as a whole" in stored[image_id]["error"]
        assert stored[image_id]["f1"] == local[image_id]["f1"] == 0.0
        assert stored[image_id]["fn"] == local[image_id]["fn"] > 0
    assert job["n_failed"] == len(failed)
    assert _report_failed(client.app.state.settings, entry) == len(failed)
    assert _board_failed(client, entry) == sum(1 for i in failed if i.startswith("SrTiO3"))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_job_with_a_failed_shard_is_done_with_its_images_failed(
        client, task_limit_on_failing: None) -> None:
    answer = client.post("/api/jobs", json={"model": "log-blob", "dataset_preset": "mini"},
                         headers=bearer("alice"))
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["job"]["id"]
    assert Worker(client.app.state.settings, client.app.state.sessions).run_once()
    job = client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()
    assert job["status"] == "done", job
    results = job_folder(client.app.state.settings, job_id) / "results.jsonl"
    failed = _failed_shard_ids(shards(results))
    stored = _stored(client, job_id)
    assert {i for i, s in stored.items() if s["error"]} == failed
    assert job["n_failed"] == len(failed) and job["n_done"] == len(stored)
    assert _report_failed(client.app.state.settings, job_id) == len(failed)
    assert _board_failed(client, job_id) == sum(1 for i in failed if i.startswith("SrTiO3"))
