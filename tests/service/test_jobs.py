"""Jobs end to end: submit, duplicate detection, worker run, results, cancel, resume."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

import pytest
import service_fakes as fakes
from service_helpers import bearer
from sqlalchemy import text, update

from stembench.dataset_publish.simulate.build import DATASET_VERSION
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.scoring import score_image
from stembench.service.models import Job
from stembench.service.worker import Worker, job_folder

N_IMAGES = 102  # the mini preset
NOISE_LAST = f"{fakes.GROUP}:noise:step03:seed1"


def _submit(client, who="alice", *, expect=201, **body):
    """Submit a job; ``expect`` is the answer's status: 201 a new job, 200 a duplicate."""
    answer = client.post("/api/jobs", json={"model": "log-blob", "dataset_preset": "mini",
                                            **body}, headers=bearer(who))
    assert answer.status_code == expect, answer.text
    return answer


def _work(client) -> Worker:
    worker = Worker(client.app.state.settings, client.app.state.sessions)
    assert worker.run_once()
    return worker


def test_job_runs_and_results_are_stored(client, settings, mini_dataset_path) -> None:
    job_id = _submit(client, options={"quality": 0.9}).json()["job"]["id"]
    _work(client)
    job = client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()
    assert job["status"] == "done", job
    assert job["n_images"] == job["n_done"] == N_IMAGES
    scores = client.get(f"/api/jobs/{job_id}/scores", params={"limit": 500}).json()  # public
    assert scores["total"] == N_IMAGES
    by_id = {s["image_id"]: s for s in scores["scores"]}
    # the fake claims recall 1.0 everywhere; the service scored the coordinates itself
    with open_dataset(mini_dataset_path) as dataset:
        image = dataset[NOISE_LAST]
        truth = score_image(fakes.kept_coordinates(image.coords, 0.9, 3), image.coords,
                            pixel_size=image.pixel_size, image_shape=image.shape,
                            image_id=NOISE_LAST)
    assert by_id[NOISE_LAST]["recall"] == pytest.approx(truth.recall)
    assert by_id[NOISE_LAST]["tp"] == truth.tp and truth.recall < 0.8
    assert by_id[NOISE_LAST]["host"] == "test-host"
    cutoffs = client.get(f"/api/jobs/{job_id}/cutoffs").json()
    noise = next(c for c in cutoffs if c["axis"] == "noise" and c["method"] == "pchip"
                 and c["group"] == fakes.GROUP)
    # from the forged scores (recall 1.0 everywhere) the model would never fail ("not
    # reached"); from the service's own it fails from the start: the fake keeps fewer columns
    # at later steps, and on the noise axis the last step is the least noisy tested one
    # (recall 0.64 and 0.71 there, below the 0.90 threshold; the clean step 0 is not on the
    # curve)
    assert noise["status"] == "fails from start"
    png = client.get(f"/api/jobs/{job_id}/radar/{fakes.GROUP}.png")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    report = client.get(f"/jobs/{job_id}/report")
    assert report.status_code == 200 and "<html" in report.text.lower()
    assert (job_folder(settings, job_id) / "results.jsonl").is_file()


def test_duplicate_submission_returns_the_owners_live_job(client) -> None:
    first = _submit(client).json()["job"]["id"]
    again = _submit(client, expect=200)
    assert again.json()["duplicate"] is True and again.json()["job"]["id"] == first
    _submit(client, options={"quality": 0.5})  # other options: a new job (201)
    # another user's identical submission is their own job, which they can see and cancel
    # (it runs as them), never the first user's job
    bobs = _submit(client, who="bob").json()["job"]["id"]
    assert bobs != first
    assert client.get(f"/api/jobs/{bobs}", headers=bearer("bob")).json()["status"] == "queued"
    assert _submit(client, who="bob", expect=200).json()["job"]["id"] == bobs
    assert client.post(f"/api/jobs/{bobs}/cancel", headers=bearer("bob")).status_code == 200
    assert client.get(f"/api/jobs/{first}", headers=bearer("alice")).json()["status"] == "queued"


def test_same_weights_detected_after_run(client) -> None:
    # same model and options, another dataset version name: the fake reports the same weights
    # and dataset version, so the second finished job points at the first
    first = _submit(client).json()["job"]["id"]
    _work(client)
    second = _submit(client, dataset_version="other").json()["job"]["id"]
    session = client.app.state.sessions()
    session.execute(update(Job).where(Job.id == second)
                    .values(dataset_version=str(DATASET_VERSION)))
    session.commit()
    _work(client)
    job = client.get(f"/api/jobs/{second}", headers=bearer("alice")).json()
    assert job["status"] == "done" and job["duplicate_of"] == first
    assert client.get(f"/api/jobs/{second}/scores").json()["job_id"] == first
    board = client.get("/api/leaderboard").json()
    assert [r["job_id"] for r in board["rows"]] == [first]


