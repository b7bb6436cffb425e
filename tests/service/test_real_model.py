"""A job with a real model on the real mini dataset, through the service's worker."""

from __future__ import annotations

import os
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


_PUBLISHED = Path(os.environ.get("STEMBENCH_TEST_PUBLISHED_WEIGHTS",
                                 Path(__file__).resolve().parents[2].parent / "shared"
                                 / "published-weights"))


@pytest.mark.skipif(not (_PUBLISHED / "cubic-best_weights.pt").is_file(),
                    reason=f"no published file in {_PUBLISHED}")
def test_fetched_published_model_is_on_the_leaderboard_as_published_weights(
        real_settings, globus_auth, tmp_path: Path,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A job with the fetched published AtomNet, through the worker: its leaderboard row (API
    and page) says "published weights", not "trained here"."""
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from stembench.cli import app as cli
    from stembench.endpoints.models.published import get_published
    from stembench.service.app import create_app

    monkeypatch.setenv("STEMBENCH_CACHE", str(tmp_path / "weights-cache"))
    fetched = CliRunner().invoke(cli, ["models", "fetch", "atomnet-cubic-published",
                                       "--mirror", str(_PUBLISHED)])
    assert fetched.exit_code == 0, fetched.output
    app = create_app(real_settings)
    with TestClient(app) as client:
        answer = client.post("/api/jobs", json={"model": "atomnet-cubic-published",
                                                "dataset_preset": "mini"},
                             headers=bearer("alice"))
        assert answer.status_code == 201, answer.text
        assert Worker(app.state.settings, app.state.sessions).run_once()
        rows = client.get("/api/leaderboard", params={"group": "SrTiO3-simulated"}).json()["rows"]
        page = client.get("/").text
    app.state.engine.dispose()
    assert [(r["model"], r["weights_origin"]) for r in rows] == [
        ("atomnet-cubic-published", "published weights")]
    assert rows[0]["weights_sha256"] == get_published("atomnet-cubic-published").sha256
    assert '<span class="origin">published weights</span>' in page
