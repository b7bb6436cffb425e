"""Where the beam goes: a raster scan with rotation, random drift and fly-back error.

Pixel ``(row i, column j)`` is recorded with the beam at

``origin + R(rotation) @ (pixel_size * (j + dx_i), pixel_size * (i + dy_i))``

in angstrom, where ``dx_i`` (fly-back error plus drift, along the fast axis) and ``dy_i``
(drift, along the slow axis) are per-line displacements in pixels. Drift is a random walk
whose per-line steps have standard deviation ``drift_px_per_line`` in x and y; the fly-back
error is an independent Gaussian x offset of each line with standard deviation
``flyback_px``. Between lines the displacements are interpolated linearly, which defines
where a column *appears* in the image: :func:`ground_truth_pixels` inverts the scan map
exactly (one 1D piecewise-linear root per column).
"""

from __future__ import annotations

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


def ground_truth_pixels(positions_angstrom: NDArray[np.float64],
                        scan: ScanParameters) -> NDArray[np.float64]:
    """Pixel (x, y) where each specimen position appears in the image.

    Parameters
    ----------
    positions_angstrom : ndarray, shape (N, 2)
        Specimen positions (x, y) in angstrom.
    scan : ScanParameters
        The scan that recorded the image.

    Returns
    -------
    ndarray, shape (N, 2)
        Image positions (x = column, y = row) in pixels. The row is the first fractional line
        ``t`` with ``t + dy(t)`` equal to the position's slow-axis coordinate; positions never
        scanned get NaN.
    """
    pos = np.asarray(positions_angstrom, dtype=np.float64).reshape(-1, 2)
    rel = (pos - np.asarray(scan.origin_angstrom)) @ _rotation(scan) / scan.pixel_size_angstrom
    dx, dy = line_offsets_px(scan)
    rows = len(dy)
    line = np.arange(rows) + dy  # slow-axis coordinate of each line
    below = line[None, :-1] - rel[:, 1:2]
    above = line[None, 1:] - rel[:, 1:2]
    crossing = (below <= 0) & (above >= 0) | (below >= 0) & (above <= 0)
    has = crossing.any(axis=1)
    seg = np.argmax(crossing, axis=1)
    lo, hi = line[seg], line[seg + 1]
    frac = np.where(hi != lo, (rel[:, 1] - lo) / np.where(hi != lo, hi - lo, 1.0), 0.0)
    row = seg + frac
    col = rel[:, 0] - (dx[seg] + frac * (dx[seg + 1] - dx[seg]))
    out = np.column_stack([col, row])
    out[~has] = np.nan
    return out
