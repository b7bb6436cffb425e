"""Image degradations with explicit units, and the image-quality numbers the metadata reports.

* Resolution: an extra Gaussian blur of FWHM ``s`` raises the effective resolution to
  ``sqrt(r0**2 + s**2)`` (``r0`` the probe FWHM).
* Contrast: ``(max - min) / max``, set by adding a constant (positive or negative) offset, or
  changed by a gamma curve.
* Dose: Poisson counting at ``dose`` electrons per square angstrom; the brightest pixel of the
  noise-free image receives ``dose * pixel_area * detector_fraction`` electrons on average. In
  the probe-current view ``dose = I * t / (e * pixel_area)``.
* PSNR: ``20 log10(max(clean) / rms(noisy - clean))`` in dB, with both on the same scale.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from stembench.errors import InputError
from stembench.imaging.gaussian import FWHM_PER_SIGMA

__all__ = [
    "ELEMENTARY_CHARGE_C",
    "apply_gamma",
    "blur_to_resolution",
    "contrast",
    "dose_from_current",
    "dwell_time_s",
    "poisson_at_dose",
    "psnr_db",
    "set_contrast",
]

ELEMENTARY_CHARGE_C = 1.602176634e-19


def _positive(value: float, what: str) -> float:
    if not (np.isfinite(value) and value > 0):
        raise InputError(f"{what} must be a positive number, got {value}")
    return float(value)


def blur_to_resolution(image: NDArray[np.floating], *, pixel_size_angstrom: float,
                       probe_fwhm_angstrom: float, resolution_angstrom: float
                       ) -> tuple[NDArray[np.float64], float]:
    """Blur ``image`` so that its effective resolution becomes ``resolution_angstrom``.

    Returns the blurred image and the extra blur FWHM ``s`` in angstrom
    (``resolution**2 = probe_fwhm**2 + s**2``). Raises InputError if the target is finer than
    the probe.

    Parameters
    ----------
    image : numpy.ndarray
        The image, 2-D.
    pixel_size_angstrom : float
        Pixel size, angstrom per pixel.
    probe_fwhm_angstrom : float
        FWHM of the probe the image was made with, angstrom.
    resolution_angstrom : float
        The resolution (FWHM) wanted, angstrom; at least ``probe_fwhm_angstrom``.
    """
    pixel = _positive(pixel_size_angstrom, "pixel size (A/px)")
    r0 = _positive(probe_fwhm_angstrom, "probe FWHM (A)")
    target = _positive(resolution_angstrom, "target resolution (A)")
    if target < r0:
        raise InputError(f"target resolution {target:.3f} A is finer than the probe FWHM "
                         f"{r0:.3f} A; blur can only make it coarser")
    blur_fwhm = float(np.sqrt(target**2 - r0**2))
    sigma_px = blur_fwhm / FWHM_PER_SIGMA / pixel
    out = ndimage.gaussian_filter(np.asarray(image, np.float64), sigma_px, mode="reflect")
    return out, blur_fwhm


def contrast(image: NDArray[np.floating]) -> float:
    """Contrast ``(max - min) / max`` of an image with a positive maximum."""
    arr = np.asarray(image, np.float64)
    top = float(arr.max())
    if top <= 0:
        raise InputError(f"contrast needs a positive image maximum, got {top}")
    return float((top - arr.min()) / top)


def set_contrast(image: NDArray[np.floating], *, target_contrast: float
                 ) -> tuple[NDArray[np.float64], float]:
    """Add the constant offset that gives ``(max - min) / max == target_contrast``.

    Returns the image and the offset added (negative to raise contrast up to 1).
    """
    if not (np.isfinite(target_contrast) and 0 < target_contrast <= 1):
        raise InputError(f"target contrast must be in (0, 1], got {target_contrast}")
    arr = np.asarray(image, np.float64)
    top, bottom = float(arr.max()), float(arr.min())
    if top <= bottom:
        raise InputError("cannot set the contrast of a flat image")
    offset = (top - bottom) / target_contrast - top
    return arr + offset, offset


def apply_gamma(image: NDArray[np.floating], *, gamma: float) -> NDArray[np.float64]:
    """``max * (image / max)**gamma`` for a non-negative image; gamma > 1 raises contrast."""
    g = _positive(gamma, "gamma")
    arr = np.asarray(image, np.float64)
    if arr.min() < 0:
        raise InputError(f"gamma needs a non-negative image, minimum is {arr.min()}")
    top = float(arr.max())
    return np.asarray(top * (arr / top) ** g, dtype=np.float64)


def dwell_time_s(*, dose_e_per_A2: float, pixel_size_angstrom: float,
                 probe_current_pA: float) -> float:
    """Dwell time per pixel in seconds that gives ``dose`` at ``probe_current``.

    Parameters
    ----------
    dose_e_per_A2 : float
        Electron dose, electrons per square angstrom.
    pixel_size_angstrom : float
        Pixel size, angstrom per pixel.
    probe_current_pA : float
        Probe current, pA.
    """
    dose = _positive(dose_e_per_A2, "dose (e-/A^2)")
    area = _positive(pixel_size_angstrom, "pixel size (A/px)") ** 2
    current = _positive(probe_current_pA, "probe current (pA)") * 1e-12
    return dose * area * ELEMENTARY_CHARGE_C / current


def dose_from_current(*, probe_current_pA: float, dwell_time_s: float,
                      pixel_size_angstrom: float) -> float:
    """Dose in e-/A^2 from probe current (pA), dwell time (s) and pixel size (A/px).

    Parameters
    ----------
    probe_current_pA : float
        Probe current, pA.
    dwell_time_s : float
        Dwell time per pixel, s.
    pixel_size_angstrom : float
        Pixel size, angstrom per pixel.
    """
    current = _positive(probe_current_pA, "probe current (pA)") * 1e-12
    time = _positive(dwell_time_s, "dwell time (s)")
    area = _positive(pixel_size_angstrom, "pixel size (A/px)") ** 2
    return current * time / (ELEMENTARY_CHARGE_C * area)


def poisson_at_dose(clean: NDArray[np.floating], *, dose_e_per_A2: float,
                    pixel_size_angstrom: float, rng: np.random.Generator,
                    detector_fraction: float = 1.0
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Poisson counts of ``clean`` at a dose.

    Parameters
    ----------
    clean : ndarray
        Non-negative noise-free image (any scale).
    dose_e_per_A2 : float
        Electron dose in e-/A^2.
    pixel_size_angstrom : float
        Pixel size in A/px.
    rng : numpy.random.Generator
        Random source.
    detector_fraction : float
        Fraction of the beam electrons the detector counts at the brightest pixel.

    Returns
    -------
    noisy : ndarray
        Counted electrons per pixel.
    expected : ndarray
        Mean counts per pixel (the noise-free image on the same scale).
    peak_counts : float
        Mean counts at the brightest pixel, electrons.
    """
    dose = _positive(dose_e_per_A2, "dose (e-/A^2)")
    pixel = _positive(pixel_size_angstrom, "pixel size (A/px)")
    fraction = _positive(detector_fraction, "detector fraction")
    arr = np.asarray(clean, np.float64)
    if arr.min() < 0:
        raise InputError(f"Poisson noise needs a non-negative image, minimum is {arr.min()}")
    peak_counts = dose * pixel**2 * fraction
    expected = arr / arr.max() * peak_counts
    return rng.poisson(expected).astype(np.float64), expected, float(peak_counts)


def psnr_db(noisy: NDArray[np.floating], clean: NDArray[np.floating]) -> float:
    """Peak signal-to-noise ratio in dB, ``20 log10(max(clean) / rms(noisy - clean))``.

    Returns ``inf`` when the images are identical.
    """
    a = np.asarray(noisy, np.float64)
    b = np.asarray(clean, np.float64)
    if a.shape != b.shape:
        raise InputError(f"PSNR needs equal shapes, got {a.shape} and {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    if mse == 0:
        return float("inf")
    return float(20 * np.log10(b.max() / np.sqrt(mse)))
