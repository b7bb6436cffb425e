"""The leaderboard scores like the scorer: the service re-scores stored coordinates through
the function every shard scores with (faint columns, their types and don't-care labels)."""

from __future__ import annotations

import concurrent.futures as cf
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from service_helpers import bearer, install_dataset
from service_uploads import packed, results_file, shards, upload
from sqlalchemy import select

from stembench.dataset_publish.simulate.build import DATASET_NAME, DATASET_VERSION
from stembench.dataset_publish.storage.stembench_layout import DatasetWriter, open_dataset
from stembench.scoring import DONT_CARE_TYPES
from stembench.service.models import ResultRow
from stembench.service.worker import Worker

UNSURE = sorted(DONT_CARE_TYPES)[0]


@pytest.fixture
def unsure_cache(tmp_path: Path, mini_dataset_path: Path, dataset_cache: Path) -> Path:
    """The service's cache holding the mini images with every fifth column labelled unsure
    (in place of the plain mini dataset)."""
    source = tmp_path / "unsure" / "mini.h5"
    source.parent.mkdir()
    with open_dataset(mini_dataset_path) as mini, DatasetWriter(
            source, name=DATASET_NAME, version=str(DATASET_VERSION),
            generator_params={"test": "every fifth column unsure"}) as writer:
        for image_id in mini.ids:
            image = mini[image_id]
            types = [UNSURE if i % 5 == 0 else t for i, t in enumerate(image.column_types)]
            writer.add(replace(image, column_types=tuple(types)))
    for held in dataset_cache.rglob("mini.h5*"):
        held.unlink()  # a link to the session's mini dataset
    install_dataset(dataset_cache, source)
    return source


