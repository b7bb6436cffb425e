"""A synthetic SrTiO3-like lattice rendered as a sum of Gaussians at known positions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.spatial import cKDTree

LATTICE_ANGSTROM = 3.905
COLUMN_SIGMA_ANGSTROM = 0.35


def render_lattice(
    *, pixel_size: float, size_px: int, seed: int, noise: float = 0.03, scale: float = 1.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Render a perovskite [100]-like lattice: bright A columns, dimmer B columns at the centre.

    Positions are in angstrom offset by a random sub-pixel shift and a small rotation so that
    they fall at arbitrary sub-pixel places; returns the image and the (N, 2) x, y pixel truth.
    """
    rng = np.random.default_rng(seed)
    extent = size_px * pixel_size
    angle = np.deg2rad(3.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    cells = np.arange(-2, int(extent / LATTICE_ANGSTROM) + 3)
    corners = np.array([(i, j) for i in cells for j in cells], dtype=np.float64) * LATTICE_ANGSTROM
    sites = np.concatenate([corners, corners + LATTICE_ANGSTROM / 2])
    heights = np.concatenate([np.full(len(corners), 1.0), np.full(len(corners), 0.55)])
    origin = rng.uniform(0, LATTICE_ANGSTROM, 2)
    xy_angstrom = sites @ rotation.T + origin
    xy = xy_angstrom / pixel_size
    sigma_px = COLUMN_SIGMA_ANGSTROM / pixel_size
    rows, cols = np.mgrid[0:size_px, 0:size_px].astype(np.float64)
    image = np.zeros((size_px, size_px))
    near = (xy > -4 * sigma_px).all(1) & (xy < size_px + 4 * sigma_px).all(1)
    for (x, y), h in zip(xy[near], heights[near], strict=True):
        image += h * np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma_px**2))
    image += rng.normal(0.0, noise, image.shape)
    inside = (xy >= 0).all(1) & (xy <= size_px - 1).all(1)
    return scale * image + 100.0 * scale, xy[inside]


def match(
    predicted: NDArray[np.float64], truth: NDArray[np.float64], *, border_px: float,
    size_px: int, radius_px: float,
) -> tuple[float, float, float]:
    """Recall, precision and RMS (px) of nearest matches, counted away from the border.

    Each prediction is matched to its nearest true column within ``radius_px``; recall
    counts interior true columns that received a match, precision interior predictions
    that found one. Two predictions on one column fail the assertion.
    """
    distances, index = cKDTree(truth).query(predicted, distance_upper_bound=radius_px)
    hit = np.isfinite(distances)
    assert len(set(index[hit].tolist())) == int(hit.sum()), "two predictions matched one column"

    def interior(xy: NDArray[np.float64]) -> NDArray[np.bool_]:
        return np.asarray((xy >= border_px).all(1) & (xy <= size_px - 1 - border_px).all(1))

    found = np.zeros(len(truth), dtype=bool)
    found[index[hit]] = True
    truth_in, predicted_in = interior(truth), interior(predicted)
    recall = float(found[truth_in].mean())
    precision = float(hit[predicted_in].mean())
    rms = float(np.sqrt(np.mean(distances[hit & predicted_in] ** 2)))
    return recall, precision, rms


@pytest.fixture
def lattice() -> Callable[..., tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """The renderer, as a fixture."""
    return render_lattice


@pytest.fixture
def scores() -> Callable[..., tuple[float, float, float]]:
    """The matcher, as a fixture."""
    return match
