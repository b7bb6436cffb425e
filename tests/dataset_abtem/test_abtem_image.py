"""Real (tiny) abTEM images: periodic evaluation, columns at the maxima, tiling is exact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from skimage.feature import peak_local_max

from stembench.dataset_publish.simulate.abtem_backend import AbtemHAADF
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.simulate.structures import ColumnStructure

pytest.importorskip("abtem")

Factory = Callable[..., AbtemHAADF]
A_STO = 3.905


def test_unit_cell_sampling_is_a_whole_number_of_steps(
    srtio3: ColumnStructure, make_backend: Factory
) -> None:
    sampling = make_backend(None).unit_cell_sampling_angstrom(srtio3)
    assert sampling == pytest.approx((A_STO / 16, A_STO / 16))


def test_intensity_is_periodic_in_the_lattice_vectors(
    shared_cache: Path, srtio3: ColumnStructure, make_backend: Factory
) -> None:
    backend = make_backend(shared_cache)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 8, (2, 200))
    reference = backend.intensity(srtio3, x, y)
    for shift_x, shift_y in [(A_STO, 0.0), (0.0, A_STO), (3 * A_STO, -2 * A_STO)]:
        shifted = backend.intensity(srtio3, x + shift_x, y + shift_y)
        np.testing.assert_allclose(shifted, reference, rtol=1e-9, atol=1e-12)
    assert reference.std() > 0.1 * reference.mean()  # a real image, not a constant


def test_maxima_sit_on_the_visible_columns(
    shared_cache: Path, srtio3: ColumnStructure, make_backend: Factory
) -> None:
    step = 0.02
    coordinates = np.arange(0.0, 8.0, step)
    x, y = np.meshgrid(coordinates, coordinates)
    image = make_backend(shared_cache).intensity(srtio3, x, y)
    peaks = peak_local_max(image, min_distance=50, threshold_rel=0.2, exclude_border=50)
    peaks_angstrom = peaks[:, ::-1] * step
    columns = srtio3.positions_angstrom[srtio3.visible]

    distance = np.linalg.norm(peaks_angstrom[:, None] - columns[None], axis=2)
    assert distance.min(axis=1).max() < 0.1
    inner = np.all((columns > 1.1) & (columns < 8.0 - 1.1), axis=1)
    assert inner.sum() >= 4
    assert distance[:, inner].min(axis=0).max() < 0.1


def test_tiled_unit_cell_equals_a_full_scan(
    shared_cache: Path, srtio3: ColumnStructure, make_backend: Factory
) -> None:
    backend = make_backend(shared_cache)
    cell = backend.unit_cell_image(srtio3).array
    full = backend.full_scan_image(srtio3, extent_angstrom=(2 * A_STO - 0.1, 2 * A_STO))
    assert full.array.shape == (32, 32)
    assert full.extent_angstrom == pytest.approx((2 * A_STO, 2 * A_STO))
    np.testing.assert_allclose(full.array, np.tile(cell, (2, 2)), rtol=0, atol=1e-4 * cell.max())


def test_multislice_agrees_with_prism(
    shared_cache: Path, srtio3: ColumnStructure, make_backend: Factory
) -> None:
    prism = make_backend(shared_cache).unit_cell_image(srtio3).array
    multislice = make_backend(None, method="multislice").unit_cell_image(srtio3).array
    np.testing.assert_allclose(multislice, prism, rtol=0, atol=1e-3 * prism.max())


def test_source_blur_lowers_peaks_keeps_mean_and_reuses_the_cache(
    shared_cache: Path,
    srtio3: ColumnStructure,
    make_backend: Factory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sharp = make_backend(shared_cache, ProbeParameters(source_fwhm_angstrom=0.0))
    blurred = make_backend(shared_cache, ProbeParameters(source_fwhm_angstrom=1.0))
    monkeypatch.setattr(AbtemHAADF, "_simulate", lambda *args, **kwargs: pytest.fail("re-ran"))
    step = A_STO / 64
    x, y = np.meshgrid(np.arange(64) * step, np.arange(64) * step)
    x, y = x + srtio3.cell_origin_angstrom[0], y + srtio3.cell_origin_angstrom[1]
    sharp_image, blurred_image = sharp.intensity(srtio3, x, y), blurred.intensity(srtio3, x, y)
    assert sharp_image[0, 0] == pytest.approx(sharp_image.max(), rel=1e-3)  # Sr at the origin
    assert blurred_image[0, 0] < 0.8 * sharp_image[0, 0]
    assert blurred_image.mean() == pytest.approx(sharp_image.mean(), rel=1e-3)
    samples = sharp.unit_cell_image(srtio3).array
    np.testing.assert_allclose(sharp_image[::4, ::4], samples, rtol=0, atol=1e-5 * samples.max())
