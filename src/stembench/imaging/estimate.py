"""Estimate an image's position on the benchmark's quality axes from the image alone.

Every estimator starts from the lattice of :mod:`stembench.imaging.lattice`:

* **atoms per 100 px** = ``100 / spacing_px``: the benchmark's ``pixel size / column spacing x
  100`` with both in pixels (the spacing is the median nearest-neighbour distance of the
  visible columns of the averaged unit cell).
* **resolution** (effective probe FWHM, pm): the whole-image fit of the visible columns as
  2D Gaussians of one shared width (:mod:`stembench.imaging.columns`). Calibrated on the
  generator's own probe model (200 kV, 21.4 mrad, 0.5 A source; FWHM :data:`PROBE_FWHM_PM`)
  by fitting clean and blurred images of lattices that are not benchmark materials
  (square-2D, rectangular-2D, hBN at 0.10-0.20 A/px): the fitted FWHM is 0.97-1.05 times
  the true resolution from 75 to 195 pm, so :data:`GAUSSIAN_FIT_FWHM_PM` equals the probe
  FWHM and the correction ``sqrt(fit**2 - GAUSSIAN_FIT_FWHM_PM**2 + PROBE_FWHM_PM**2)``
  is the identity for this probe. Once the FWHM exceeds ~0.6 of the column spacing the
  columns blur into each other, only first-order reflections remain and the width is not
  identifiable: the fit then errs by 10-40 % either way.
* **PSNR** (dB) = ``20 log10(peak / noise_rms)``, the benchmark's definition with the clean
  image unknown: ``noise_rms`` from the median power of the spectrum away from every Bragg
  reflection and from low frequencies (white noise is flat there, the periodic signal is
  not), ``peak`` from a radial polynomial fitted to the pixels near the brightest columns.
* **contrast** = ``(max - min) / max`` of the stored image, exactly as the benchmark
  computes it; the uncertainty is its difference to the same number on a lightly smoothed
  copy (noise inflates the stored image's range).
* **fly-back and drift** (px, px per line): each scan line's x shift against the
  Bragg-filtered image (a distortion-free lattice); the mean squared difference of shifts
  ``k`` lines apart is ``k * drift**2 + 2 * flyback**2`` for the generator's random-walk
  drift and independent per-line fly-back error, fitted over ``k = 1..8``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from stembench.imaging.gaussian import FWHM_PER_SIGMA
from stembench.imaging.lattice import Lattice2D, power_spectrum

__all__ = [
    "GAUSSIAN_FIT_FWHM_PM",
    "MAX_PSNR_DB",
    "PROBE_FWHM_PM",
    "Estimate",
    "estimate_contrast",
    "estimate_distortion",
    "estimate_psnr",
    "estimate_resolution",
]

#: FWHM of the generator's default probe (200 kV, 21.4 mrad, 0.5 A source), pm.
PROBE_FWHM_PM = 75.0
#: FWHM of the 2D Gaussian that the lattice fit gives for that probe alone, pm (calibrated on
#: generator images of non-benchmark lattices; see the module docstring).
GAUSSIAN_FIT_FWHM_PM = 75.0
#: PSNR estimates are capped here: above it the noise is too weak to measure.
MAX_PSNR_DB = 60.0


@dataclass(frozen=True)
class Estimate:
    """One estimated quality number.

    Attributes
    ----------
    axis : str
        Series name of the quality axis (``"pixel_size"``, ``"resolution"``, ...).
    value : float
        Estimate in the axis' units (NaN when it could not be estimated).
    uncertainty : float
        One-sigma uncertainty in the same units.
    unit : str
        Units of ``value``.
    method : str
        How it was estimated, in a few words.
    """

    axis: str
    value: float
    uncertainty: float
    unit: str
    method: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN and inf become None)."""
        data = asdict(self)
        for key in ("value", "uncertainty"):
            data[key] = float(data[key]) if np.isfinite(data[key]) else None
        return data


def estimate_resolution(image: NDArray[np.float64], lattice: Lattice2D, *,
                        pixel_size_angstrom: float) -> float:
    """Effective probe FWHM in pm (see the module docstring for the calibration).

    Parameters
    ----------
    image : numpy.ndarray
        The image, 2-D.
    lattice : Lattice2D
        Its fitted lattice (column width ``sigma_px`` in pixels).
    pixel_size_angstrom : float
        Pixel size, angstrom per pixel.
    """
    fit_pm = lattice.sigma_px * FWHM_PER_SIGMA * pixel_size_angstrom * 100.0
    squared = fit_pm**2 - GAUSSIAN_FIT_FWHM_PM**2 + PROBE_FWHM_PM**2
    return float(np.sqrt(max(squared, 0.0)))


def _bragg_mask(kx: NDArray[np.float64], ky: NDArray[np.float64], lattice: Lattice2D,
                radius: float) -> NDArray[np.bool_]:
    k = np.column_stack([kx.ravel(), ky.ravel()])
    indices = k @ np.linalg.inv(lattice.reciprocal)
    nearest = np.round(indices) @ lattice.reciprocal
    distance = np.hypot(*(k - nearest).T)
    return (distance <= radius).reshape(kx.shape)


def noise_rms(image: NDArray[np.float64], lattice: Lattice2D) -> float:
    """Standard deviation of white noise in the image, from the off-lattice spectrum."""
    power, kx, ky, window_energy = power_spectrum(image)
    step = 1.0 / min(image.shape)
    region = ~_bragg_mask(kx, ky, lattice, 4.0 * step) & (np.hypot(kx, ky) > 0.25)
    if region.sum() < 100:
        region = ~_bragg_mask(kx, ky, lattice, 3.0 * step) & (np.hypot(kx, ky) > 8 * step)
    return float(np.sqrt(np.median(power[region]) / np.log(2.0) / window_energy))


