"""The shard function on a real (mini) dataset with real models and the real scorer."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from stembench._version import __version__
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.endpoints.requests import DatasetRef, ModelSpec, ShardRequest
from stembench.endpoints.shard import describe_dataset, evaluate_shard


def _request(path: Path, ids: list[str], spec: str = "log-blob", **extra: object) -> dict:
    return ShardRequest(dataset=DatasetRef(source="path", path=str(path)),
                        model=ModelSpec(spec), image_ids=tuple(ids), **extra).to_dict()


@pytest.fixture(scope="module")
def reference_ids(mini_dataset_path: Path) -> list[str]:
    with open_dataset(mini_dataset_path) as dataset:
        return [i for i in dataset.ids if dataset.metadata(i)["step"] == 0][:3]


def test_scores_and_provenance(mini_dataset_path: Path, reference_ids: list[str]) -> None:
    result = evaluate_shard(_request(mini_dataset_path, reference_ids))
    assert result["ok"] and not result["coordinates_dropped"]
    assert [e["image_id"] for e in result["images"]] == reference_ids
    with open_dataset(mini_dataset_path) as dataset:
        for entry in result["images"]:
            assert entry["error"] is None
            # a clean reference image: the LoG baseline finds every column
            assert entry["score"]["recall"] == 1.0 and entry["score"]["precision"] == 1.0
            assert entry["conditions"]["series"] == dataset.metadata(entry["image_id"])["series"]
            assert len(entry["coordinates"]) == entry["score"]["n_predicted_total"]
        assert result["dataset"]["name"] == dataset.name
    assert result["model"]["name"] == "log-blob"
    assert result["runtime"]["stembench_version"] == __version__
    json.dumps(result)  # JSON-safe


def test_bad_model_output_reported_per_image(mini_dataset_path: Path,
                                             reference_ids: list[str]) -> None:
    for spec, message in [("stembench_faults:nan_model", "NaN or infinite"),
                          ("stembench_faults:crashing_model", "model crashed")]:
        result = evaluate_shard(_request(mini_dataset_path, reference_ids[:2], spec))
        assert result["ok"]
        assert all(message in e["error"] for e in result["images"]), result["images"]
        for entry in result["images"]:  # scored as finding nothing, error kept beside it
            score = entry["score"]
            assert (score["recall"], score["tp"], score["n_predicted"]) == (0.0, 0, 0)
            assert score["fn"] == score["n_truth"] > 0 and entry["coordinates"] == []


def test_scorer_error_stays_with_its_image(mini_dataset_path: Path, reference_ids: list[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import stembench.scoring

    real = stembench.scoring.score_image

    def failing_on_first(predicted, truth, **options):  # type: ignore[no-untyped-def]
        if options["image_id"] == reference_ids[0] and len(predicted):
            raise ValueError("injected scorer failure")
        return real(predicted, truth, **options)

    monkeypatch.setattr(stembench.scoring, "score_image", failing_on_first)
    result = evaluate_shard(_request(mini_dataset_path, reference_ids[:2]))
    assert result["ok"]
    first, second = result["images"]
    assert "scoring failed: ValueError: injected scorer failure" in first["error"]
    assert first["score"]["recall"] == 0.0 and first["coordinates"] == []
    assert second["error"] is None and second["score"]["recall"] == 1.0


def test_identity_is_reported_and_checked(mini_dataset_path: Path,
                                          reference_ids: list[str]) -> None:
    from stembench.endpoints.shard import describe_identity

    ref = DatasetRef(source="path", path=str(mini_dataset_path))
    spec = ModelSpec("stembench_faults:crashing_model")
    identity = describe_identity(ref.__dict__, spec.__dict__, __version__)
    source = Path(sys.modules["stembench_faults"].__file__ or "")
    assert identity["model"]["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    with open_dataset(mini_dataset_path) as dataset:
        assert identity["dataset_sha256"] == dataset.content_hash
    planned = _request(mini_dataset_path, reference_ids[:1], spec.spec, identity=identity)
    result = evaluate_shard(planned)
    assert result["ok"] and result["identity"] == identity
    other = {**identity, "dataset_sha256": "0" * 64}
    refused = evaluate_shard(_request(mini_dataset_path, reference_ids[:1], spec.spec,
                                      identity=other))
    assert not refused["ok"] and "not the one this shard was planned for" in refused["error"]
    assert refused["images"] == []


def test_unknown_image_reported_and_others_scored(mini_dataset_path: Path,
                                                  reference_ids: list[str]) -> None:
    result = evaluate_shard(_request(mini_dataset_path, ["no-such-image", reference_ids[0]]))
    assert "cannot read image" in result["images"][0]["error"]
    assert result["images"][1]["score"]["recall"] == 1.0


def test_whole_shard_failures(mini_dataset_path: Path, reference_ids: list[str],
                              tmp_path: Path) -> None:
    old = _request(mini_dataset_path, reference_ids, client_version="9.0.0")
    assert not evaluate_shard(old)["ok"]
    assert "matching version" in evaluate_shard(old)["error"]
    missing = _request(tmp_path / "absent.h5", reference_ids)
    outcome = evaluate_shard(missing)
    assert not outcome["ok"] and "absent.h5" in outcome["error"]


def test_result_kept_under_size_limit(mini_dataset_path: Path,
                                      reference_ids: list[str]) -> None:
    full = evaluate_shard(_request(mini_dataset_path, reference_ids))
    limit = len(json.dumps(full)) - 100
    small = evaluate_shard(_request(mini_dataset_path, reference_ids, max_result_bytes=limit))
    assert small["coordinates_dropped"]
    assert len(json.dumps(small)) <= limit
    assert [e["score"] for e in small["images"]] == [e["score"] for e in full["images"]]


def test_describe_dataset_lists_conditions(mini_dataset_path: Path) -> None:
    listing = describe_dataset(DatasetRef(source="path", path=str(mini_dataset_path)).__dict__,
                               __version__)
    with open_dataset(mini_dataset_path) as dataset:
        assert [row["image_id"] for row in listing["images"]] == dataset.ids
    assert {"group", "series", "axis_value", "seed"} <= set(listing["images"][0])


@pytest.fixture()
def batching_faults(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "support"))
    import stembench_faults

    stembench_faults.BATCHES.clear()
    stembench_faults.MARKED.clear()
    yield stembench_faults
    stembench_faults.BATCHES.clear()
    stembench_faults.MARKED.clear()


def _five_same_shape(path: Path) -> list[str]:
    with open_dataset(path) as dataset:
        ids = [i for i in dataset.ids if dataset[i].shape == dataset[dataset.ids[0]].shape]
    return ids[:5]


def test_images_run_in_batches_of_the_models_size(mini_dataset_path: Path,
                                                  batching_faults) -> None:  # type: ignore[no-untyped-def]
    ids = _five_same_shape(mini_dataset_path)
    batched = evaluate_shard(_request(mini_dataset_path, ids, "stembench_faults:BatchingLogBlob"))
    assert batching_faults.BATCHES == [3, 2]
    single = evaluate_shard(_request(mini_dataset_path, ids))  # log-blob, image by image
    for ours, alone in zip(batched["images"], single["images"], strict=True):
        assert ours["error"] is None and ours["image_id"] == alone["image_id"]
        assert ours["score"] == alone["score"] and ours["coordinates"] == alone["coordinates"]
        assert ours["seconds"] > 0


def test_a_failing_batch_is_rerun_image_by_image(mini_dataset_path: Path,
                                                 batching_faults) -> None:  # type: ignore[no-untyped-def]
    ids = _five_same_shape(mini_dataset_path)
    with open_dataset(mini_dataset_path) as dataset:
        batching_faults.MARKED.add(batching_faults.image_hash(dataset[ids[1]].image))
    result = evaluate_shard(_request(mini_dataset_path, ids, "stembench_faults:BatchingLogBlob"))
    # the first batch failed as a whole; its three images then ran alone; the second batch ran
    assert batching_faults.BATCHES == [3, 2]
    errors = [entry["error"] for entry in result["images"]]
    assert errors[0] is None and errors[2:] == [None, None, None]
    assert "injected failure on a marked image" in errors[1] and ids[1] in errors[1]
    assert result["images"][1]["score"]["recall"] == 0.0
    assert all(result["images"][i]["score"]["recall"] == 1.0 for i in (0, 2, 3, 4))


def test_a_bad_result_inside_a_batch_fails_only_its_image(mini_dataset_path: Path,
                                                          batching_faults) -> None:  # type: ignore[no-untyped-def]
    ids = _five_same_shape(mini_dataset_path)
    with open_dataset(mini_dataset_path) as dataset:
        batching_faults.MARKED.add(batching_faults.image_hash(dataset[ids[3]].image))
    spec = ModelSpec("stembench_faults:BatchingLogBlob", options={"outside": True})
    request = ShardRequest(dataset=DatasetRef(source="path", path=str(mini_dataset_path)),
                           model=spec, image_ids=tuple(ids)).to_dict()
    result = evaluate_shard(request)
    assert batching_faults.BATCHES == [3, 2]
    errors = [entry["error"] for entry in result["images"]]
    assert errors[:3] == [None, None, None] and errors[4] is None
    assert "outside the" in errors[3] and ids[3] in errors[3]
    assert result["images"][3]["score"]["n_predicted"] == 0


@pytest.mark.parametrize("scorer", [False, True], ids=["in-the-model", "in-the-scorer"])
def test_the_endpoints_task_limit_ends_the_shard(mini_dataset_path: Path, reference_ids: list[str],
                                                 batching_faults, scorer: bool,  # type: ignore[no-untyped-def]
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """GC_TASK_TIMEOUT (parsl's AppTimeout, raised in the task's thread) ends the task.

    The endpoint wraps the task in ``parsl.app.python.timeout`` (engines/helper.py); that is
    what runs here, around a model (or a scorer) stuck on the second image.
    """
    from parsl.app.errors import AppTimeout
    from parsl.app.python import timeout

    import stembench.scoring
    from stembench.endpoints.shard import TaskTimeLimitError

    with open_dataset(mini_dataset_path) as dataset:
        stuck = dataset[reference_ids[1]].image
    if scorer:
        real, spun = stembench.scoring.score_image, []

        def spinning_on_second(predicted, truth, **options):  # type: ignore[no-untyped-def]
            if options["image_id"] == reference_ids[1] and not spun:  # once, till stopped
                spun.append(True)
                while True:
                    pass
            return real(predicted, truth, **options)

        monkeypatch.setattr(stembench.scoring, "score_image", spinning_on_second)
    else:
        batching_faults.MARKED.add(batching_faults.image_hash(stuck))
    monkeypatch.setenv("GC_TASK_TIMEOUT", "2")
    spec = "log-blob" if scorer else "stembench_faults:spin_on_marked"
    with pytest.raises(TaskTimeLimitError) as raised:
        timeout(evaluate_shard, 2.0)(_request(mini_dataset_path, reference_ids, spec))
    assert isinstance(raised.value.__cause__, AppTimeout)
    assert (f"GC_TASK_TIMEOUT=2 s) stopped the shard after 1 of 3 images (finished: "
            f"{reference_ids[0]})") in str(raised.value)
