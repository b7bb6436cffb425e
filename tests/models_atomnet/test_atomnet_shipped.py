"""The shipped AtomNet weights: they load, run, and find the columns of the clean references."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from stembench.endpoints.models.atomnet import AtomNet, default_weights_path
from stembench.endpoints.models.base import sha256_file

pytest.importorskip("keras")

MATERIAL = {"cubic": "SrTiO3[100]", "hexagonal": "WS2"}


def _reference(material: str) -> Any:
    from stembench.dataset_publish.series import reference_image

    return reference_image(material)


@pytest.fixture(scope="module", params=["cubic", "hexagonal"])
def shipped(request: pytest.FixtureRequest) -> tuple[str, AtomNet]:
    return request.param, AtomNet(request.param)


def test_shipped_hash_matches_sidecar(shipped: tuple[str, AtomNet]) -> None:
    variant, model = shipped
    path = default_weights_path(variant)  # type: ignore[arg-type]
    recorded = path.with_name(path.name + ".sha256").read_text().split()[0]
    assert model.info.weights_sha256 == recorded == sha256_file(path)


def test_shipped_weights_find_reference_columns(shipped: tuple[str, AtomNet]) -> None:
    from stembench.scoring import score_image

    variant, model = shipped
    ref = _reference(MATERIAL[variant])
    found = model.locate(ref.image, ref.pixel_size)
    # Edge exclusion of the post-processing: nothing closer than 5 px to the border.
    assert np.all(found >= 5) and np.all(found <= 255 - 5)
    score = score_image(
        found,
        ref.coords,
        pixel_size=ref.pixel_size,
        image_shape=ref.image.shape,
        image_id=ref.image_id,
        border_px=6.0,
    )
    assert score.n_truth > 100
    assert score.recall >= 0.98
    assert score.precision >= 0.98
    assert score.rms_angstrom <= 0.10
