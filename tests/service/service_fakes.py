"""Fast stand-in for a model's shard evaluation, on the real ``mini`` dataset.

The fake "model" returns the true column positions of each image, keeping a fraction that
falls with the step at a rate set by its ``quality`` option (so models differ in scores and
cutoffs), and claims a perfect score for every image: the service must ignore that claim
and score the coordinates itself. ``fail_from_step`` makes it fail on images at or past a
step. Each evaluated shard leaves a marker file in the dataset cache folder, so tests can
count which shards ran; it holds the request's ``not_after_unix``. ``block`` makes every
shard wait until the test sets :data:`RELEASE` (:data:`BLOCKED` is set once one waits).
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from stembench.dataset_publish.loading import load
from stembench.endpoints.requests import ShardRequest
from stembench.endpoints.shard import describe_dataset
from stembench.endpoints.shard_scoring import CONDITION_FIELDS

GROUP = "SrTiO3-simulated"
BLOCKED, RELEASE = threading.Event(), threading.Event()
#: Longest a blocked shard waits for :data:`RELEASE` (a guard against a test that forgets).
BLOCK_LIMIT_S = 300.0
FORGED = {"recall": 1.0, "precision": 1.0, "f1": 1.0, "rms_angstrom": 0.0, "tp": 999,
          "fp": 0, "fn": 0}


def forged_score(image_id: str) -> dict[str, Any]:
    """A score record of the right shape (its JSON Schema's) that claims :data:`FORGED`."""
    from stembench.scoring import score_image

    empty = score_image([], [], pixel_size=0.1, image_shape=(64, 64), image_id=image_id)
    return {**empty.to_dict(), **FORGED}


#: The fake model's options and their types.
OPTIONS = {"quality": (int, float), "fail": (bool,), "fail_from_step": (int,), "block": (bool,)}


def fake_options(model: str, options: dict[str, Any], *, allow_files: bool) -> None:
    """The fake model's option check (the service's ``options_check`` in these tests)."""
    from stembench.errors import ModelError

    for key, value in options.items():
        if key not in OPTIONS or not isinstance(value, OPTIONS[key]):
            raise ModelError(f"model {model!r} has no option {key!r} of {value!r}")


def fake_describe(dataset: dict[str, Any], client_version: str) -> dict[str, Any]:
    """The real listing of the (real) mini dataset."""
    return describe_dataset(dataset, client_version)


def expected_recall(quality: float, step: int) -> float:
    """Fraction of the true columns a model of ``quality`` returns at ``step``."""
    return max(0.0, 1.0 - (1.0 - quality) * step)


def kept_coordinates(truth: np.ndarray, quality: float, step: int) -> np.ndarray:
    """The true columns the fake model returns: a fixed random subset of the right size."""
    order = np.random.default_rng(0).permutation(len(truth))
    keep = round(len(truth) * expected_recall(quality, step))
    return truth[np.sort(order[:keep])]


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and value != value else value


def fake_shard(request: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the fake model on every image of the shard (forged scores included)."""
    parsed = ShardRequest.from_dict(request)
    options = parsed.model.options
    if options.get("fail"):
        raise RuntimeError("injected shard failure")
    quality = float(options.get("quality", 1.0))
    fail_from = options.get("fail_from_step")
    folder = Path(parsed.dataset.cache_dir or ".")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"shard-{parsed.shard_id}").write_text(json.dumps(parsed.not_after_unix))
    if options.get("block"):
        BLOCKED.set()
        RELEASE.wait(BLOCK_LIMIT_S)
    ref = parsed.dataset
    images = []
    with load(ref.name, preset=ref.preset, version=ref.version,
              cache_dir=Path(ref.cache_dir) if ref.cache_dir else None) as dataset:
        manifest_sha256 = dataset.content_hash
        version = dataset.version
        for image_id in parsed.image_ids:
            image = dataset[image_id]
            step = int(image.metadata["step"])
            conditions = {k: _plain(image.metadata.get(k)) for k in CONDITION_FIELDS}
            entry: dict[str, Any] = {"image_id": image_id, "seconds": 0.0,
                                     "conditions": conditions, "error": None,
                                     "score": forged_score(image_id)}
            if fail_from is not None and step >= int(fail_from):
                entry.update(error="RuntimeError: injected image failure", score=None)
            else:
                kept = kept_coordinates(image.coords, quality, step)
                entry["coordinates"] = [[round(float(x), 3), round(float(y), 3)]
                                        for x, y in kept]
            images.append(entry)
    weights = hashlib.sha256(json.dumps([parsed.model.spec, options], sort_keys=True)
                             .encode()).hexdigest()
    return {"shard_id": parsed.shard_id, "ok": True, "error": None, "images": images,
            "model": {"name": parsed.model.spec, "version": "1.0", "framework": "fake",
                      "weights_sha256": weights},
            "dataset": {"name": ref.name, "version": version,
                        "manifest_sha256": manifest_sha256},
            "runtime": {"host": "test-host", "device": "cpu", "stembench_version": "0.1.0"}}


def describe_refused_once(dataset: dict[str, Any], client_version: str) -> dict[str, Any]:
    """The real listing, except that the first call of a process fails (a lost task)."""
    if not LISTING_REFUSED:
        LISTING_REFUSED.append(True)
        raise RuntimeError("injected: the listing task was lost")
    return describe_dataset(dataset, client_version)


LISTING_REFUSED: list[bool] = []
