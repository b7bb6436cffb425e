"""The shipped AtomSegNet weights locate the columns of both clean reference images."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from stembench.dataset_publish.series import MATERIALS, reference_image
from stembench.endpoints.models.atomsegnet import AtomSegNet, default_weights_path
from stembench.endpoints.models.base import sha256_file
from stembench.scoring import score_image


def test_shipped_weights_file_matches_its_recorded_sha256() -> None:
    path = default_weights_path()
    recorded = path.with_name(path.name + ".sha256").read_text().split()[0]
    assert sha256_file(path) == recorded
    assert AtomSegNet().info.weights_sha256 == recorded


@pytest.mark.slow
@pytest.mark.parametrize("material", ["SrTiO3[100]", "WS2"])
def test_shipped_weights_score_the_clean_reference_image(material: str) -> None:
    reference = reference_image(material, axis="pixel_size")
    assert reference.metadata["step"] == 0
    assert reference.pixel_size == MATERIALS[material].reference_pixel_size_angstrom
    found = AtomSegNet(device="cpu").locate(reference.image, reference.pixel_size)
    score = score_image(found, reference.coords, pixel_size=reference.pixel_size,
                        image_shape=reference.image.shape, image_id=reference.image_id)
    assert score.recall >= 0.98
    assert score.precision >= 0.98
    assert score.rms_angstrom <= 0.10
    assert np.all(np.isfinite(found))
