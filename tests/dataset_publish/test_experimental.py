from __future__ import annotations

import numpy as np
import pytest

from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.experimental.derived_series import bin_image, experimental_series
from stembench.dataset_publish.simulate.degradations import contrast, psnr_db
from stembench.errors import InputError


def _gaussian_image(shape, coords, sigma):
    yy, xx = np.indices(shape, dtype=float)
    image = np.full(shape, 2.0)
    for x, y in coords:
        image += 100.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return image


def _source():
    rng = np.random.default_rng(4)
    grid = np.array([(x, y) for x in range(8, 120, 12) for y in range(8, 120, 12)], float)
    coords = grid + rng.uniform(-2.0, 2.0, grid.shape)
    image = _gaussian_image((120, 121), coords, sigma=2.5)
    meta = {"material": "SrTiO3[100]", "space_group": "Pm-3m",
            "column_elements": tuple("Sr" for _ in coords)}
    return BenchmarkImage("exp1", image.astype(np.float32), coords, 0.1,
                          column_types=tuple("Sr" for _ in coords), metadata=meta)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_binning_moves_labels_exactly(factor):
    source = _source()
    binned, mapped, keep = bin_image(source.image, source.coords, factor)
    np.testing.assert_allclose(mapped, (source.coords[keep] + 0.5) / factor - 0.5)
    assert binned.shape == (120 // factor, 121 // factor)
    # block averaging keeps a smooth peak's intensity centroid where the mapped label says
    # (a wrong convention such as x / b would be off by up to 0.5 px)
    one = np.array([[37.3, 52.8]])
    single = _gaussian_image((120, 121), one, sigma=2.5) - 2.0
    rows, cols = 120 // factor * factor, 121 // factor * factor
    cropped = single[:rows, :cols]
    yy, xx = np.indices(cropped.shape, dtype=float)
    true_centre = np.array([(cropped * xx).sum(), (cropped * yy).sum()]) / cropped.sum()
    small, moved, _ = bin_image(single, true_centre[None, :], factor)
    yy, xx = np.indices(small.shape, dtype=float)
    centroid = np.array([(small * xx).sum(), (small * yy).sum()]) / small.sum()
    np.testing.assert_allclose(centroid, moved[0], atol=1e-3)
    np.testing.assert_allclose(true_centre, one[0], atol=1e-3)


def test_experimental_series_carries_labels_through_every_step():
    source = _source()
    pix = list(experimental_series(source, "pixel_size", steps=[2, 3]))
    assert [im.pixel_size for im in pix] == pytest.approx([0.1, 0.2, 0.3])
    np.testing.assert_allclose(pix[2].coords, (source.coords + 0.5) / 3 - 0.5)
    assert pix[2].metadata["atoms_per_100px"] == pytest.approx(3 * pix[0].metadata[
        "atoms_per_100px"])
    assert len(pix[2].metadata["column_elements"]) == len(pix[2].coords)
    for axis, steps, kwargs in [("resolution", [150.0], {"resolution_angstrom": 0.8}),
                                ("contrast", [0.1], {}),
                                ("dose", [500.0, 100.0], {"dose_e_per_A2": 1000.0})]:
        images = list(experimental_series(source, axis, steps=steps, seeds=[0, 1], **kwargs))
        for im in images:
            np.testing.assert_array_equal(im.coords, source.coords)
            assert im.column_types == source.column_types
            assert im.metadata["type"] == "experimental"
            assert im.metadata["contrast"] == pytest.approx(contrast(im.image), rel=1e-5)
            assert im.metadata["psnr_db"] == pytest.approx(psnr_db(im.image, im.raw), rel=1e-4)
    dose = list(experimental_series(source, "dose", steps=[100.0], seeds=[0],
                                    dose_e_per_A2=1000.0))
    thinned = dose[1]
    assert thinned.image.sum() == pytest.approx(0.1 * np.rint(source.image).sum(), rel=0.01)
    assert thinned.metadata["dose_e_per_A2"] == 100.0
    low = list(experimental_series(source, "contrast", steps=[0.1]))[1]
    assert low.metadata["contrast"] == pytest.approx(0.1)


def test_experimental_bad_parameters():
    source = _source()
    with pytest.raises(InputError, match="empty series"):
        list(experimental_series(source, "contrast", steps=[]))
    with pytest.raises(InputError, match="needs the source resolution"):
        list(experimental_series(source, "resolution", steps=[150.0]))
    with pytest.raises(InputError, match="thinning only lowers"):
        list(experimental_series(source, "dose", steps=[5000.0], dose_e_per_A2=1000.0))
    with pytest.raises(InputError, match="positive integer"):
        bin_image(source.image, source.coords, 1.5)
