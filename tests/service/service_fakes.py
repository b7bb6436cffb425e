"""Fast stand-ins for the dataset listing and shard evaluation, for the service tests.

The fake dataset has one data group with a noise series and a drift series (4 steps, 2
seeds each) and one reference image. A model's recall falls with the step at a rate set by
its ``quality`` option, so models differ in cutoffs. Each evaluated shard leaves a marker
file in the dataset cache folder, so tests can count which shards ran.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from stembench.endpoints.requests import ShardRequest

GROUP = "SrTiO3-simulated"
PSNR_DB = (30.0, 20.0, 10.0, 5.0)
DRIFT = (0.0, 0.1, 0.2, 0.4)


def _conditions() -> dict[str, dict[str, Any]]:
    images = {"ref": {"group": GROUP, "series": "reference", "step": 0,
                      "axis_value": float("nan"), "seed": 0}}
    for series, values in (("noise", PSNR_DB), ("drift", DRIFT)):
        for step, value in enumerate(values):
            for seed in range(2):
                images[f"{series}-{step}-{seed}"] = {"group": GROUP, "series": series,
                                                      "step": step, "axis_value": value,
                                                      "seed": seed}
    return images


IMAGES = _conditions()


def fake_describe(dataset: dict[str, Any], client_version: str) -> dict[str, Any]:
    """The listing ``describe_dataset`` returns, for the fake dataset."""
    return {"images": [{"image_id": i, **c} for i, c in IMAGES.items()]}


def expected_recall(quality: float, step: int) -> float:
    """Recall of a model of ``quality`` at ``step`` (what the fake shard reports)."""
    return max(0.0, 1.0 - (1.0 - quality) * step)


def fake_shard(request: dict[str, Any]) -> dict[str, Any]:
    """Score every image of the shard with the fake model's curve."""
    parsed = ShardRequest.from_dict(request)
    options = parsed.model.options
    if options.get("fail"):
        raise RuntimeError("injected shard failure")
    quality = float(options.get("quality", 1.0))
    folder = Path(parsed.dataset.cache_dir or ".")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"shard-{parsed.shard_id}").touch()
    images = []
    for image_id in parsed.image_ids:
        conditions = IMAGES[image_id]
        recall = expected_recall(quality, conditions["step"])
        tp = round(100 * recall)
        if image_id in str(options.get("fail_images", "")).split(","):  # scored as a failure
            images.append({"image_id": image_id, "error": "model raised", "seconds": 0.0,
                           "conditions": conditions,
                           "score": {"image_id": image_id, "recall": 0.0, "precision": 1.0,
                                     "f1": 0.0, "rms_angstrom": None, "tp": 0, "fp": 0,
                                     "fn": 100}})
            continue
        images.append({"image_id": image_id, "error": None, "seconds": 0.0,
                       "conditions": conditions,
                       "score": {"image_id": image_id, "recall": tp / 100, "precision": 1.0,
                                 "f1": 2 * tp / (tp + 100), "rms_angstrom": 0.05, "tp": tp,
                                 "fp": 0, "fn": 100 - tp}})
    weights = hashlib.sha256(json.dumps([parsed.model.spec, options], sort_keys=True)
                             .encode()).hexdigest()
    return {"shard_id": parsed.shard_id, "ok": True, "error": None, "images": images,
            "model": {"name": parsed.model.spec, "version": "1.0", "framework": "fake",
                      "weights_sha256": weights},
            "dataset": {"name": parsed.dataset.name, "version": "1.0.0",
                        "manifest_sha256": "m" * 64},
            "runtime": {"host": "test-host", "device": "cpu", "stembench_version": "0.1.0"}}
