"""The classical baselines recover a known synthetic lattice, at any pixel size and scale."""

from __future__ import annotations

import numpy as np
import pytest

from stembench.endpoints.models.classical import AtomapLike, LoGDetector
from stembench.errors import InputError

SIZE = 256


@pytest.mark.parametrize(
    ("model", "rms_limit_px"), [(AtomapLike(), 0.1), (LoGDetector(), 0.3)], ids=["atomap", "log"]
)
def test_recovers_lattice_at_0p1_angstrom_per_pixel(lattice, scores, model, rms_limit_px):
    image, truth = lattice(pixel_size=0.1, size_px=SIZE, seed=11, noise=0.03)
    found = model.locate(image, 0.1)
    assert found.dtype == np.float64 and found.shape[1] == 2
    recall, precision, rms = scores(found, truth, border_px=6, size_px=SIZE, radius_px=5.0)
    assert recall == 1.0
    assert precision == 1.0
    assert rms < rms_limit_px


@pytest.mark.parametrize("model", [AtomapLike(), LoGDetector()], ids=["atomap", "log"])
@pytest.mark.parametrize("pixel_size", [0.06, 0.2])
def test_same_physical_lattice_found_at_other_pixel_sizes(lattice, scores, model, pixel_size):
    image, truth = lattice(pixel_size=pixel_size, size_px=SIZE, seed=5, noise=0.03)
    found = model.locate(image, pixel_size)
    recall, precision, rms = scores(
        found, truth, border_px=6, size_px=SIZE, radius_px=0.5 / pixel_size
    )
    assert (recall, precision) == (1.0, 1.0)
    assert rms < 0.3


def test_separation_scales_with_pixel_size():
    model = AtomapLike(min_spacing_angstrom=2.0)
    assert model.separation_px(0.1) == pytest.approx(15.0)
    assert model.separation_px(0.05) == pytest.approx(30.0)
    assert model.separation_px(1.0) == 2.0  # the floor
    low, high = LoGDetector(probe_fwhm_angstrom=2.355).sigmas_px(0.1)
    assert (low, high) == (pytest.approx(7.5), pytest.approx(15.0))


def test_separation_too_large_merges_the_dim_sublattice(lattice, scores):
    """The spacing keyword matters: above the A-B distance (2.76 A) only one column per pair
    survives, so recall drops to about a half; this guards the pixel-size conversion."""
    image, truth = lattice(pixel_size=0.1, size_px=SIZE, seed=11, noise=0.03)
    found = AtomapLike(min_spacing_angstrom=4.0).locate(image, 0.1)
    recall, precision, _ = scores(found, truth, border_px=6, size_px=SIZE, radius_px=5.0)
    assert 0.4 < recall < 0.6
    assert precision == 1.0


def test_gaussian_refinement_beats_centre_of_mass(lattice, scores):
    image, truth = lattice(pixel_size=0.1, size_px=SIZE, seed=3, noise=0.001)
    rms_fit = scores(AtomapLike().locate(image, 0.1), truth, border_px=6, size_px=SIZE,
                     radius_px=5.0)[2]
    rms_com = scores(AtomapLike(iterations=0).locate(image, 0.1), truth, border_px=6,
                     size_px=SIZE, radius_px=5.0)[2]
    assert rms_fit < 0.01
    assert rms_com > 2 * rms_fit


@pytest.mark.parametrize("model", [AtomapLike(), LoGDetector()], ids=["atomap", "log"])
def test_intensity_scale_and_offset_do_not_matter(lattice, model):
    image, _ = lattice(pixel_size=0.1, size_px=128, seed=7, noise=0.03)
    reference = model.locate(image, 0.1)
    scaled = model.locate((image * 250.0 + 1000.0).astype(np.float32), 0.1)
    assert scaled.shape == reference.shape
    np.testing.assert_allclose(scaled, reference, atol=1e-3)


@pytest.mark.parametrize("model", [AtomapLike(), LoGDetector()], ids=["atomap", "log"])
def test_flat_image_has_no_columns(model):
    assert model.locate(np.full((64, 64), 3.0), 0.1).shape == (0, 2)


@pytest.mark.parametrize("model", [AtomapLike(), LoGDetector()], ids=["atomap", "log"])
def test_bad_input_is_named(model):
    name = model.info.name
    with pytest.raises(InputError, match=f"{name}: expected a 2D image"):
        model.locate(np.zeros((4, 4, 3)), 0.1)
    with pytest.raises(InputError, match=f"{name}: 64 non-finite value"):
        model.locate(np.full((8, 8), np.nan), 0.1)
    with pytest.raises(InputError, match=f"{name}: pixel size must be a positive"):
        model.locate(np.zeros((8, 8)), -0.1)


def test_options_are_checked():
    with pytest.raises(InputError, match="separation_fraction"):
        AtomapLike(separation_fraction=1.5)
    with pytest.raises(InputError, match="sigma_range"):
        LoGDetector(sigma_range=(2.0, 1.0))


def test_info():
    assert AtomapLike().info.name == "atomap-like"
    assert LoGDetector().info.framework == "classical"
    assert LoGDetector().info.weights_sha256 is None


def test_dim_columns_beside_bright_ones_are_found(mini_dataset_path):
    """WS2: S2 columns (0.15 of W, 1.8 A away) sit on W's tail; Atomap's full-separation
    window hides them, the half-separation window with merging finds them."""
    from stembench.dataset_publish.storage.stembench_layout import open_dataset
    from stembench.scoring import score_image

    with open_dataset(mini_dataset_path) as dataset:
        ids = [i for i in dataset.ids if dataset.metadata(i)["group"] == "WS2-simulated"
               and dataset.metadata(i)["step"] == 0][:2]
        for image_id in ids:
            image = dataset[image_id]
            found = AtomapLike().locate(image.image, image.pixel_size)
            score = score_image(found, image.coords, pixel_size=image.pixel_size,
                                image_shape=image.shape, image_id=image_id,
                                column_types=image.column_types)
            assert score.by_type["S2"].recall == 1.0
            assert score.recall == 1.0 and score.precision == 1.0
