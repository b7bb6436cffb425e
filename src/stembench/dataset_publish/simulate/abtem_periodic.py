"""One period of an abTEM image evaluated anywhere: source blur, Fourier upsampling, spline.

:func:`periodic_spline` blurs a simulated period by the effective source (exactly, in
Fourier space), upsamples it to at most :data:`INTERPOLATION_SAMPLING_ANGSTROM` and returns
its cubic-spline coefficients; :func:`evaluate_periodic` reads them at any beam positions,
wrapping around the period. The backend (:mod:`.abtem_backend`) keeps one spline per
structure.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import fft, ndimage, signal

from stembench.dataset_publish.simulate.abtem_cache import PeriodicImage
from stembench.imaging.gaussian import FWHM_PER_SIGMA

__all__ = ["INTERPOLATION_SAMPLING_ANGSTROM", "PeriodicSpline", "evaluate_periodic",
           "gaussian_blur_periodic", "periodic_image", "periodic_spline"]

INTERPOLATION_SAMPLING_ANGSTROM = 0.04
"""The cached image is Fourier-upsampled to at most this sampling before spline evaluation."""

PeriodicSpline = tuple[NDArray[np.float64], PeriodicImage, tuple[float, float]]
"""Spline coefficients of the upsampled period, the period itself, and the fine (x, y) step."""


def periodic_image(array: NDArray[np.float64], extent: tuple[float, float]) -> PeriodicImage:
    """A period of ``extent`` ``(x, y)`` A sampled by ``array`` (rows, cols)."""
    rows, cols = array.shape
    return PeriodicImage(array, (extent[0] / cols, extent[1] / rows), extent)


def gaussian_blur_periodic(image: PeriodicImage, fwhm_angstrom: float) -> NDArray[np.float64]:
    """Blur one period by a Gaussian of the given FWHM (A), exactly, in Fourier space."""
    if fwhm_angstrom <= 0:
        return image.array
    sigma = fwhm_angstrom / FWHM_PER_SIGMA
    rows, cols = image.array.shape
    ky = fft.fftfreq(rows, d=image.sampling_angstrom[1])[:, None]
    kx = fft.fftfreq(cols, d=image.sampling_angstrom[0])[None, :]
    transfer = np.exp(-2.0 * math.pi**2 * sigma**2 * (kx**2 + ky**2))
    return np.real(fft.ifft2(fft.fft2(image.array) * transfer))


def periodic_spline(image: PeriodicImage, source_fwhm_angstrom: float) -> PeriodicSpline:
    """Spline coefficients of the source-blurred, Fourier-upsampled period ``image``."""
    blurred = gaussian_blur_periodic(image, source_fwhm_angstrom)
    fine_shape = tuple(
        max(n, math.ceil(length / INTERPOLATION_SAMPLING_ANGSTROM))
        for n, length in zip(blurred.shape, image.extent_angstrom[::-1], strict=True)
    )
    fine = signal.resample(
        signal.resample(blurred, fine_shape[0], axis=0), fine_shape[1], axis=1
    )
    coefficients = ndimage.spline_filter(fine, order=3, mode="grid-wrap")
    fine_sampling = (
        image.extent_angstrom[0] / fine_shape[1],
        image.extent_angstrom[1] / fine_shape[0],
    )
    return (coefficients, image, fine_sampling)


def evaluate_periodic(spline: PeriodicSpline, x: NDArray[np.float64], y: NDArray[np.float64],
                      origin_angstrom: tuple[float, float]) -> NDArray[np.float64]:
    """The splined period at beam positions ``(x, y)`` A (same shape), the period's (0, 0)
    at ``origin_angstrom``.

    Parameters
    ----------
    spline : PeriodicSpline
        The period's spline (:func:`periodic_spline`).
    x, y : numpy.ndarray
        Beam positions in angstrom, any (equal) shape.
    origin_angstrom : tuple of float
        Where the period's (0, 0) lies, ``(x, y)`` in angstrom.
    """
    coefficients, image, fine_sampling = spline
    period_x, period_y = image.extent_angstrom
    cols = np.mod(x - origin_angstrom[0], period_x) / fine_sampling[0]
    rows = np.mod(y - origin_angstrom[1], period_y) / fine_sampling[1]
    values = ndimage.map_coordinates(
        coefficients, [rows.ravel(), cols.ravel()], order=3, mode="grid-wrap", prefilter=False
    )
    return np.asarray(values.reshape(x.shape), dtype=np.float64)
