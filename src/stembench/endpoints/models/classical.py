"""Classical column finders that need no training: an Atomap-style pipeline and LoG blobs.

Every length parameter is physical (angstrom) and converted to pixels with the image's
pixel size, so one setting serves every image of a lattice family; nothing is tuned per
image. Images of any intensity scale are min-max normalised first.

- :class:`AtomapLike` ("atomap-like") follows Atomap (Nord et al. 2017): local maxima with a
  minimum separation, removal of peaks closer than half of it, centre-of-mass refinement,
  then a 2D Gaussian refinement of every column, done for all columns at once by a batched
  Levenberg-Marquardt fit on fixed-size windows.
- :class:`LoGDetector` ("log-blob") finds Laplacian-of-Gaussian blobs over a range of scales
  set by the probe size, and refines each by a parabola through the filter response.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

from stembench.endpoints.models.base import Model, ModelInfo
from stembench.errors import InputError

__all__ = ["AtomapLike", "LoGDetector"]

_VERSION = "1.0"
#: Smallest projected distance between visible columns in the benchmark's materials:
#: W to S2 in WS2 [001] (a / sqrt(3) = 1.82 A); SrTiO3 [100] cation to O is 1.95 A.
MIN_COLUMN_SPACING_ANGSTROM = 1.8


def _normalised(image: NDArray[np.floating], pixel_size: float, model: str) -> NDArray[np.float64]:
    """Validate the inputs and return the image scaled to [0, 1] (all zeros if constant)."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim != 2 or min(array.shape) < 3:
        raise InputError(f"{model}: expected a 2D image of at least 3x3 pixels, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{model}: the image holds NaN or infinite values")
    if not (np.isfinite(pixel_size) and pixel_size > 0):
        raise InputError(f"{model}: pixel_size must be a positive number of A/px, got {pixel_size}")
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
    return 1.4826 * mad / 0.77 / max(1.0, 2.0 * np.sqrt(np.pi) * smoothing_px)


def _drop_close_peaks(
    xy: NDArray[np.float64], strength: NDArray[np.float64], distance: float
) -> NDArray[np.float64]:
    """Of every pair of peaks closer than ``distance`` px keep the stronger one."""
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


