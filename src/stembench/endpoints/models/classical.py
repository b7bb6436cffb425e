"""Classical column finders that need no training: an Atomap-style pipeline and LoG blobs.

Every length parameter is physical (angstrom) and converted to pixels with the image's
pixel size, so one setting serves every image of a lattice family; nothing is tuned per
image. Images of any intensity scale are min-max normalised first.

- :class:`AtomapLike` ("atomap-like") follows Atomap (Nord et al. 2017): local maxima with a
  minimum separation, removal of peaks closer than half of it, centre-of-mass refinement,
  then a 2D Gaussian refinement of every column, done for all columns at once by a batched
  Levenberg-Marquardt fit on fixed-size windows (:mod:`stembench.imaging.peaks`).
- :class:`LoGDetector` ("log-blob") finds Laplacian-of-Gaussian blobs over a range of scales
  set by the probe size, and refines each by a parabola through the filter response.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from stembench.endpoints.models.base import Model, ModelInfo
from stembench.errors import InputError
from stembench.imaging.gaussian import FWHM_PER_SIGMA
from stembench.imaging.peaks import (
    MIN_COLUMN_SPACING_ANGSTROM,
    AtomapOptions,
    drop_close_peaks,
    find_columns,
    normalised_image,
)

__all__ = ["AtomapLike", "LoGDetector"]

_VERSION = "1.0"
#: The FWHM / sigma ratio of log-blob 1.0's blob scales: 2 sqrt(2 ln 2)
#: (:data:`stembench.imaging.gaussian.FWHM_PER_SIGMA`) rounded as that version defines it;
#: the exact ratio would change its results, and the cutoffs measured with it.
_LOG_FWHM_PER_SIGMA = round(FWHM_PER_SIGMA, 3)


class AtomapLike(Model):
    """Atomap-style column finder: local maxima, centre of mass, 2D Gaussian refinement.

    The algorithm is :func:`stembench.imaging.peaks.find_columns`.

    Parameters
    ----------
    **options
        The settings of :class:`stembench.imaging.peaks.AtomapOptions` (keywords), each
        also readable as an attribute of the model.

    Raises
    ------
    InputError
        If an option is out of range.
    """

    def __init__(self, **options: float) -> None:
        self.options = AtomapOptions(**options)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        if name == "options":  # not set yet (unpickling)
            raise AttributeError(name)
        try:
            return getattr(self.options, name)
        except AttributeError:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute "
                                 f"{name!r}") from None

    @property
    def info(self) -> ModelInfo:
        """Name ``"atomap-like"``, framework ``"classical"``, no weights."""
        return ModelInfo("atomap-like", _VERSION, "classical", None)

    def separation_px(self, pixel_size: float) -> float:
        """Minimum peak separation in pixels for a pixel size in A/px."""
        return self.options.separation_px(pixel_size)

    def locate(self, image: NDArray[np.floating], pixel_size: float) -> NDArray[np.float64]:
        """Column positions (N, 2) as x, y in pixels; ``pixel_size`` in A/px.

        A column at the border can be refined off the image (its window is cut by the
        border); such a position is dropped, as a column outside the field of view is not one.
        """
        xy = find_columns(image, pixel_size, self.options)
        rows, cols = np.shape(image)
        on = ((xy[:, 0] >= -0.5) & (xy[:, 0] <= cols - 0.5)
              & (xy[:, 1] >= -0.5) & (xy[:, 1] <= rows - 0.5))
        return xy[on]


class LoGDetector(Model):
    """Laplacian-of-Gaussian blob detector with parabolic sub-pixel refinement.

    The blob scales searched run from ``sigma_range[0]`` to ``sigma_range[1]`` times the
    probe's Gaussian sigma (``probe_fwhm_angstrom / 2.355``), converted to pixels.

    Parameters
    ----------
    probe_fwhm_angstrom : float, optional
        Typical apparent column width (FWHM) in A. Default 1.0 A.
    sigma_range : tuple of float, optional
        Smallest and largest blob sigma as multiples of the probe sigma. Default (0.75, 1.5).
    num_sigma : int, optional
        Number of scales searched. Default 6.
    threshold : float, optional
        Minimum scale-normalised LoG response on the [0, 1]-normalised image. Default 0.05.
    min_spacing_angstrom : float, optional
        Blobs closer than half of it (in A) are merged, keeping the stronger. Default 1.8 A.
    """

    def __init__(
        self,
        *,
        probe_fwhm_angstrom: float = 1.0,
        sigma_range: tuple[float, float] = (0.75, 1.5),
        num_sigma: int = 6,
        threshold: float = 0.05,
        min_spacing_angstrom: float = MIN_COLUMN_SPACING_ANGSTROM,
    ) -> None:
        low, high = (float(v) for v in sigma_range)
        if not probe_fwhm_angstrom > 0:
            raise InputError(
                f"log-blob: probe_fwhm_angstrom must be > 0, got {probe_fwhm_angstrom}"
            )
        if not 0 < low <= high:
            raise InputError(f"log-blob: sigma_range must be 0 < low <= high, got {sigma_range}")
        if num_sigma < 1 or threshold < 0 or min_spacing_angstrom <= 0:
            raise InputError(
                "log-blob: need num_sigma >= 1, threshold >= 0, min_spacing_angstrom > 0; got "
                f"{num_sigma}, {threshold}, {min_spacing_angstrom}"
            )
        self.probe_fwhm_angstrom = float(probe_fwhm_angstrom)
        self.sigma_range = (low, high)
        self.num_sigma = int(num_sigma)
        self.threshold = float(threshold)
        self.min_spacing_angstrom = float(min_spacing_angstrom)

    @property
    def info(self) -> ModelInfo:
        """Name ``"log-blob"``, framework ``"classical"``, no weights."""
        return ModelInfo("log-blob", _VERSION, "classical", None)

    def sigmas_px(self, pixel_size: float) -> tuple[float, float]:
        """Smallest and largest blob sigma in pixels for a pixel size in A/px."""
        probe_sigma_px = self.probe_fwhm_angstrom / _LOG_FWHM_PER_SIGMA / pixel_size
        low, high = (max(0.7, f * probe_sigma_px) for f in self.sigma_range)
        return low, max(low, high)

    def locate(self, image: NDArray[np.floating], pixel_size: float) -> NDArray[np.float64]:
        """Column positions (N, 2) as x, y in pixels; ``pixel_size`` in A/px."""
        from skimage.feature import blob_log

        normalised = normalised_image(image, pixel_size, "log-blob")
        low, high = self.sigmas_px(pixel_size)
        blobs = blob_log(
            normalised, min_sigma=low, max_sigma=high,
            num_sigma=self.num_sigma if high > low else 1, threshold=self.threshold,
        )
        if len(blobs) == 0:
            return np.zeros((0, 2), dtype=np.float64)
        sigma = float(np.median(blobs[:, 2]))
        response = -(sigma**2) * ndimage.gaussian_laplace(normalised, sigma, mode="nearest")
        rows, cols = blobs[:, 0].astype(np.int64), blobs[:, 1].astype(np.int64)
        xy = np.stack([cols, rows], axis=1).astype(np.float64)
        xy += np.stack([_parabola_shift(response, rows, cols, axis=1),
                        _parabola_shift(response, rows, cols, axis=0)], axis=1)
        spacing_px = self.min_spacing_angstrom / pixel_size
        return drop_close_peaks(xy, response[rows, cols], max(1.0, spacing_px / 2.0))


def _parabola_shift(
    response: NDArray[np.float64], rows: NDArray[np.int64], cols: NDArray[np.int64], *, axis: int
) -> NDArray[np.float64]:
    """Sub-pixel offset of each maximum along ``axis`` from a parabola through 3 samples."""
    size = response.shape[axis]
    centre = rows if axis == 0 else cols
    lower, upper = np.clip(centre - 1, 0, size - 1), np.clip(centre + 1, 0, size - 1)
    if axis == 0:
        before, here, after = response[lower, cols], response[rows, cols], response[upper, cols]
    else:
        before, here, after = response[rows, lower], response[rows, cols], response[rows, upper]
    curvature = before - 2.0 * here + after
    interior = (centre > 0) & (centre < size - 1) & (curvature < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(interior, 0.5 * (before - after) / curvature, 0.0)
    return np.clip(shift, -0.5, 0.5)
