"""Segmentation map -> coordinates: the watershed (AtomSegNet) and threshold (AtomNet) paths."""

from __future__ import annotations

import numpy as np
import pytest

from stembench.endpoints.models.postprocess import (
    coordinates_from_probability,
    coordinates_from_watershed,
    stretch_to_uint8,
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


def _published_watershed(output: np.ndarray) -> np.ndarray:
    """The published steps (AtomSegNet app ``LoadModel`` + ``CircleDetect``, Wei et al.'s copy)."""
    from scipy import ndimage
    from skimage.filters import sobel
    from skimage.measure import regionprops
    from skimage.segmentation import watershed

    result = np.maximum(output, -100.0)
    result[result < 0] = 0
    unit = (result - result.min()) / (result.max() - result.min())
    content = (unit * 255 / np.max(unit)).astype("uint8")
    markers = np.zeros_like(content)
    markers[content < 30] = 1
    markers[content > 100] = 2
    filled = ndimage.binary_fill_holes(watershed(sobel(content), markers) - 1)
    labels, _ = ndimage.label(filled)
    return np.array([[p.centroid[1], p.centroid[0]] for p in regionprops(labels)])


def test_watershed_stretches_the_map_as_published() -> None:
    rng = np.random.default_rng(12)
    centres = np.array([[10.0, 9.0], [30.3, 11.8], [49.6, 10.2], [20.2, 30.7], [41.0, 33.3]])
    heights = rng.uniform(0.1, 0.3, len(centres))
    shape = (44, 60)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    prob = 0.02 * rng.normal(size=shape)  # some negative values: clipped at 0 as published
    for (x, y), h in zip(centres, heights, strict=True):
        prob += h * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.2**2))
    expected = _published_watershed(prob)
    found = coordinates_from_watershed(prob)
    assert len(expected) == len(centres)
    np.testing.assert_allclose(found, expected, atol=1e-9)
    # prob * 255 without the stretch never exceeds the atom marker (0.3 * 255 < 100 + noise)
    assert float(prob.max()) * 255 < 100
    np.testing.assert_array_equal(stretch_to_uint8(np.full((3, 3), 0.4)), np.zeros((3, 3)))
    assert stretch_to_uint8(prob).max() == 255 and stretch_to_uint8(prob).dtype == np.uint8
