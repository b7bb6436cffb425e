from __future__ import annotations

import numpy as np
import pytest

from stembench.dataset_publish.simulate.fast_backend import FastHAADF, ImageFormation
from stembench.dataset_publish.simulate.probe import (
    ProbeParameters,
    electron_wavelength_angstrom,
    probe_fwhm_angstrom,
)
from stembench.dataset_publish.simulate.scan import ScanParameters
from stembench.dataset_publish.simulate.series import render
from stembench.dataset_publish.simulate.structures import structure_from_columns
from stembench.errors import InputError


def subpixel_maxima(image: np.ndarray, coords: np.ndarray, window: int) -> np.ndarray:
    """Local maximum near each label, refined by a 1D parabola through 3 pixels per axis."""
    rows, cols = image.shape
    found = []
    for x, y in coords:
        r0, c0 = round(y), round(x)
        r_lo, r_hi = max(r0 - window, 1), min(r0 + window + 1, rows - 1)
        c_lo, c_hi = max(c0 - window, 1), min(c0 + window + 1, cols - 1)
        patch = image[r_lo:r_hi, c_lo:c_hi]
        r, c = np.unravel_index(np.argmax(patch), patch.shape)
        r, c = r + r_lo, c + c_lo
        dy = image[r - 1, c] - image[r + 1, c]
        dx = image[r, c - 1] - image[r, c + 1]
        ddy = image[r - 1, c] - 2 * image[r, c] + image[r + 1, c]
        ddx = image[r, c - 1] - 2 * image[r, c] + image[r, c + 1]
        found.append((c + 0.5 * dx / ddx, r + 0.5 * dy / ddy))
    return np.array(found)


def _interior(coords: np.ndarray, shape: tuple[int, int], border: float) -> np.ndarray:
    return ((coords[:, 0] > border) & (coords[:, 0] < shape[1] - 1 - border)
            & (coords[:, 1] > border) & (coords[:, 1] < shape[0] - 1 - border))


def test_airy_fwhm_matches_theory_without_source():
    probe = ProbeParameters(source_fwhm_angstrom=0.0)
    wavelength = electron_wavelength_angstrom(200e3)
    assert wavelength == pytest.approx(0.02508, abs=1e-5)
    # FWHM of the Airy intensity pattern: 1.029 * lambda / (2 alpha)
    assert probe_fwhm_angstrom(probe) == pytest.approx(1.029 * wavelength / (2 * 0.0214), rel=0.01)
    # a Gaussian source widens it, roughly in quadrature
    wide = probe_fwhm_angstrom(ProbeParameters(source_fwhm_angstrom=0.5))
    assert wide == pytest.approx(np.hypot(0.603, 0.5), rel=0.08)


def test_single_column_image_is_the_probe():
    backend = FastHAADF(ProbeParameters())
    assert isinstance(backend, ImageFormation)
    one = structure_from_columns("one", np.array([[5.0, 5.0], [50.0, 50.0]]),
                                 np.array([2.0, 1.0]), [("W",), ("W",)],
                                 np.array([True, True]), extent_angstrom=(60.0, 60.0),
                                 space_group="p1")
    r = np.linspace(0.0, 2.0, 201)
    values = backend.intensity(one, 5.0 + r, np.full_like(r, 5.0))
    assert values[0] == pytest.approx(2.0, rel=1e-6)
    half = r[np.argmin(np.abs(values - 1.0))]
    assert 2 * half == pytest.approx(backend.fwhm_angstrom, abs=0.02)
    # isotropic, and nothing beyond the cutoff
    diag = backend.intensity(one, 5.0 + r / np.sqrt(2), 5.0 + r / np.sqrt(2))
    np.testing.assert_allclose(diag, values, atol=1e-6)
    assert backend.intensity(one, np.array([30.0]), np.array([30.0]))[0] == 0.0


@pytest.mark.parametrize(("material", "scan"), [
    ("SrTiO3[100]", ScanParameters((128, 128), 0.12, rotation_deg=7.0)),
    ("WS2", ScanParameters((128, 128), 0.1)),
    ("SrTiO3[100]", ScanParameters((128, 128), 0.12, drift_px_per_line=0.05, seed=2)),
])
def test_labels_coincide_with_maxima_of_noise_free_image(material, scan):
    backend = FastHAADF(ProbeParameters())
    rendered = render(material, backend, scan, structure_seed=11)
    inner = _interior(rendered.coords, scan.shape, border=4)
    coords = rendered.coords[inner]
    assert len(coords) > 20
    maxima = subpixel_maxima(rendered.raw, coords, window=3)
    error_angstrom = np.hypot(*(maxima - coords).T) * scan.pixel_size_angstrom
    assert error_angstrom.max() < 0.1


def test_unlabelled_columns_are_faint():
    backend = FastHAADF(ProbeParameters())
    rendered = render("SrTiO3[100]", backend, ScanParameters((64, 64), 0.1), structure_seed=1)
    coords = np.round(rendered.coords).astype(int)
    inner = _interior(rendered.coords, (64, 64), border=2)
    peaks = rendered.raw[coords[inner, 1], coords[inner, 0]]
    assert peaks.min() > 0.3  # TiO columns are ~0.47 of Sr, both far above O (~0.07)


def test_mismatched_positions_raise():
    backend = FastHAADF(ProbeParameters())
    one = structure_from_columns("one", np.array([[1.0, 1.0], [4.0, 4.0]]), np.ones(2),
                                 [("W",), ("W",)], np.array([True, True]),
                                 extent_angstrom=(5.0, 5.0), space_group="p1")
    with pytest.raises(InputError, match="differ in shape"):
        backend.intensity(one, np.zeros(3), np.zeros(4))
    with pytest.raises(InputError, match="pixel_size_angstrom must be a positive"):
        ScanParameters((10, 10), -0.1)


def test_neighbour_search_equals_brute_force_even_where_crowded():
    rng = np.random.default_rng(3)
    # a dense cluster in a large, mostly empty field: the typical neighbour count is too low
    pos = np.vstack([rng.uniform(10, 16, (150, 2)), rng.uniform(0, 100, (30, 2))])
    weights = rng.uniform(0.5, 2.0, len(pos))
    s = structure_from_columns("cluster", pos, weights, [("W",)] * len(pos),
                               np.ones(len(pos), bool), extent_angstrom=(100.0, 100.0),
                               space_group="p1")
    backend = FastHAADF(ProbeParameters())
    x, y = np.meshgrid(np.linspace(5, 25, 41), np.linspace(5, 25, 37))
    fast = backend.intensity(s, x, y)
    d = np.hypot(x[..., None] - pos[:, 0], y[..., None] - pos[:, 1])
    brute = (backend.psf(d) * weights).sum(axis=-1)
    np.testing.assert_allclose(fast, brute, rtol=1e-9, atol=1e-12)
