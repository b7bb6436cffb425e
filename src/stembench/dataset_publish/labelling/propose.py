"""Propose column labels for a real image, each marked ``sure`` or ``unsure``, for review.

Positions come from the best classical detector stembench has, the Atomap-style pipeline
(:class:`stembench.endpoints.models.classical.AtomapLike`: local maxima, centre of mass and a
batched 2D Gaussian refinement of every column). Each proposed column is then fitted once
more, on the min-max normalised image, as ``A exp(-r^2 / 2 s^2) + B`` on a disc of
:data:`WINDOW_FRACTION` of its nearest-neighbour distance (at most twice that of the median
column) around the refined centre: ``A`` and
``B`` by linear least squares for each width ``s`` of a grid, keeping the width of least
residual. A column is ``sure`` when all of these hold, ``unsure`` otherwise (the reasons are
written beside it):

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
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

from stembench.errors import InputError

__all__ = [
    "MAX_CHI2",
    "MIN_RELATIVE_AMPLITUDE",
    "MIN_T",
    "WIDTH_RANGE",
    "WINDOW_FRACTION",
    "LabelProposal",
    "fit_columns",
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
#: Standard deviation of white noise left after subtracting a 1 px Gaussian smoothing,
#: relative to the noise's own.
_HIGHPASS_NOISE = 0.77
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


def _discs(image: NDArray[np.float64], xy: NDArray[np.float64], radius: NDArray[np.float64]
           ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_],
                      NDArray[np.bool_]]:
    """Windows around the rounded centres: values, squared distance to the exact centre,
    the disc mask (inside the image), and whether the whole disc lies inside the image."""
    half = int(np.ceil(radius.max()))
    padded = np.pad(image, half, mode="edge")
    size = 2 * half + 1
    cols, rows = np.rint(xy[:, 0]).astype(np.int64), np.rint(xy[:, 1]).astype(np.int64)
    values = sliding_window_view(padded, (size, size))[rows, cols]
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    dx = (cols - xy[:, 0])[:, None, None] + offsets[None, None, :]
    dy = (rows - xy[:, 1])[:, None, None] + offsets[None, :, None]
    r2 = dx * dx + dy * dy
    disc = r2 <= radius[:, None, None] ** 2
    inside_rows = (rows[:, None] + offsets[None, :] >= 0) & (
        rows[:, None] + offsets[None, :] < image.shape[0])
    inside_cols = (cols[:, None] + offsets[None, :] >= 0) & (
        cols[:, None] + offsets[None, :] < image.shape[1])
    inside = inside_rows[:, :, None] & inside_cols[:, None, :]
    whole = ~(disc & ~inside).any(axis=(1, 2))
    return values, r2, disc & inside, whole


def fit_columns(image: NDArray[np.float64], xy: NDArray[np.float64]
                ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                           NDArray[np.float64], NDArray[np.bool_]]:
    """Fit every column as a Gaussian on a flat background (see the module docstring).

    Returns
    -------
    amplitude, sigma_px, chi2, t_value : ndarray, shape (N,)
    whole : ndarray of bool
        The fit window lies wholly inside the image.
    """
    n = len(xy)
    nearest = cKDTree(xy).query(xy, k=2)[0][:, 1] if n > 1 else np.full(n, 10.0)
    cap = max(2.0, 2.0 * WINDOW_FRACTION * float(np.median(nearest)))  # isolated columns
    radius = np.clip(WINDOW_FRACTION * nearest, 2.0, cap)
    values, r2, mask, whole = _discs(image, xy, radius)
    highpass, _, _, _ = _discs(image - ndimage.gaussian_filter(image, 1.0, mode="nearest"),
                               xy, radius)
    weight = mask.reshape(n, -1).astype(np.float64)
    v, d2 = values.reshape(n, -1), r2.reshape(n, -1)
    count = weight.sum(axis=1)
    mean_v = (weight * v).sum(axis=1) / count
    noise_var = (weight * highpass.reshape(n, -1) ** 2).sum(axis=1) / count / _HIGHPASS_NOISE**2
    best = np.full(n, np.inf)
    out = np.zeros((4, n))
    for sigma in np.geomspace(0.5, float(radius.max()), 16):
        g = np.exp(-d2 / (2.0 * sigma * sigma))
        mean_g = (weight * g).sum(axis=1) / count
        spread = (weight * (g - mean_g[:, None]) ** 2).sum(axis=1)
        amp = (weight * (g - mean_g[:, None]) * v).sum(axis=1) / np.maximum(spread, 1e-12)
        base = mean_v - amp * mean_g
        sse = (weight * (v - amp[:, None] * g - base[:, None]) ** 2).sum(axis=1)
        se = np.sqrt(sse / np.maximum(count - 3, 1) / np.maximum(spread, 1e-12))
        better = (sse < best) & (sigma <= radius)
        best = np.where(better, sse, best)
        out = np.where(better, np.stack([amp, np.full(n, sigma), sse, amp / np.maximum(
            se, 1e-12)]), out)
    chi2 = out[2] / np.maximum(count - 3, 1) / np.maximum(noise_var, 1e-300)
    return out[0], out[1], chi2, out[3], whole


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
    from stembench.endpoints.models.classical import AtomapLike

    detector = AtomapLike(min_spacing_angstrom=min_spacing_angstrom)
    xy = detector.locate(image, pixel_size)
    if len(xy) == 0:
        raise InputError(f"no column found (pixel size {pixel_size} A/px, minimum spacing "
                         f"{min_spacing_angstrom} A): check both")
    data = np.asarray(image, dtype=np.float64)
    low, high = float(data.min()), float(data.max())
    normalised = (data - low) / (high - low)
    amp, sigma, chi2, t_value, whole = fit_columns(normalised, xy)
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
