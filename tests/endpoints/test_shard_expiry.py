"""A copy of a shard past its sender's ``not_after_unix`` stops where it runs (issue 22).

The endpoint's clock is replaced by one the test moves (``expiry._now``): the counted model
(tests/support/stembench_slow_model.py) records each call, and the clock reads "past the
time" as soon as a call was recorded, so the shard expires between its first and second
image on any machine, with no sleep.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from stembench_slow_model import calls, gate_folder

from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.endpoints import expiry, shard
from stembench.endpoints.requests import DatasetRef, ModelSpec, ShardRequest
from stembench.endpoints.shard import evaluate_shard
from stembench.schemas import check_message

COUNTED = "stembench_slow_model:counted"
NOT_AFTER = 1_900_000_000.0  # any fixed time: the clock below is the test's


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STEMBENCH_CACHE", str(tmp_path))
    gate_folder(tmp_path).mkdir()
    return tmp_path


@pytest.fixture(scope="module")
def three_ids(mini_dataset_path: Path) -> list[str]:
    with open_dataset(mini_dataset_path) as dataset:
        return [i for i in dataset.ids if dataset.metadata(i)["step"] == 0][:3]


def _request(path: Path, ids: list[str], not_after: float | None) -> dict:
    return ShardRequest(dataset=DatasetRef(source="path", path=str(path)),
                        model=ModelSpec(COUNTED), image_ids=tuple(ids),
                        not_after_unix=not_after).to_dict()


def test_a_copy_past_its_time_at_start_loads_no_model_and_says_expired(
        gate: Path, mini_dataset_path: Path, three_ids: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stembench.endpoints.models import registry

    loaded: list[str] = []
    real_load = registry.load_model
    monkeypatch.setattr(registry, "load_model",
                        lambda spec, **o: loaded.append(spec) or real_load(spec, **o))
    shard._load_model.cache_clear()  # a model loaded by an earlier test would not be loaded
    monkeypatch.setattr(expiry, "_now", lambda: NOT_AFTER + expiry.CLOCK_SKEW_MARGIN_S + 1)

    result = evaluate_shard(_request(mini_dataset_path, three_ids, NOT_AFTER))

    assert loaded == [] and calls(gate) == []
    assert result["ok"] is False and result["expired"] is True and result["images"] == []
    assert result["error"].startswith("expired: its sender stopped waiting for this copy")
    assert "before its first model call" in result["error"]
    check_message("shard-result", result, what="shard result")
    json.dumps(result)


def test_a_copy_that_expires_between_images_stops_and_keeps_what_it_finished(
        gate: Path, mini_dataset_path: Path, three_ids: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # within the margin until the first model call, past it from then on
    monkeypatch.setattr(expiry, "_now", lambda: NOT_AFTER + (
        expiry.CLOCK_SKEW_MARGIN_S + 1 if calls(gate) else expiry.CLOCK_SKEW_MARGIN_S))

    result = evaluate_shard(_request(mini_dataset_path, three_ids, NOT_AFTER))

    assert len(calls(gate)) == 1
    assert result["ok"] is False and result["expired"] is True
    (finished,) = result["images"]
    assert finished["image_id"] == three_ids[0] and finished["score"]["recall"] > 0
    assert finished["coordinates"]
    assert "after 1 of 3 images" in result["error"]
    assert result["model"]["name"] == COUNTED and result["identity"]
    check_message("shard-result", result, what="shard result")


def test_a_request_without_the_time_or_before_it_runs_every_image(
        gate: Path, mini_dataset_path: Path, three_ids: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An older client sends no ``not_after_unix``: the shard runs as before; so does one
    whose time has not come (the real clock)."""
    old = _request(mini_dataset_path, three_ids, None)
    assert "not_after_unix" not in old
    assert evaluate_shard(old)["ok"] and len(calls(gate)) == 3
    fresh = evaluate_shard(_request(mini_dataset_path, three_ids, time.time() + 3600))
    assert fresh["ok"] and "expired" not in fresh and len(calls(gate)) == 6