def _uploaded(client: Any, results: Path) -> tuple[str, dict[str, dict[str, Any]]]:
    """Upload a results file, let the worker score it: the entry and its stored records."""
    answer = upload(client, packed(shards(results)))
    assert answer.status_code == 202, answer.text
    entry = answer.json()["entry"]["id"]
    assert Worker(client.app.state.settings, client.app.state.sessions).run_once()
    with client.app.state.sessions() as session:
        stored = {row.image_id: json.loads(row.record_json) for row in session.scalars(
            select(ResultRow).where(ResultRow.job_id == entry))}
    return entry, stored


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_oracle_scores_one_locally_and_on_the_leaderboard(client, tmp_path, unsure_cache,
                                                          dataset_cache) -> None:
    from stembench.client.orchestrate import Target, evaluate
    from stembench.endpoints.requests import DatasetRef

    dataset = DatasetRef(name=DATASET_NAME, preset="mini", version=str(DATASET_VERSION),
                         cache_dir=str(dataset_cache))
    with open_dataset(unsure_cache) as held:
        ids = list(held.ids)
        assert sum(len(held[i].faint_coords) > 0 for i in ids) > 10
    results = tmp_path / "oracle.jsonl"
    with cf.ThreadPoolExecutor(2) as pool:
        outcome = evaluate("stembench_oracle:Oracle", results_path=results, dataset=dataset,
                           image_ids=ids, targets=[Target("t", pool, max_in_flight=4)],
                           model_options={"dataset": str(unsure_cache)}, progress=False)
    assert outcome.complete
    local = {e["image_id"]: e["score"] for s in shards(results) for e in s["images"]}
    assert not [e for s in shards(results) for e in s["images"] if e["error"]]
    assert {score["f1"] for score in local.values()} == {1.0}
    assert sum(score["n_predicted_faint"] for score in local.values()) > 0
    assert any(UNSURE in score["faint_by_type"] for score in local.values())

    entry, stored = _uploaded(client, results)
    assert set(stored) == set(local)
    for image_id, score in local.items():  # identical, field by field
        assert {k: stored[image_id][k] for k in score} == score, image_id
    board = client.get("/api/leaderboard").json()
    for group in board["groups"]:
        row = client.get("/api/leaderboard", params={"group": group}).json()["rows"][0]
        assert (row["job_id"], row["f1"], row["n_failed"]) == (entry, 1.0, 0), group


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_uploaded_out_of_image_coordinates_fail_their_image(client, tmp_path,
                                                            dataset_cache) -> None:
    items = shards(results_file(tmp_path / "r.jsonl", dataset_cache))
    far, outside = items[0]["images"][0], items[0]["images"][1]
    far["coordinates"] = [*far["coordinates"], [1e308, 5.0]]
    outside["coordinates"] = [*outside["coordinates"], [-40.0, 10.0]]
    answer = upload(client, packed(items))
    assert answer.status_code == 202, answer.text
    entry = answer.json()["entry"]["id"]
    assert Worker(client.app.state.settings, client.app.state.sessions).run_once()
    scores = {s["image_id"]: s for s in client.get(
        f"/api/jobs/{entry}/scores", params={"limit": 500}).json()["scores"]}
    for image in (far, outside):
        stored = scores[image["image_id"]]
        assert "outside the 128x128 px image" in stored["error"], stored
        assert (stored["f1"], stored["tp"]) == (0.0, 0)
    assert client.get(f"/api/jobs/{entry}", headers=bearer("alice")).json()["n_failed"] == 2


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_tampered_service_dataset_scores_nothing(client, tmp_path, dataset_cache) -> None:
    import shutil

    import h5py

    data = packed(shards(results_file(tmp_path / "r.jsonl", dataset_cache)))
    (held,) = dataset_cache.rglob("mini.h5")
    copy = tmp_path / "copy.h5"
    shutil.copy(held, copy)
    held.unlink()  # a link to the session's mini dataset: tamper with a copy
    shutil.move(copy, held)
    with h5py.File(held, "r+") as handle:
        first = sorted(handle["coords"])[0]
        handle["coords"][first][0, 0] += 1.0  # one label moved, the manifest unchanged
    answer = upload(client, data)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert "this service's copy of dataset 'atom-locating-benchmark'" in detail
    assert f"/coords/{first}" in detail


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_leaderboard_scores_equal_the_scorer_on_a_real_models_own_output(
        client, tmp_path, dataset_cache, mini_dataset_path) -> None:
    """log-blob's results of the mini preset, uploaded: every stored score equals, field by
    field and to the last digit, the scorer's on the model's own output (not a rounded copy)."""
    from stembench.client.orchestrate import Target, evaluate
    from stembench.endpoints.models.registry import load_model
    from stembench.endpoints.requests import DatasetRef
    from stembench.scoring import dont_care_mask, score_image

    dataset = DatasetRef(name=DATASET_NAME, preset="mini", version=str(DATASET_VERSION),
                         cache_dir=str(dataset_cache))
    results = tmp_path / "log-blob.jsonl"
    with cf.ThreadPoolExecutor(2) as pool:
        outcome = evaluate("log-blob", results_path=results, dataset=dataset,
                           targets=[Target("t", pool, max_in_flight=4)], progress=False)
    assert outcome.complete
    _, stored = _uploaded(client, results)
    model = load_model("log-blob")
    with open_dataset(mini_dataset_path) as held:
        assert set(stored) == set(held.ids)
        for image_id in held.ids:
            image = held[image_id]
            expected = score_image(
                model.locate(image.image, image.pixel_size), image.coords,
                pixel_size=image.pixel_size, image_shape=image.shape, image_id=image_id,
                column_types=image.column_types or None, faint=image.faint_coords,
                faint_types=image.faint_types or None,
                dont_care=dont_care_mask(image.column_types)).to_dict()
            assert {k: stored[image_id][k] for k in expected} == expected, image_id
    assert sum(record["tp"] for record in stored.values()) > 0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_results_scored_with_another_radius_are_refused_in_one_line(client, tmp_path,
                                                                    dataset_cache) -> None:
    """Leaderboard entries compare: results evaluated with other scoring options than the
    benchmark's are refused (by ``submit`` before it uploads, and by the service), never
    re-scored at the defaults behind the user's back."""
    from stembench.client.orchestrate import Target, evaluate
    from stembench.client.submit import pack_results
    from stembench.endpoints.requests import DatasetRef, ScoringOptions
    from stembench.errors import InputError

    dataset = DatasetRef(name=DATASET_NAME, preset="mini", version=str(DATASET_VERSION),
                         cache_dir=str(dataset_cache))
    results = tmp_path / "wide.jsonl"
    with cf.ThreadPoolExecutor(2) as pool:
        outcome = evaluate("log-blob", results_path=results, dataset=dataset,
                           targets=[Target("t", pool, max_in_flight=4)], progress=False,
                           scoring=ScoringOptions(radius_angstrom=0.8))
    assert outcome.complete
    line = (r"^image '[^']+' was scored with radius_angstrom 0\.8, not the benchmark's 0\.5: "
            r"a leaderboard scores every entry with the benchmark's scoring options, so that "
            r"entries compare; evaluate again with the default scoring options$")
    with pytest.raises(InputError, match=line):
        pack_results(results)
    answer = upload(client, packed(shards(results)))
    assert answer.status_code == 422, answer.text
    assert re.fullmatch(line[1:-1], answer.json()["detail"])
