"""A job with a real model on the real mini dataset, through the service's worker."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from service_helpers import bearer, make_settings

from stembench.dataset_publish.simulate.build import DATASET_VERSION
from stembench.dataset_publish.storage.cache import cache_path
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.service.worker import Worker


@pytest.fixture
def real_settings(tmp_path: Path, mini_dataset_path: Path):  # type: ignore[no-untyped-def]
    cache = tmp_path / "datasets"
    target = cache_path("atom-locating-benchmark", preset="mini", version=str(DATASET_VERSION),
                        cache_dir=cache)
    target.parent.mkdir(parents=True)
    shutil.copy(mini_dataset_path, target)
    shutil.copy(mini_dataset_path.with_name(mini_dataset_path.name + ".manifest.json"),
                target.with_name(target.name + ".manifest.json"))
    return make_settings(tmp_path, f"sqlite:///{tmp_path / 'service.db'}",
                         dataset_cache_dir=str(cache),
                         shard_function="stembench.endpoints.shard:evaluate_shard",
                         describe_function="stembench.endpoints.shard:describe_dataset")


def test_log_blob_job_scores_every_image(real_settings, globus_auth,  # type: ignore[no-untyped-def]
                                         mini_dataset_path: Path) -> None:
    from fastapi.testclient import TestClient

    from stembench.service.app import create_app

    app = create_app(real_settings)
    with TestClient(app) as client:
        answer = client.post("/api/jobs", json={"model": "log-blob", "dataset_preset": "mini"},
                             headers=bearer("alice"))
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["job"]["id"]
        assert Worker(app.state.settings, app.state.sessions).run_once()
        job = client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()
        scores = client.get(f"/api/jobs/{job_id}/scores", params={"limit": 1000}).json()
    app.state.engine.dispose()
    assert job["status"] == "done", job
    with open_dataset(mini_dataset_path) as dataset:
        assert scores["total"] == len(dataset.ids)
        clean = {i for i in dataset.ids if dataset.metadata(i)["step"] == 0
                 and dataset.metadata(i)["series"] != "generality"}
    by_id = {s["image_id"]: s for s in scores["scores"]}
    assert all(by_id[i]["recall"] == 1.0 for i in clean)
    assert {s["model"] for s in scores["scores"]} == {"log-blob"}
