"""The shipped AtomSegNet weights: their hash, and the validation score their record claims.

The check uses the validation set of the training world, rebuilt from its recorded size and
compared by manifest hash; it never touches the benchmark's images.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from stembench.endpoints.models.atomsegnet import AtomSegNet, default_weights_path
from stembench.endpoints.models.base import sha256_file
from stembench.endpoints.training.validation import make_validation_set, score_validation

#: The validation quality the shipped weights must reach (see docs/paper-findings.md).
MIN_F1 = 0.90


def _record() -> dict[str, object]:
    path = default_weights_path().with_name("atomsegnet_training.json")
    return dict(json.loads(path.read_text()))


def test_shipped_weights_file_matches_its_recorded_sha256() -> None:
    path = default_weights_path()
    recorded = path.with_name(path.name + ".sha256").read_text().split()[0]
    assert sha256_file(path) == recorded == _record()["sha256"]
    assert AtomSegNet().info.weights_sha256 == recorded


@pytest.mark.slow
def test_shipped_weights_reach_their_recorded_validation_score() -> None:
    record = _record()
    validation_record = record["validation_now"]  # today's labels (bench/revalidate_shipped.py)
    assert isinstance(validation_record, dict)
    validation = make_validation_set("mixed", n=int(validation_record["n_images"]),
                                     size=int(validation_record["image_px"]))
    assert validation.manifest_sha256 == validation_record["manifest_sha256"]
    scores = score_validation(AtomSegNet(device="cpu").locate_batch, validation)
    selected = validation_record["scores"]
    for key in ("recall", "precision", "f1", "rms_angstrom"):
        assert scores[key] == pytest.approx(selected[key], abs=1e-6)
    assert scores["f1"] >= MIN_F1
    assert np.isfinite(scores["rms_angstrom"]) and scores["rms_angstrom"] <= 0.15