def column_peak(image: NDArray[np.float64], lattice: Lattice2D, sigma_px: float) -> float:
    """Noise-free peak intensity of the brightest columns: ``c0`` of ``c0 + c1 r^2 + c2 r^4``
    fitted to every pixel within ``0.9 sigma`` of a brightest-column site."""
    rows, cols = image.shape
    y, x = np.mgrid[0:rows, 0:cols]
    frac = np.column_stack([x.ravel(), y.ravel()]) @ lattice.reciprocal.T
    delta = frac - lattice.columns_frac[0]
    delta -= np.round(delta)
    d = delta @ lattice.real
    r2 = d[:, 0] ** 2 + d[:, 1] ** 2
    near = r2 <= max(0.9 * sigma_px, 1.0) ** 2
    matrix = np.column_stack([np.ones(near.sum()), r2[near], r2[near] ** 2])
    coef, *_ = np.linalg.lstsq(matrix, image.ravel()[near], rcond=None)
    return float(coef[0])


def estimate_psnr(image: NDArray[np.float64], lattice: Lattice2D, sigma_px: float) -> float:
    """PSNR in dB, ``20 log10(peak / noise_rms)`` (see the module docstring).

    Parameters
    ----------
    image : numpy.ndarray
        The image, 2-D.
    lattice : Lattice2D
        Its fitted lattice.
    sigma_px : float
        Gaussian width (standard deviation) of the columns, pixels.
    """
    rms = noise_rms(image, lattice)
    peak = column_peak(image, lattice, sigma_px)
    if rms <= 0:
        return MAX_PSNR_DB
    return float(min(20 * np.log10(max(peak, 1e-300) / rms), MAX_PSNR_DB))


def estimate_contrast(image: NDArray[np.float64]) -> tuple[float, float]:
    """``(max - min) / max`` of the image and its difference to a lightly smoothed copy."""
    top = float(image.max())
    stored = (top - float(image.min())) / top if top > 0 else float("nan")
    smooth = ndimage.gaussian_filter(image, 1.0)
    smooth_top = float(smooth.max())
    smoothed = (smooth_top - float(smooth.min())) / smooth_top if smooth_top > 0 else stored
    return stored, abs(stored - smoothed)


def _row_shifts(image: NDArray[np.float64], reference: NDArray[np.float64], max_lag: int
                ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    a = image - image.mean(axis=1, keepdims=True)
    b = reference - reference.mean(axis=1, keepdims=True)
    n = image.shape[1]
    lags = np.arange(-max_lag, max_lag + 1)
    corr = np.empty((image.shape[0], len(lags)))
    for j, lag in enumerate(lags):
        if lag >= 0:
            corr[:, j] = np.mean(a[:, lag:] * b[:, :n - lag], axis=1)
        else:
            corr[:, j] = np.mean(a[:, :n + lag] * b[:, -lag:], axis=1)
    best = np.clip(np.argmax(corr, axis=1), 1, len(lags) - 2)
    rows = np.arange(len(best))
    lo, mid, hi = corr[rows, best - 1], corr[rows, best], corr[rows, best + 1]
    denom = lo - 2 * mid + hi
    sub = np.where(denom < 0, 0.5 * (lo - hi) / np.where(denom < 0, denom, -1.0), 0.0)
    strength = b.std(axis=1)
    valid = strength >= 0.5 * np.median(strength)
    return lags[best] + np.clip(sub, -0.5, 0.5), valid


def estimate_distortion(image: NDArray[np.float64], lattice: Lattice2D
                        ) -> tuple[float, float, NDArray[np.float64]]:
    """Fly-back (px) and drift (px per line) from per-line x shifts (module docstring).

    Returns
    -------
    flyback_px, drift_px_per_line : float
    shifts_px : ndarray
        The x shift of every line against the Bragg-filtered image (NaN where unusable).
    """
    spectrum = np.fft.fft2(image - image.mean())
    kx = np.fft.fftfreq(image.shape[1])[None, :] * np.ones((image.shape[0], 1))
    ky = np.fft.fftfreq(image.shape[0])[:, None] * np.ones((1, image.shape[1]))
    mask = _bragg_mask(kx, ky, lattice, 1.5 / min(image.shape))
    reference = np.fft.ifft2(spectrum * mask).real
    max_lag = int(np.clip(np.floor(lattice.spacing_px / 2), 2, image.shape[1] // 4))
    shifts, valid = _row_shifts(image, reference, max_lag)
    shifts = np.where(valid, shifts, np.nan)
    lags = np.arange(1, 9)
    msd = []
    for k in lags:
        diff = shifts[k:] - shifts[:-k]
        diff = diff[np.isfinite(diff)]
        msd.append(float(np.mean(diff**2)) if diff.size > 4 else np.nan)
    msd_arr = np.asarray(msd)
    ok = np.isfinite(msd_arr)
    if ok.sum() < 3:
        return float("nan"), float("nan"), shifts
    slope, intercept = np.polyfit(lags[ok], msd_arr[ok], 1)
    flyback = float(np.sqrt(max(intercept, 0.0) / 2.0))
    drift = float(np.sqrt(max(slope, 0.0)))
    return flyback, drift, shifts
