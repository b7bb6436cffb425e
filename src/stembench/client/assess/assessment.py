"""Assess one image: every quality estimate with its uncertainty, and the lattice found.

Uncertainties combine, in quadrature, the spread of the same estimate over the image's four
quadrants (standard error of their mean; quadrants of at least 64 px that hold a lattice)
and a systematic term per axis, :data:`SYSTEMATIC`, sized so that about 68 % of the errors
fall within one sigma on the standard benchmark's clean-to-moderate images
(bench/bench_assess.py, which reports the coverage). Outside that range (very low PSNR,
columns blurred into each other, strong scan distortion) the errors grow faster than the
uncertainties: they are lower bounds there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stembench.errors import InputError, StembenchError
from stembench.imaging.estimate import Estimate, estimate_contrast
from stembench.imaging.lattice import MIN_SIDE_PX, Lattice2D, check_image
from stembench.imaging.quality import raw_estimates

__all__ = ["SYSTEMATIC", "Assessment", "assess_image"]


#: Systematic one-sigma uncertainty per axis: ("relative" | "absolute", size).
SYSTEMATIC: dict[str, tuple[str, float]] = {
    "pixel_size": ("relative", 0.025),
    "resolution": ("relative", 0.03),
    "noise": ("absolute", 0.1),
    "contrast": ("absolute", 0.0),
    "flyback": ("absolute", 0.1),
    "drift": ("absolute", 0.045),
}
_UNITS = {"pixel_size": "atoms/100 px", "resolution": "pm", "noise": "dB", "contrast": "",
          "flyback": "px", "drift": "px/line"}
_METHODS = {
    "pixel_size": "spectrum lattice, averaged unit cell, 100 / nearest column spacing (px)",
    "resolution": "shared-width Gaussian lattice fit, calibrated on the generator's probe",
    "noise": "off-lattice spectrum noise floor vs fitted brightest-column peak",
    "contrast": "(max - min) / max of the stored image",
    "flyback": "per-line x shifts against the Bragg-filtered image",
    "drift": "per-line x shifts against the Bragg-filtered image",
}


@dataclass(frozen=True)
class Assessment:
    """The assessment of one image.

    Attributes
    ----------
    name : str
        Name of the image (file name or id).
    shape : tuple of int
        Image (rows, cols).
    pixel_size_angstrom : float
        Pixel size given by the user, A/px.
    lattice : Lattice2D
        The lattice found in the whole image.
    estimates : dict of str to Estimate
        Keyed by axis series name.
    line_shifts_px : ndarray
        Per-line x shift against the Bragg-filtered image (NaN where unusable).
    n_quadrants : int
        Quadrants whose estimates entered the uncertainties.
    """

    name: str
    shape: tuple[int, int]
    pixel_size_angstrom: float
    lattice: Lattice2D
    estimates: dict[str, Estimate]
    line_shifts_px: NDArray[np.float64]
    n_quadrants: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (the lattice in pixels, estimates with uncertainties)."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "pixel_size_angstrom": self.pixel_size_angstrom,
            "lattice": {
                "kind": self.lattice.kind,
                "real_px": self.lattice.real.tolist(),
                "column_spacing_px": self.lattice.spacing_px,
                "column_spacing_angstrom": self.lattice.spacing_px * self.pixel_size_angstrom,
                "columns_per_cell": len(self.lattice.columns_frac),
                "n_spectrum_peaks": self.lattice.n_peaks,
            },
            "estimates": {k: v.to_dict() for k, v in self.estimates.items()},
            "n_quadrants": self.n_quadrants,
        }


def _quadrants(image: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    rows, cols = image.shape
    if min(rows, cols) < 2 * MIN_SIDE_PX:
        return []
    r, c = rows // 2, cols // 2
    return [image[:r, :c], image[:r, c:], image[r:, :c], image[r:, c:]]


def _uncertainty(axis: str, value: float, spread: list[float]) -> float:
    kind, size = SYSTEMATIC[axis]
    systematic = size * abs(value) if kind == "relative" else size
    finite = [v for v in spread if math.isfinite(v)]
    statistical = float(np.std(finite, ddof=1) / math.sqrt(len(finite))) if len(finite) > 1 \
        else 0.0
    return float(math.hypot(systematic, statistical))


def assess_image(image: NDArray[np.generic], *, pixel_size_angstrom: float,
                 name: str = "image",
                 progress: Callable[[str], None] | None = None) -> Assessment:
    """Estimate where ``image`` sits on the benchmark's quality axes.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        The image, any intensity scale (sides >= 64 px, finite values).
    pixel_size_angstrom : float
        Pixel size, A/px (only the resolution in pm depends on it).
    name : str
        Name used in messages and reports.
    progress : callable, optional
        Called with a short message before each stage.

    Returns
    -------
    Assessment

    Raises
    ------
    InputError
        If the image cannot be assessed (not 2D, too small, non-finite, constant, no
        lattice in its spectrum) or the pixel size is not a positive number.
    """
    if not (math.isfinite(pixel_size_angstrom) and pixel_size_angstrom > 0):
        raise InputError(f"{name}: pixel size must be a positive number of A/px, got "
                         f"{pixel_size_angstrom}")
    arr = check_image(image, name=name)
    if progress:
        progress("whole image")
    lattice, values, shifts = raw_estimates(arr, pixel_size_angstrom=pixel_size_angstrom,
                                            name=name)
    spreads: dict[str, list[float]] = {axis: [] for axis in values}
    quadrants = _quadrants(arr)
    used = 0
    for index, part in enumerate(quadrants):
        if progress:
            progress(f"quadrant {index + 1}/{len(quadrants)}")
        try:
            _, part_values, _ = raw_estimates(part, pixel_size_angstrom=pixel_size_angstrom,
                                              name=f"{name} quadrant {index + 1}")
        except StembenchError:
            continue
        used += 1
        for axis, value in part_values.items():
            spreads[axis].append(value)
    estimates = {
        axis: Estimate(axis, float(value), _uncertainty(axis, value, spreads[axis]),
                       _UNITS[axis], _METHODS[axis])
        for axis, value in values.items()
    }
    if math.isfinite(values["contrast"]):
        _, smooth_gap = estimate_contrast(arr)
        old = estimates["contrast"]
        estimates["contrast"] = Estimate("contrast", old.value,
                                         math.hypot(old.uncertainty, smooth_gap), "",
                                         old.method)
    return Assessment(name, (int(arr.shape[0]), int(arr.shape[1])), float(pixel_size_angstrom),
                      lattice, estimates, shifts, used)