def test_results_are_immutable_in_the_database(client) -> None:
    job_id = _submit(client).json()["job"]["id"]
    _work(client)
    with client.app.state.engine.connect() as connection:
        for statement in ("UPDATE results SET recall = 0.5", "DELETE FROM results",
                          "UPDATE cutoffs SET value = 1"):
            with pytest.raises(Exception, match="immutable"):
                connection.execute(text(statement))
            connection.rollback()
    assert client.get(f"/api/jobs/{job_id}/scores").json()["total"] == N_IMAGES


def test_only_owner_sees_and_cancels(client) -> None:
    job_id = _submit(client).json()["job"]["id"]
    assert client.get(f"/api/jobs/{job_id}", headers=bearer("bob")).status_code == 404
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=bearer("bob")).status_code == 404
    cancelled = client.post(f"/api/jobs/{job_id}/cancel", headers=bearer("alice"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/jobs/{job_id}/cancel", headers=bearer("alice"))
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    worker = Worker(client.app.state.settings, client.app.state.sessions)
    assert not worker.run_once()  # nothing left to run
    _submit(client)  # a cancelled job is not a duplicate: a new job (201)


def test_failed_shards_fail_the_job(client) -> None:
    job_id = _submit(client, options={"fail": True}).json()["job"]["id"]
    _work(client)
    job = client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()
    assert job["status"] == "failed" and "injected shard failure" in job["error"]
    assert client.get(f"/api/jobs/{job_id}/scores").status_code == 404


def test_dead_worker_job_resumed_from_results_file(client, settings, tmp_path) -> None:
    from stembench.client.orchestrate import evaluate
    from stembench.endpoints.requests import DatasetRef

    job_id = _submit(client).json()["job"]["id"]
    # a first worker ran the job (same shard plan as the worker's) and died after 2 shards
    results = job_folder(settings, job_id) / "results.jsonl"
    dataset = DatasetRef(name="atom-locating-benchmark", preset="mini",
                         version=str(DATASET_VERSION),
                         cache_dir=settings.dataset_cache_dir)
    listing = fakes.fake_describe(asdict(dataset), "0.1.0")
    evaluate("log-blob", results_path=results, dataset=dataset, targets=_thread_targets(),
             image_ids=[row["image_id"] for row in listing["images"]], model_options={},
             progress=False, shard_function=fakes.fake_shard, identify=None)
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[:2]) + lines[2][:50])  # the third line cut mid-write
    for marker in (tmp_path / "calls").glob("shard-*"):
        marker.unlink()
    session = client.app.state.sessions()
    session.execute(update(Job).where(Job.id == job_id).values(
        status="running", lease_owner="dead-worker",
        lease_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)))
    session.commit()
    with pytest.warns(UserWarning, match="incomplete"):
        _work(client)
    job = client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()
    assert job["status"] == "done" and job["n_done"] == N_IMAGES
    # only the shards missing from the results file ran again
    assert len(list((tmp_path / "calls").glob("shard-*"))) == len(lines) - 2
    assert client.get(f"/api/jobs/{job_id}/scores").json()["total"] == N_IMAGES


def _thread_targets():
    import concurrent.futures as cf

    from stembench.client.orchestrate import Target

    return [Target("t", cf.ThreadPoolExecutor(2), max_in_flight=4)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_failed_dataset_listing_is_asked_again(client) -> None:
    """Review item 5: the worker's listing is retried as the client's is (a lost task)."""
    fakes.LISTING_REFUSED.clear()
    job_id = _submit(client, options={"quality": 0.9}).json()["job"]["id"]
    settings = client.app.state.settings.model_copy(
        update={"describe_function": "service_fakes:describe_refused_once"})
    assert Worker(settings, client.app.state.sessions).run_once()
    job = client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()
    assert fakes.LISTING_REFUSED == [True]  # the first listing failed
    assert job["status"] == "done" and job["n_done"] == N_IMAGES, job


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_worker_sends_each_shard_with_the_time_its_result_is_wanted_by(
        client, tmp_path) -> None:
    """Issue 22: as the client does, the worker sends each shard with ``not_after_unix``
    (submission + its task deadline), so that a copy it gave up on stops on the endpoint."""
    import json
    import time

    from stembench.client.orchestrate import DEFAULT_TASK_DEADLINE_S

    _submit(client)
    before = time.time()
    _work(client)
    after = time.time()
    markers = list((tmp_path / "calls").glob("shard-*"))
    assert markers
    for marker in markers:
        not_after = json.loads(marker.read_text())
        assert before + DEFAULT_TASK_DEADLINE_S <= not_after <= after + DEFAULT_TASK_DEADLINE_S
