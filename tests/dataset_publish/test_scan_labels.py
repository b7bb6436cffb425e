"""The label rule: a column is labelled at the centroid of its own scanned image."""

from __future__ import annotations

import numpy as np
import pytest

from stembench.dataset_publish.simulate.fast_backend import FastHAADF
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.simulate.scan import (
    ScanParameters,
    beam_positions,
    ground_truth_pixels,
    line_offsets_px,
)
from stembench.dataset_publish.simulate.structures import structure_from_columns
from stembench.dataset_publish.simulate.visibility import column_pixels

SIGMA = 2.5  # px; the scans below have 1 A pixels, so also angstrom


def _centroid(image: np.ndarray) -> np.ndarray:
    rows, cols = np.indices(image.shape)
    return np.array([(cols * image).sum(), (rows * image).sum()]) / image.sum()


def _gaussian_label(position: np.ndarray, scan: ScanParameters) -> np.ndarray:
    return ground_truth_pixels(position[None, :], scan, reach_angstrom=6 * SIGMA,
                               line_weight=lambda d: np.exp(-0.5 * (d / SIGMA) ** 2))[0]


@pytest.mark.parametrize(("flyback", "drift", "rotation"), [
    (2.0, 0.0, 0.0), (4.5, 0.0, 0.0), (0.0, 0.35, 0.0), (1.5, 0.2, 17.0)])
def test_label_is_the_centroid_of_a_gaussian_columns_scanned_image(flyback, drift, rotation):
    scan = ScanParameters((80, 80), 1.0, origin_angstrom=(-3.0, 2.0), rotation_deg=rotation,
                          flyback_px=flyback, drift_px_per_line=drift, seed=7)
    x, y = beam_positions(scan)
    column = np.array([34.3, 41.6])  # specimen position, angstrom
    image = np.exp(-((x - column[0]) ** 2 + (y - column[1]) ** 2) / (2 * SIGMA**2))
    np.testing.assert_allclose(_gaussian_label(column, scan), _centroid(image), atol=0.005)


def test_fly_back_label_is_not_the_offset_of_the_line_through_the_centre():
    scan = ScanParameters((80, 80), 1.0, flyback_px=2.0, seed=7)
    dx, _ = line_offsets_px(scan)
    column = np.array([40.0, 40.0])  # on line 40, which records it at x = 40 - dx[40]
    label = _gaussian_label(column, scan)
    lines = np.arange(80)
    weight = np.exp(-0.5 * ((lines - 40) / SIGMA) ** 2)
    assert label[0] == pytest.approx(40.0 - (weight @ dx) / weight.sum(), abs=1e-9)
    assert abs(label[0] - (40.0 - dx[40])) > 0.5  # the one-line rule is far from it here
    assert label[1] == pytest.approx(40.0, abs=1e-9)


def test_undistorted_scan_labels_the_columns_where_they_are():
    scan = ScanParameters((64, 80), 0.15, origin_angstrom=(3.0, 4.0), rotation_deg=17.0)
    x, y = beam_positions(scan)
    rows, cols = np.meshgrid(np.arange(2, 62, 7), np.arange(3, 78, 9), indexing="ij")
    visited = np.column_stack([x[rows, cols].ravel(), y[rows, cols].ravel()])
    pixels = column_pixels(visited, scan, probe=ProbeParameters())
    np.testing.assert_allclose(pixels[:, 0], cols.ravel(), atol=1e-9)
    np.testing.assert_allclose(pixels[:, 1], rows.ravel(), atol=1e-9)
    assert np.isnan(column_pixels(np.array([[-100.0, -100.0]]), scan,
                                  probe=ProbeParameters())).all()
    # half a pixel beyond the first line is inside the image, as it is beyond the first column
    straight = ScanParameters((64, 80), 0.15)
    edge = column_pixels(np.array([[1.5, -0.045]]), straight, probe=ProbeParameters())
    np.testing.assert_allclose(edge, [[10.0, -0.3]], atol=1e-9)


@pytest.mark.parametrize(("flyback", "drift"), [(2.0, 0.0), (0.0, 0.3)])
def test_benchmark_labels_are_the_centroids_of_the_probe_images(flyback, drift):
    probe = ProbeParameters()
    scan = ScanParameters((96, 96), 0.12, flyback_px=flyback, drift_px_per_line=drift, seed=3)
    columns = np.array([[5.7, 5.9], [50.0, 50.0]])  # the second far outside the field
    lone = structure_from_columns("lone", columns, np.ones(2), [("W",), ("W",)],
                                  np.ones(2, bool), extent_angstrom=(60.0, 60.0),
                                  space_group="p1")
    image = FastHAADF(probe).intensity(lone, *beam_positions(scan))
    np.testing.assert_allclose(column_pixels(columns[:1], scan, probe=probe)[0],
                               _centroid(image), atol=0.002)