def _windows(
    image: NDArray[np.float64], xy: NDArray[np.float64], half: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Fixed-size windows around rounded centres: values, x and y of each pixel, in-image mask."""
    offsets = np.arange(-half, half + 1)
    cols = np.rint(xy[:, 0]).astype(np.int64)[:, None, None] + offsets[None, None, :]
    rows = np.rint(xy[:, 1]).astype(np.int64)[:, None, None] + offsets[None, :, None]
    rows, cols = np.broadcast_arrays(rows, cols)
    inside = (rows >= 0) & (rows < image.shape[0]) & (cols >= 0) & (cols < image.shape[1])
    values = image[np.clip(rows, 0, image.shape[0] - 1), np.clip(cols, 0, image.shape[1] - 1)]
    return values, cols.astype(np.float64), rows.astype(np.float64), inside


def _nearest_neighbour_px(xy: NDArray[np.float64], fallback: float) -> NDArray[np.float64]:
    """Distance of every peak to its nearest other peak (``fallback`` when alone)."""
    if len(xy) < 2:
        return np.full(len(xy), fallback)
    distances, _ = cKDTree(xy).query(xy, k=2)
    return np.asarray(distances[:, 1], dtype=np.float64)


def _centre_of_mass(
    values: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64],
    mask: NDArray[np.bool_], xy: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Background-subtracted centre of mass of each masked window (falls back to ``xy``)."""
    floor = np.where(mask, values, np.inf).min(axis=(1, 2), keepdims=True)
    weights = np.where(mask, values - floor, 0.0)
    total = weights.sum(axis=(1, 2))
    ok = total > 0
    safe = np.where(ok, total, 1.0)
    com_x = (weights * x).sum(axis=(1, 2)) / safe
    com = np.stack([com_x, (weights * y).sum(axis=(1, 2)) / safe], axis=1)
    return np.where(ok[:, None], com, xy)


def _gaussian_terms(
    params: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Model values (n, p) and Jacobian (n, 5, p) of A exp(-r^2 / 2 s^2) + B on flat windows."""
    x0, y0, s, amp, base = (params[:, k, None] for k in range(5))
    dx, dy = x - x0, y - y0
    r2 = dx * dx + dy * dy
    e = np.exp(-r2 / (2.0 * s * s))
    ae = amp * e
    jac = np.empty((len(params), 5, x.shape[1]))
    jac[:, 0] = ae * dx / s**2
    jac[:, 1] = ae * dy / s**2
    jac[:, 2] = ae * r2 / s**3
    jac[:, 3] = e
    jac[:, 4] = 1.0
    return ae + base, jac


def _fit_gaussians(
    values: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64],
    mask: NDArray[np.bool_], start_xy: NDArray[np.float64], radius: NDArray[np.float64],
    *, iterations: int,
) -> NDArray[np.float64]:
    """Fit an isotropic 2D Gaussian plus background to every window at once (LM).

    Stops after ``iterations`` steps or when no column's proposed step moves its centre by
    more than 1e-4 px. Columns whose fit fails (non-finite, negative amplitude, width
    outside the window, or a centre moved by more than half the window radius) keep their
    start position.
    """
    n = len(start_xy)
    values, x, y = values.reshape(n, -1), x.reshape(n, -1), y.reshape(n, -1)
    weight = mask.reshape(n, -1).astype(np.float64)
    masked = np.where(weight > 0, values, np.nan)
    base = np.nanmin(masked, axis=1)
    amp = np.nanmax(masked, axis=1) - base
    params = np.stack([start_xy[:, 0], start_xy[:, 1], radius / 2.0, amp, base], axis=1)
    damping = np.full(n, 1e-3)
    model, jac = _gaussian_terms(params, x, y)
    current = (weight * (values - model) ** 2).sum(axis=1)
    eye = np.eye(5)
    for _ in range(iterations):
        weighted_jac = jac * weight[:, None, :]
        hessian = weighted_jac @ jac.transpose(0, 2, 1)
        gradient = (weighted_jac @ (values - model)[:, :, None])[..., 0]
        scaled = hessian + damping[:, None, None] * (hessian * eye + 1e-12 * eye)
        with np.errstate(all="ignore"):
            step = np.linalg.solve(scaled, gradient[..., None])[..., 0]
            trial = params + step
            trial_model, trial_jac = _gaussian_terms(trial, x, y)
            trial_cost = (weight * (values - trial_model) ** 2).sum(axis=1)
        better = np.isfinite(trial_cost) & (trial_cost < current) & (trial[:, 2] > 0)
        params = np.where(better[:, None], trial, params)
        current = np.where(better, trial_cost, current)
        model = np.where(better[:, None], trial_model, model)
        jac = np.where(better[:, None, None], trial_jac, jac)
        damping = np.where(better, damping / 3.0, damping * 3.0)
        if not np.nanmax(np.abs(step[:, :2]), initial=0.0) > 1e-4:
            break
    moved = np.hypot(params[:, 0] - start_xy[:, 0], params[:, 1] - start_xy[:, 1])
    good = (
        np.all(np.isfinite(params), axis=1)
        & (params[:, 3] > 0)
        & (params[:, 2] > 0.3)
        & (params[:, 2] < 2.0 * radius)
        & (moved < 0.5 * radius)
    )
    return np.where(good[:, None], params[:, :2], start_xy)


class AtomapLike(Model):
    """Atomap-style column finder: local maxima, centre of mass, 2D Gaussian refinement.

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

    Notes
    -----
    Local maxima are searched in a window of half the separation, so that a dim column
    next to a bright one (S2 beside W in WS2, 1.8 A apart) is not hidden by the bright
    column's tail as it is with Atomap's full-separation window; peaks closer than the
    separation are then merged, keeping the stronger, so that reported columns are at
    least the separation apart, as with Atomap.
    """

    def __init__(
        self,
        *,
        min_spacing_angstrom: float = MIN_COLUMN_SPACING_ANGSTROM,
        separation_fraction: float = 0.75,
        min_separation_px: float = 2.0,
        smoothing_angstrom: float = 0.15,
        threshold_rel: float = 0.02,
        percent_to_nn: float = 0.4,
        iterations: int = 20,
        min_relative_height: float = 0.1,
    ) -> None:
        checks = {
            "min_spacing_angstrom": min_spacing_angstrom > 0,
            "separation_fraction": 0 < separation_fraction <= 1,
            "min_separation_px": min_separation_px >= 1,
            "smoothing_angstrom": smoothing_angstrom >= 0,
            "threshold_rel": 0 <= threshold_rel < 1,
            "percent_to_nn": 0 < percent_to_nn <= 1,
            "iterations": iterations >= 0,
            "min_relative_height": 0 <= min_relative_height < 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise InputError(f"atomap-like: option {name} out of range: {locals()[name]!r}")
        self.min_spacing_angstrom = float(min_spacing_angstrom)
        self.separation_fraction = float(separation_fraction)
        self.min_separation_px = float(min_separation_px)
        self.smoothing_angstrom = float(smoothing_angstrom)
        self.threshold_rel = float(threshold_rel)
        self.percent_to_nn = float(percent_to_nn)
        self.iterations = int(iterations)
        self.min_relative_height = float(min_relative_height)

    @property
    def info(self) -> ModelInfo:
        """Name ``"atomap-like"``, framework ``"classical"``, no weights."""
        return ModelInfo("atomap-like", _VERSION, "classical", None)

    def separation_px(self, pixel_size: float) -> float:
        """Minimum peak separation in pixels for a pixel size in A/px."""
        spacing_px = self.min_spacing_angstrom / pixel_size
        return max(self.min_separation_px, self.separation_fraction * spacing_px)

    def locate(self, image: NDArray[np.floating], pixel_size: float) -> NDArray[np.float64]:
        """Column positions (N, 2) as x, y in pixels; ``pixel_size`` in A/px."""
        from skimage.feature import peak_local_max

        normalised = _normalised(image, pixel_size, "atomap-like")
        separation = self.separation_px(pixel_size)
        smoothing_px = max(0.5, self.smoothing_angstrom / pixel_size)
        smoothed = ndimage.gaussian_filter(normalised, smoothing_px, mode="nearest")
        peaks_rc = peak_local_max(
            smoothed,
            min_distance=max(1, round(separation / 2.0)),
            threshold_rel=self.threshold_rel,
            exclude_border=1,
        )
        if len(peaks_rc) == 0 or smoothed.max() <= 0:
            return np.zeros((0, 2), dtype=np.float64)
        background = float(np.percentile(smoothed, 5))
        heights = smoothed[peaks_rc[:, 0], peaks_rc[:, 1]] - background
        floor = max(self.min_relative_height * float(np.percentile(heights, 95)),
                    NOISE_PEAK_SIGMAS * _noise_std(normalised, smoothing_px))
        visible = heights >= floor
        peaks_rc, heights = peaks_rc[visible], heights[visible]
        xy = peaks_rc[:, ::-1].astype(np.float64)
        xy = _drop_close_peaks(xy, heights, separation)

        nearest = _nearest_neighbour_px(xy, fallback=2.0 * separation)
        cap = 2.0 * self.percent_to_nn * float(np.median(nearest))
        radius = np.clip(self.percent_to_nn * nearest, 1.5, max(1.5, cap))
        half = int(np.ceil(radius.max()))
        values, x, y, inside = _windows(normalised, xy, half)
        within = (x - xy[:, 0, None, None]) ** 2 + (y - xy[:, 1, None, None]) ** 2
        xy = _centre_of_mass(values, x, y, inside & (within <= radius[:, None, None] ** 2), xy)
        if self.iterations == 0:
            return xy

        values, x, y, inside = _windows(normalised, xy, half)
        within = (x - xy[:, 0, None, None]) ** 2 + (y - xy[:, 1, None, None]) ** 2
        mask = inside & (within <= radius[:, None, None] ** 2)
        return _fit_gaussians(values, x, y, mask, xy, radius, iterations=self.iterations)


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
        probe_sigma_px = self.probe_fwhm_angstrom / 2.355 / pixel_size
        low, high = (max(0.7, f * probe_sigma_px) for f in self.sigma_range)
        return low, max(low, high)

    def locate(self, image: NDArray[np.floating], pixel_size: float) -> NDArray[np.float64]:
        """Column positions (N, 2) as x, y in pixels; ``pixel_size`` in A/px."""
        from skimage.feature import blob_log

        normalised = _normalised(image, pixel_size, "log-blob")
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
        return _drop_close_peaks(xy, response[rows, cols], max(1.0, spacing_px / 2.0))


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
