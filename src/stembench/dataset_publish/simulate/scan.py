"""Where the beam goes: a raster scan with rotation, random drift and fly-back error.

Pixel ``(row i, column j)`` is recorded with the beam at

``origin + R(rotation) @ (pixel_size * (j + dx_i), pixel_size * (i + dy_i))``

in angstrom, where ``dx_i`` (fly-back error plus drift, along the fast axis) and ``dy_i``
(drift, along the slow axis) are per-line displacements in pixels. Drift is a random walk
whose per-line steps have standard deviation ``drift_px_per_line`` in x and y; the fly-back
error is an independent Gaussian x offset of each line with standard deviation
``flyback_px``.

Where a column *appears* in the image (its label, :func:`ground_truth_pixels`) is its
position moved as far as the distortion moves the centroid of the column's own scanned
image: each line records the column displaced by that line's offset, weighted by the share
of the column's intensity it records. A column's image
spans several lines (about ten at 0.12 A/px and a 0.75 A probe); their fly-back offsets are
independent, so the image sits at their weighted mean, not at the offset of the one line
through the column's centre: a label at that one line's offset would jitter two to three
times more than the column it labels. Drift obeys the same rule; its displacements vary
slowly, so there the centroid differs less from the one line's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stembench.errors import InputError

__all__ = ["ScanParameters", "beam_positions", "ground_truth_pixels", "line_offsets_px"]


@dataclass(frozen=True)
class ScanParameters:
    """A raster scan.

    Attributes
    ----------
    shape : tuple of int
        (rows, cols) of the image.
    pixel_size_angstrom : float
        Nominal step between pixels, angstrom.
    origin_angstrom : tuple of float
        Beam position (x, y) of pixel (0, 0) without distortion, angstrom.
    rotation_deg : float
        Scan rotation relative to the specimen frame, degrees.
    drift_px_per_line : float
        Standard deviation of the per-line random-walk drift step, pixels per line.
    flyback_px : float
        Standard deviation of the per-line fly-back x offset, pixels.
    seed : int
        Seed of the drift and fly-back realisation.
    """

    shape: tuple[int, int]
    pixel_size_angstrom: float
    origin_angstrom: tuple[float, float] = (0.0, 0.0)
    rotation_deg: float = 0.0
    drift_px_per_line: float = 0.0
    flyback_px: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        rows, cols = self.shape
        if int(rows) < 2 or int(cols) < 2:
            raise InputError(f"scan shape must be at least (2, 2) pixels, got {self.shape}")
        if not (np.isfinite(self.pixel_size_angstrom) and self.pixel_size_angstrom > 0):
            raise InputError(
                f"scan pixel_size_angstrom must be a positive number of A/px, "
                f"got {self.pixel_size_angstrom}")
        for name in ("drift_px_per_line", "flyback_px"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise InputError(f"scan {name} must be >= 0 pixels, got {value}")


def line_offsets_px(scan: ScanParameters) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-line displacements ``(dx, dy)`` in pixels, each of shape (rows,)."""
    rows = int(scan.shape[0])
    rng = np.random.default_rng(scan.seed)
    steps = rng.normal(0.0, 1.0, (2, rows))
    flyback = rng.normal(0.0, 1.0, rows)
    drift = np.cumsum(steps * scan.drift_px_per_line, axis=1)
    drift -= drift.mean(axis=1, keepdims=True)
    return drift[0] + scan.flyback_px * flyback, drift[1]


def _rotation(scan: ScanParameters) -> NDArray[np.float64]:
    t = np.deg2rad(scan.rotation_deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def beam_positions(scan: ScanParameters) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Beam position of every pixel in angstrom: arrays ``x, y`` of shape (rows, cols)."""
    rows, cols = (int(v) for v in scan.shape)
    dx, dy = line_offsets_px(scan)
    u = (np.arange(cols)[None, :] + dx[:, None]) * scan.pixel_size_angstrom
    v = (np.arange(rows)[:, None] + dy[:, None]) * scan.pixel_size_angstrom
    v = np.broadcast_to(v, u.shape)
    rot = _rotation(scan)
    x = scan.origin_angstrom[0] + rot[0, 0] * u + rot[0, 1] * v
    y = scan.origin_angstrom[1] + rot[1, 0] * u + rot[1, 1] * v
    return x, y


def ground_truth_pixels(positions_angstrom: NDArray[np.float64], scan: ScanParameters, *,
                        line_weight: Callable[[NDArray[np.float64]], NDArray[np.float64]],
                        reach_angstrom: float) -> NDArray[np.float64]:
    """Pixel (x, y) where the scanned image puts each column: the label rule.

    Row ``i`` of the image is the scan line that records what lies at ``(j + dx_i, i + dy_i)``
    as pixel ``(j, i)``. It records a column at ``(X, Y)`` (scan frame, pixels) as the probe
    profile centred at ``j = X - dx_i``, with the total intensity ``w_i = line_weight(d_i)``,
    ``d_i`` the distance of the line (``i + dy_i``) from ``Y``. The label is the column's
    position moved as far as the distortion moves the centroid of the column's own image::

        x = sum_i w_i (X - dx_i) / sum_i w_i
        y = Y + sum_i w_i i / sum_i w_i - sum_i w0_i i / sum_i w0_i

    with ``w0_i`` the weights of the undistorted lines (``dy = 0``), whose centroid is ``Y`` up
    to the sampling of the profile on discrete lines (under 0.001 px); subtracting it keeps
    the label of an undistorted (shifted, rotated) scan at the column's position exactly.

    A column's image spans several lines (about ten at 0.12 A/px and a 0.75 A probe) whose
    fly-back offsets are independent: the image sits at their weighted mean, not at the offset
    of the line through the column's centre. Drift moves and stretches the lines slowly; the
    centroid follows both.

    Parameters
    ----------
    positions_angstrom : ndarray, shape (N, 2)
        Specimen positions (x, y) in angstrom.
    scan : ScanParameters
        The scan that recorded the image.
    line_weight : callable
        The column's intensity recorded by a line at perpendicular distance ``d`` (angstrom,
        an array of shape (N, L), row ``n`` for column ``n``): the probe profile integrated
        along the line, any scale, zero beyond ``reach_angstrom``.
    reach_angstrom : float
        Distance beyond which a line records nothing of a column, angstrom.

    Returns
    -------
    ndarray, shape (N, 2)
        Image positions (x = column, y = row) in pixels; NaN for positions no line reaches.
        A column near the first or last line is labelled by the part of its image that the
        image holds.
    """
    pos = np.asarray(positions_angstrom, dtype=np.float64).reshape(-1, 2)
    rel = (pos - np.asarray(scan.origin_angstrom)) @ _rotation(scan) / scan.pixel_size_angstrom
    dx, dy = line_offsets_px(scan)
    index = np.arange(len(dy), dtype=np.float64)

    def weights(line_y: NDArray[np.float64]) -> NDArray[np.float64]:
        distance = np.abs(line_y - rel[:, 1:2]) * scan.pixel_size_angstrom
        return np.where(distance <= reach_angstrom, line_weight(distance), 0.0)

    weight, straight = weights(index + dy), weights(index)
    total, straight_total = weight.sum(axis=1), straight.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.column_stack([rel[:, 0] - weight @ dx / total,
                               rel[:, 1] + weight @ index / total
                               - straight @ index / straight_total])
    out[~((total > 0) & (straight_total > 0))] = np.nan
    return out
