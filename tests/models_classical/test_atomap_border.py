"""atomap-like drops positions refined off the image instead of failing the image."""

from __future__ import annotations

from stembench.dataset_publish.simulate.build import GENERALITY_NAMES, generality_images
from stembench.dataset_publish.simulate.fast_backend import FastHAADF
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.endpoints.models.classical import AtomapLike
from stembench.endpoints.models.guard import run_model_safely

NAME = "hBN-Si-dopants-3%"


def test_column_refined_off_the_image_is_dropped_not_failed() -> None:
    """The standard preset's generality:hBN-Si-dopants-3% image (256 px): a border column is
    refined to x = 256.1; the image is scored, every position lies on it."""
    probe = ProbeParameters()
    # the pixel size of a generality image depends on its index (mod 5) in the standard list
    copies = GENERALITY_NAMES.index(NAME) % 5 + 1
    *_, image = generality_images((NAME,) * copies, backend=FastHAADF(probe), probe=probe,
                                  shape=(256, 256))
    output = run_model_safely(AtomapLike(), image.image, image.pixel_size,
                              image_id=image.image_id, timeout_s=120)
    assert output.error is None
    xy = output.coordinates
    assert len(xy) > 150
    assert xy[:, 0].max() <= 255.5 and xy[:, 1].max() <= 255.5
    assert xy.min() >= -0.5
