"""The shipped AtomNet weights: their hash, and the validation score their record claims.

The check uses the validation set of the training world, rebuilt from its recorded size and
compared by manifest hash; it never touches the benchmark's images.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from stembench.endpoints.models.atomnet import AtomNet, default_weights_path
from stembench.endpoints.models.base import sha256_file
from stembench.endpoints.training.validation import make_validation_set, score_validation

pytest.importorskip("keras")

#: The validation quality each shipped network must reach (see docs/paper-findings.md).
MIN_F1 = {"cubic": 0.85, "hexagonal": 0.85}


def _record(variant: str) -> dict[str, Any]:
    path = default_weights_path(variant)  # type: ignore[arg-type]
    return dict(json.loads(path.with_name(f"atomnet-{variant}_training.json").read_text()))


@pytest.fixture(scope="module", params=["cubic", "hexagonal"])
def shipped(request: pytest.FixtureRequest) -> tuple[str, AtomNet]:
    return request.param, AtomNet(request.param)


def test_shipped_hash_matches_sidecar(shipped: tuple[str, AtomNet]) -> None:
    variant, model = shipped
    path = default_weights_path(variant)  # type: ignore[arg-type]
    recorded = path.with_name(path.name + ".sha256").read_text().split()[0]
    assert model.info.weights_sha256 == recorded == sha256_file(path)
    assert _record(variant)["sha256"] == recorded


@pytest.mark.slow
def test_shipped_weights_reach_their_recorded_validation_score(
        shipped: tuple[str, AtomNet]) -> None:
    variant, model = shipped
    recorded = _record(variant)["validation_now"]  # today's labels (bench/revalidate_shipped.py)
    validation = make_validation_set(variant, n=int(recorded["n_images"]),  # type: ignore[arg-type]
                                     size=int(recorded["image_px"]))
    assert validation.manifest_sha256 == recorded["manifest_sha256"]
    images = [s.image for s in validation.samples]
    found = model.locate_batch(images, [1.0] * len(images))
    # Edge exclusion of the post-processing: nothing closer than 5 px to the border.
    assert all(np.all(xy >= 5) and np.all(xy <= 128 - 5) for xy in found)
    scores = score_validation(model.locate_batch, validation)
    for key in ("recall", "precision", "f1", "rms_angstrom"):
        assert scores[key] == pytest.approx(recorded["scores"][key], abs=1e-6)
    assert scores["f1"] >= MIN_F1[variant]
