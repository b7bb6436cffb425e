"""Propose column labels for a real image, each marked ``sure`` or ``unsure``, for review.

Positions come from the best classical detector stembench has, the Atomap-style pipeline
(:func:`stembench.imaging.peaks.find_columns`, the ``atomap-like`` model's: local maxima,
centre of mass and a batched 2D Gaussian refinement of every column). Each proposed column is
then fitted once more, on the min-max normalised image, as ``A exp(-r^2 / 2 s^2) + B`` on a
disc of :data:`WINDOW_FRACTION` of its nearest-neighbour distance (at most twice that of the
median column) around the refined centre, by least squares with the centre fixed and
``0.5 px < s <=`` the disc radius (:func:`stembench.imaging.gaussian.fit_amplitudes`). A
column is ``sure`` when all of these hold, ``unsure`` otherwise (the reasons are written
beside it):

* **significant**: ``A`` is at least :data:`MIN_T` standard errors above zero;
* **contrast**: ``A`` is at least :data:`MIN_RELATIVE_AMPLITUDE` of the brightest columns' (95th
  percentile);
* **fit quality**: the reduced chi-square of the fit, against the window's own pixel noise
  (from the image less its 1 px Gaussian smoothing), is at most :data:`MAX_CHI2`: the
  residual is noise, not unexplained structure (a merged pair, a fringe, a step);
* **width**: ``s`` is within :data:`WIDTH_RANGE` times the median column's width;
* **inside**: the window lies wholly inside the image.

Unsure columns are don't-care when the corrected CSV is imported and scored
(:data:`stembench.scoring.DONT_CARE_TYPES`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from stembench.errors import InputError
from stembench.imaging.gaussian import fit_amplitudes
from stembench.imaging.peaks import AtomapOptions, find_columns

__all__ = [
    "MAX_CHI2",
    "MIN_RELATIVE_AMPLITUDE",
    "MIN_T",
    "WIDTH_RANGE",
    "WINDOW_FRACTION",
    "LabelProposal",
    "propose_labels",
]

#: Fit window radius as a fraction of the column's nearest-neighbour distance (Atomap's).
WINDOW_FRACTION = 0.4
#: Amplitude in standard errors that makes a column significant.
MIN_T = 3.0
#: Amplitude relative to the brightest columns (95th percentile) below which a column is
#: faint: the benchmark's definition of a column visible in HAADF.
MIN_RELATIVE_AMPLITUDE = 0.1
#: Largest reduced chi-square of a good fit.
MAX_CHI2 = 2.0
#: Allowed width relative to the median column's width.
WIDTH_RANGE = (0.5, 2.0)


@dataclass(frozen=True)
class LabelProposal:
    """Proposed columns with their fit and confidence.

    Attributes
    ----------
    coords : ndarray, shape (N, 2)
        x, y in pixels.
    amplitude : ndarray, shape (N,)
        Fitted Gaussian amplitude on the [0, 1]-normalised image.
    sigma_px : ndarray, shape (N,)
        Fitted Gaussian width, pixels.
    chi2 : ndarray, shape (N,)
        Reduced chi-square of the fit against the window's pixel noise.
    t_value : ndarray, shape (N,)
        Amplitude over its standard error.
    reasons : tuple of str
        Empty for a sure column, else why it is unsure (``"; "``-separated).
    pixel_size : float
        A/px used for detection.
    """

    coords: NDArray[np.float64]
    amplitude: NDArray[np.float64]
    sigma_px: NDArray[np.float64]
    chi2: NDArray[np.float64]
    t_value: NDArray[np.float64]
    reasons: tuple[str, ...]
    pixel_size: float

    @property
    def sure(self) -> NDArray[np.bool_]:
        """Per column: no reason to doubt it."""
        return np.array([not r for r in self.reasons], dtype=bool)

    def write_csv(self, path: str | Path) -> Path:
        """Write ``x,y,confidence,amplitude,sigma_px,chi2,t_value,reason`` (pixels)."""
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["x", "y", "confidence", "amplitude", "sigma_px", "chi2",
                             "t_value", "reason"])
            for k, (x, y) in enumerate(self.coords):
                writer.writerow([f"{x:.3f}", f"{y:.3f}",
                                 "unsure" if self.reasons[k] else "sure",
                                 f"{self.amplitude[k]:.4g}", f"{self.sigma_px[k]:.3g}",
                                 f"{self.chi2[k]:.3g}", f"{self.t_value[k]:.3g}",
                                 self.reasons[k]])
        return path


def propose_labels(image: NDArray[np.floating], *, pixel_size: float,
                   min_spacing_angstrom: float = 1.8) -> LabelProposal:
    """Detect columns and mark each ``sure`` or ``unsure``.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        The image, any intensity scale.
    pixel_size : float
        A/px.
    min_spacing_angstrom : float
        Smallest projected distance between the columns to find, A (the detector's
        ``min_spacing_angstrom``).

    Returns
    -------
    LabelProposal

    Raises
    ------
    InputError
        If the image or pixel size is unusable, or no column is found.
    """
    xy = find_columns(image, pixel_size, AtomapOptions(min_spacing_angstrom=min_spacing_angstrom))
    if len(xy) == 0:
        raise InputError(f"no column found (pixel size {pixel_size} A/px, minimum spacing "
                         f"{min_spacing_angstrom} A): check both")
    data = np.asarray(image, dtype=np.float64)
    low, high = float(data.min()), float(data.max())
    normalised = (data - low) / (high - low)
    amp, sigma, chi2, t_value, whole = fit_amplitudes(normalised, xy,
                                                       window_fraction=WINDOW_FRACTION)
    bright = float(np.percentile(amp, 95))
    median_sigma = float(np.median(sigma))
    reasons = []
    for k in range(len(xy)):
        why = []
        if t_value[k] < MIN_T:
            why.append(f"weak (amplitude {t_value[k]:.1f} standard errors)")
        if amp[k] < MIN_RELATIVE_AMPLITUDE * bright:
            why.append(f"faint ({amp[k] / bright:.2f} of the brightest columns)")
        if chi2[k] > MAX_CHI2:
            why.append(f"poor fit (reduced chi-square {chi2[k]:.1f})")
        ratio = sigma[k] / median_sigma
        if not WIDTH_RANGE[0] <= ratio <= WIDTH_RANGE[1]:
            why.append(f"width {ratio:.2f} x the median")
        if not whole[k]:
            why.append("cut by the image edge")
        reasons.append("; ".join(why))
    return LabelProposal(xy, amp, sigma, chi2, t_value, tuple(reasons), float(pixel_size))
