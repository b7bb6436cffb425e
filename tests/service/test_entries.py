"""Uploaded results: re-scored by the service from coordinates, checked against the exact
dataset version, covering every image, idempotent, size-limited, with a valid model card."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import service_fakes as fakes
from service_helpers import bearer, make_settings
from service_uploads import CARD, packed, results_file, shards, upload

from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.scoring import score_image
from stembench.service.figures import entry_cutoffs
from stembench.service.worker import Worker


def _true_scores(mini: object, quality: float, fail_from: int | None) -> dict[str, float]:
    """F1 of every image as the scorer gives it; a failed image found nothing (F1 0)."""
    found = {}
    with open_dataset(mini) as dataset:  # type: ignore[arg-type]
        for image_id in dataset.ids:
            image = dataset[image_id]
            step = int(image.metadata["step"])
            kept = (np.zeros((0, 2)) if fail_from is not None and step >= fail_from
                    else fakes.kept_coordinates(image.coords, quality, step))
            kept = np.round(kept, 3)
            found[image_id] = score_image(kept, image.coords, pixel_size=image.pixel_size,
                                          image_shape=image.shape, image_id=image_id).f1
    return found


def test_forged_scores_land_with_true_scores(client, tmp_path, dataset_cache,
                                             mini_dataset_path) -> None:
    path = results_file(tmp_path / "r.jsonl", dataset_cache, quality=0.8, fail_from_step=3)
    forged = shards(path)
    for shard in forged:
        for entry in shard["images"]:
            entry["score"] = fakes.forged_score(entry["image_id"])
    answer = upload(client, packed(forged))
    assert answer.status_code == 202, answer.text
    entry_id = answer.json()["entry"]["id"]
    assert answer.json()["url"] == f"/entries/{entry_id}"
    assert Worker(client.app.state.settings, client.app.state.sessions).run_once()
    job = client.get(f"/api/jobs/{entry_id}", headers=bearer("alice")).json()
    assert job["status"] == "done" and job["source"] == "upload", job
    truth = _true_scores(mini_dataset_path, 0.8, 3)
    stored = {s["image_id"]: s for s in
              client.get(f"/api/jobs/{entry_id}/scores", params={"limit": 500}).json()["scores"]}
    assert set(stored) == set(truth)
    assert all(stored[i]["f1"] == pytest.approx(truth[i]) for i in truth)
    assert job["n_failed"] == sum(1 for s in stored.values() if s["error"]) > 0
    board = client.get("/api/leaderboard", params={"group": fakes.GROUP}).json()
    row = board["rows"][0]
    in_group = [i for i in truth if i.startswith(fakes.GROUP + ":")]
    assert row["f1"] == pytest.approx(np.mean([truth[i] for i in in_group]))
    assert row["f1"] < 0.9 and row["n_images"] == len(in_group)
    assert row["n_failed"] == sum(1 for i in in_group if stored[i]["error"])
    assert row["card"] == CARD and row["training_overlap"] == "no"
    assert row["weights_origin"] == "other"  # neither a published file nor trained here
    assert row["provenance"]["source"] == "upload"
    assert row["provenance"]["dataset_sha256"] == stored[in_group[0]]["dataset_manifest_sha256"]
    assert client.get("/api/leaderboard", params={"group": fakes.GROUP, "independent": True}
                      ).json()["rows"][0]["job_id"] == entry_id
    # the entry is named by its card everywhere: scores, downloads and the radar's labels
    assert {s["model"] for s in stored.values()} == {CARD["name"]}
    assert f",{CARD['name']}," in client.get(f"/api/jobs/{entry_id}/scores.csv").text
    with client.app.state.sessions() as session:
        labels = {c.model for c in entry_cutoffs(session, fakes.GROUP, [entry_id])}
    assert labels == {CARD["name"]}


def test_other_dataset_version_refused_naming_both_hashes(client, tmp_path,
                                                          dataset_cache) -> None:
    items = shards(results_file(tmp_path / "r.jsonl", dataset_cache))
    held = items[0]["dataset"]["manifest_sha256"]
    for shard in items:
        shard["dataset"]["manifest_sha256"] = "ab" * 32
    answer = upload(client, packed(items))
    assert answer.status_code == 422
    assert "ab" * 32 in answer.json()["detail"] and held in answer.json()["detail"]


def test_missing_images_are_named(client, tmp_path, dataset_cache) -> None:
    items = shards(results_file(tmp_path / "r.jsonl", dataset_cache))
    dropped = sorted(e["image_id"] for e in items[-1]["images"])
    answer = upload(client, packed(items[:-1]))
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert f"missing {len(dropped)}" in detail and dropped[0] in detail


def test_scores_without_coordinates_refused(client, tmp_path, dataset_cache) -> None:
    items = shards(results_file(tmp_path / "r.jsonl", dataset_cache))
    for entry in items[0]["images"]:
        entry.pop("coordinates")
    answer = upload(client, packed(items))
    assert answer.status_code == 422 and "no coordinates" in answer.json()["detail"]


def test_retried_upload_makes_one_entry(client, tmp_path, dataset_cache) -> None:
    data = packed(shards(results_file(tmp_path / "r.jsonl", dataset_cache)))
    first, again = upload(client, data), upload(client, data)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["duplicate"] and again.json()["entry"]["id"] == first.json()["entry"]["id"]
    jobs = client.get("/api/jobs", headers=bearer("alice")).json()
    assert len(jobs) == 1


def test_bad_card_and_gzip_refused_with_reasons(client, tmp_path, dataset_cache) -> None:
    data = packed(shards(results_file(tmp_path / "r.jsonl", dataset_cache)))
    card = {**CARD, "colour": "blue",
            "training_data": {"description": "x", "overlaps_benchmark": "maybe"}}
    answer = upload(client, data, card=card)
    assert answer.status_code == 422
    assert "unknown key(s) 'colour'" in answer.json()["detail"]
    assert "'maybe' is not one of ['yes', 'no', 'unknown']" in answer.json()["detail"]
    answer = upload(client, b"not gzip at all")
    assert answer.status_code == 422 and "not a gzip" in answer.json()["detail"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_size_limits_are_stated(tmp_path, database_url, dataset_cache, globus_auth) -> None:
    from fastapi.testclient import TestClient

    from stembench.service.app import create_app

    app = create_app(make_settings(tmp_path, database_url, max_upload_bytes=20_000,
                                   upload_part_bytes=16_384, max_payload_bytes=4096))
    data = packed(shards(results_file(tmp_path / "r.jsonl", dataset_cache)))
    assert len(data) > 20_000
    with TestClient(app) as client:
        big = client.put("/api/uploads/" + "0" * 64 + "/parts/0", content=b"x" * 20_000,
                         headers={**bearer("alice"), "Content-Type": "application/octet-stream"})
        assert big.status_code == 413 and "limit 16384" in big.json()["detail"]
        assert "in parts" in big.json()["detail"]
        digest = hashlib.sha256(data).hexdigest()
        first = client.put(f"/api/uploads/{digest}/parts/0", content=data[:16_000],
                           headers={**bearer("alice"), "Content-Type": "application/octet-stream"})
        assert first.status_code == 200
        answer = client.put(f"/api/uploads/{digest}/parts/1", content=data[16_000:32_000],
                            headers={**bearer("alice"), "Content-Type": "application/octet-stream"})
        assert answer.status_code == 413  # refused as the parts arrive, not at completion
        assert f"would hold {min(len(data), 32_000)} bytes" in answer.json()["detail"]
        assert "limit of 20000 bytes" in answer.json()["detail"]
    app.state.engine.dispose()
