"""Segmentation map -> coordinates: the watershed (AtomSegNet) and threshold (AtomNet) paths."""

from __future__ import annotations

import numpy as np
import pytest

from stembench.endpoints.models.postprocess import (
    coordinates_from_probability,
    coordinates_from_watershed,
)
from stembench.errors import InputError


def _gaussian_map(centres_xy: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    out = np.zeros(shape)
    for x, y in centres_xy:
        out = np.maximum(out, np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)))
    return out


def _match(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Distance from each true centre to its nearest found one (one-to-one checked by count)."""
    assert found.shape == truth.shape
    dist = np.linalg.norm(found[None, :, :] - truth[:, None, :], axis=2)
    return dist.min(axis=1)


def test_watershed_recovers_symmetric_gaussian_blob_centres() -> None:
    # centres on the integer / half-integer grid: each blob's pixel footprint is symmetric
    # about its centre, so the region centroid equals the centre
    centres = np.array([[10.0, 12.0], [25.5, 12.0], [40.0, 30.5], [12.5, 40.5], [31.0, 44.0]])
    found = coordinates_from_watershed(_gaussian_map(centres, (56, 52), sigma=2.0))
    assert np.all(_match(found, centres) < 0.1)


def test_watershed_recovers_binary_blob_centroids_x_then_y() -> None:
    rng = np.random.default_rng(3)
    shape = (60, 80)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    prob = np.zeros(shape)
    truth = []
    for cx, cy in [(12, 10), (40, 14), (66, 22), (20, 44), (55, 48)]:
        x, y = cx + rng.uniform(-0.5, 0.5), cy + rng.uniform(-0.5, 0.5)
        inside = (xx - x) ** 2 + (yy - y) ** 2 < 3.2**2
        prob[inside] = 0.95
        truth.append([xx[inside].mean(), yy[inside].mean()])
    found = coordinates_from_watershed(prob)
    assert np.all(_match(found, np.array(truth)) < 0.1)
    # x is the column: the blob at column ~66 must come back with x ~66, not y
    assert np.any(np.abs(found[:, 0] - 66) < 0.6)


def test_watershed_ignores_weak_response_and_handles_empty_map() -> None:
    centres = np.array([[15.0, 15.0], [35.0, 15.0]])
    prob = _gaussian_map(centres, (32, 52), sigma=2.0)
    prob[25:29, 5:9] = 0.25  # 64/255: between the markers, never an atom seed
    found = coordinates_from_watershed(prob)
    assert len(found) == 2
    assert coordinates_from_watershed(np.zeros((16, 16))).shape == (0, 2)


def test_probability_threshold_centre_of_mass_by_hand() -> None:
    prob = np.zeros((20, 20))
    prob[8:10, 11:13] = 0.9  # rows 8-9, cols 11-12 -> x 11.5, y 8.5
    prob[8, 2] = 0.9  # 2 px from the left edge: dropped with edge_px=5
    found = coordinates_from_probability(prob, threshold=0.5, edge_px=5)
    np.testing.assert_allclose(found, [[11.5, 8.5]])
    assert len(coordinates_from_probability(prob, edge_px=0)) == 2


def test_probability_weighting_moves_centre_towards_brighter_pixels() -> None:
    prob = np.zeros((20, 20))
    prob[10, 9], prob[10, 10] = 0.6, 0.9
    binary = coordinates_from_probability(prob, edge_px=0)
    weighted = coordinates_from_probability(prob, edge_px=0, weighting="probability")
    np.testing.assert_allclose(binary, [[9.5, 10.0]])
    np.testing.assert_allclose(weighted, [[(9 * 0.6 + 10 * 0.9) / 1.5, 10.0]])


@pytest.mark.parametrize("bad", [np.zeros(5), np.full((4, 4), np.nan)])
def test_bad_maps_raise_input_error(bad: np.ndarray) -> None:
    with pytest.raises(InputError, match="probability map"):
        coordinates_from_watershed(bad)
    with pytest.raises(InputError, match="probability map"):
        coordinates_from_probability(bad)
