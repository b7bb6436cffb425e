"""The Atomap-style column finder: local maxima, centre of mass, 2D Gaussian refinement.

It follows Atomap (Nord et al. 2017): local maxima with a minimum separation, removal of
peaks closer than it, centre-of-mass refinement, then a 2D Gaussian refinement of every
column (:func:`stembench.imaging.gaussian.refine_centres`). The benchmark model
``atomap-like`` (:class:`stembench.endpoints.models.classical.AtomapLike`) and the labelling
assistant both find columns with :func:`find_columns`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

from stembench.errors import InputError
from stembench.imaging.gaussian import (
    HIGHPASS_NOISE,
    centre_of_mass,
    column_windows,
    refine_centres,
)
from stembench.validation import validate_image, validate_pixel_size

__all__ = ["MIN_COLUMN_SPACING_ANGSTROM", "NOISE_PEAK_SIGMAS",
           "AtomapOptions", "drop_close_peaks", "find_columns", "normalised_image"]

#: Smallest projected distance between visible columns in the benchmark's materials:
#: W to S2 in WS2 [001] (a / sqrt(3) = 1.82 A); SrTiO3 [100] cation to O is 1.95 A.
MIN_COLUMN_SPACING_ANGSTROM = 1.8


def normalised_image(image: NDArray[np.floating], pixel_size: float, model: str
                     ) -> NDArray[np.float64]:
    """Validate the inputs and return the image scaled to [0, 1] (all zeros if constant).

    Parameters
    ----------
    image : numpy.ndarray
        The image, 2-D.
    pixel_size : float
        Pixel size, angstrom per pixel (validated only).
    model : str
        The model's name, starting any error message.

    Raises
    ------
    InputError
        If the image is not 2D of at least 3x3 finite values, or ``pixel_size`` (A/px) is
        not a positive number; the message starts with ``model``.
    """
    array = validate_image(image, name=model, min_side=3)
    validate_pixel_size(pixel_size, name=model)
    low, high = float(array.min()), float(array.max())
    if high <= low:
        return np.zeros_like(array)
    return (array - low) / (high - low)


#: A peak must stand this many noise standard deviations above the background.
NOISE_PEAK_SIGMAS = 5.0


def _noise_std(image: NDArray[np.float64], smoothing_px: float) -> float:
    """Robust standard deviation of white pixel noise after a Gaussian smoothing.

    The noise level of ``image`` comes from the median absolute deviation of its
    difference to a 1-px Gaussian smoothing (for white noise that residual's standard
    deviation is 0.77 of the noise's); a Gaussian smoothing of ``smoothing_px`` then
    divides it by ``2 sqrt(pi) smoothing_px``.
    """
    residual = image - ndimage.gaussian_filter(image, 1.0, mode="nearest")
    mad = float(np.median(np.abs(residual - np.median(residual))))
    return 1.4826 * mad / HIGHPASS_NOISE / max(1.0, 2.0 * np.sqrt(np.pi) * smoothing_px)


def drop_close_peaks(
    xy: NDArray[np.float64], strength: NDArray[np.float64], distance: float
) -> NDArray[np.float64]:
    """Of every pair of peaks closer than ``distance`` px keep the stronger one.

    Parameters
    ----------
    xy : numpy.ndarray, shape (N, 2)
        Peak positions, x, y in pixels.
    strength : numpy.ndarray, shape (N,)
        Each peak's strength (larger is kept).
    distance : float
        Closest distance two kept peaks may have, pixels.
    """
    if len(xy) < 2:
        return xy
    order = np.argsort(-strength, kind="stable")
    ranked = xy[order]
    tree = cKDTree(ranked)
    keep = np.ones(len(ranked), dtype=bool)
    for i, j in sorted(tree.query_pairs(distance)):
        if keep[i] and keep[j]:
            keep[j] = False
    return ranked[keep]


def _nearest_neighbour_px(xy: NDArray[np.float64], fallback: float) -> NDArray[np.float64]:
    """Distance of every peak to its nearest other peak (``fallback`` when alone)."""
    if len(xy) < 2:
        return np.full(len(xy), fallback)
    distances, _ = cKDTree(xy).query(xy, k=2)
    return np.asarray(distances[:, 1], dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class AtomapOptions:
    """The settings of the Atomap-style finder (every length physical, in angstrom).

    Maxima on the outermost pixel rows and columns are ignored: they are the tails of
    columns centred outside the frame.

    Parameters
    ----------
    min_spacing_angstrom : float, optional
        Smallest projected distance between the columns to find, in A. The peak separation
        is ``separation_fraction`` of it, in pixels, never below ``min_separation_px``.
        Default 1.8 A, the smallest spacing of visible columns in SrTiO3 [100] and WS2.
    separation_fraction : float, optional
        Minimum peak separation as a fraction of ``min_spacing_angstrom``. Default 0.75.
    min_separation_px : float, optional
        Floor of the peak separation in pixels. Default 2.
    smoothing_angstrom : float, optional
        Sigma of the Gaussian smoothing before peak finding, in A (at least 0.5 px).
        Default 0.15 A.
    threshold_rel : float, optional
        Peaks must exceed this fraction of the smoothed, normalised image's maximum.
        Default 0.02 (Atomap's).
    percent_to_nn : float, optional
        Radius of each column's refinement window as a fraction of its nearest-neighbour
        distance. Default 0.4 (Atomap's).
    iterations : int, optional
        Levenberg-Marquardt iterations of the Gaussian refinement; 0 stops after the centre
        of mass. Default 20.
    min_relative_height : float, optional
        Peaks whose height above the background (5th percentile of the smoothed image) is
        below this fraction of the brightest columns' (95th percentile of peak heights), or
        below five times the smoothed image's noise, are not reported. Default 0.1, the
        benchmark's definition of a column visible in HAADF.

    Raises
    ------
    InputError
        If an option is out of range.

    Notes
    -----
    Local maxima are searched in a window of half the separation, so that a dim column
    next to a bright one (S2 beside W in WS2, 1.8 A apart) is not hidden by the bright
    column's tail as it is with Atomap's full-separation window; peaks closer than the
    separation are then merged, keeping the stronger, so that reported columns are at
    least the separation apart, as with Atomap.
    """

    min_spacing_angstrom: float = MIN_COLUMN_SPACING_ANGSTROM
    separation_fraction: float = 0.75
    min_separation_px: float = 2.0
    smoothing_angstrom: float = 0.15
    threshold_rel: float = 0.02
    percent_to_nn: float = 0.4
    iterations: int = 20
    min_relative_height: float = 0.1

    def __post_init__(self) -> None:
        checks = {
            "min_spacing_angstrom": self.min_spacing_angstrom > 0,
            "separation_fraction": 0 < self.separation_fraction <= 1,
            "min_separation_px": self.min_separation_px >= 1,
            "smoothing_angstrom": self.smoothing_angstrom >= 0,
            "threshold_rel": 0 <= self.threshold_rel < 1,
            "percent_to_nn": 0 < self.percent_to_nn <= 1,
            "iterations": self.iterations >= 0,
            "min_relative_height": 0 <= self.min_relative_height < 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise InputError(f"atomap-like: option {name} out of range: "
                                 f"{getattr(self, name)!r}")
        for field in fields(self):
            kind = int if field.name == "iterations" else float
            object.__setattr__(self, field.name, kind(getattr(self, field.name)))

    def separation_px(self, pixel_size: float) -> float:
        """Minimum peak separation in pixels for a pixel size in A/px."""
        spacing_px = self.min_spacing_angstrom / pixel_size
        return max(self.min_separation_px, self.separation_fraction * spacing_px)


def find_columns(image: NDArray[np.floating], pixel_size: float,
                 options: AtomapOptions) -> NDArray[np.float64]:
    """Column positions ``(N, 2)`` as x, y in pixels, found with ``options``.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        The image, any intensity scale (min-max normalised first).
    pixel_size : float
        A/px.
    options : AtomapOptions
        The finder's settings.

    Raises
    ------
    InputError
        If the image or the pixel size is unusable (:func:`normalised_image`).
    """
    from skimage.feature import peak_local_max

    normalised = normalised_image(image, pixel_size, "atomap-like")
    separation = options.separation_px(pixel_size)
    if separation > max(normalised.shape):  # bounded before any window is allocated
        rows, cols = normalised.shape
        raise InputError(
            f"atomap-like: minimum column spacing {options.min_spacing_angstrom:g} A is "
            f"{separation:.4g} px at {pixel_size:g} A/px, wider than the {cols}x{rows} px "
            "image: no two columns could be told apart (check --min-spacing and the pixel "
            "size)")
    smoothing_px = max(0.5, options.smoothing_angstrom / pixel_size)
    smoothed = ndimage.gaussian_filter(normalised, smoothing_px, mode="nearest")
    peaks_rc = peak_local_max(
        smoothed,
        min_distance=max(1, round(separation / 2.0)),
        threshold_rel=options.threshold_rel,
        exclude_border=1,
    )
    if len(peaks_rc) == 0 or smoothed.max() <= 0:
        return np.zeros((0, 2), dtype=np.float64)
    background = float(np.percentile(smoothed, 5))
    heights = smoothed[peaks_rc[:, 0], peaks_rc[:, 1]] - background
    floor = max(options.min_relative_height * float(np.percentile(heights, 95)),
                NOISE_PEAK_SIGMAS * _noise_std(normalised, smoothing_px))
    visible = heights >= floor
    peaks_rc, heights = peaks_rc[visible], heights[visible]
    if len(peaks_rc) == 0:  # nothing stands out of the noise
        return np.zeros((0, 2), dtype=np.float64)
    xy = peaks_rc[:, ::-1].astype(np.float64)
    xy = drop_close_peaks(xy, heights, separation)

    nearest = _nearest_neighbour_px(xy, fallback=2.0 * separation)
    cap = 2.0 * options.percent_to_nn * float(np.median(nearest))
    radius = np.clip(options.percent_to_nn * nearest, 1.5, max(1.5, cap))
    half = int(np.ceil(radius.max()))
    values, x, y, inside = column_windows(normalised, xy, half)
    within = (x - xy[:, 0, None, None]) ** 2 + (y - xy[:, 1, None, None]) ** 2
    xy = centre_of_mass(values, x, y, inside & (within <= radius[:, None, None] ** 2), xy)
    if options.iterations == 0:
        return xy

    values, x, y, inside = column_windows(normalised, xy, half)
    within = (x - xy[:, 0, None, None]) ** 2 + (y - xy[:, 1, None, None]) ** 2
    mask = inside & (within <= radius[:, None, None] ** 2)
    return refine_centres(values, x, y, mask, xy, radius, iterations=options.iterations)
