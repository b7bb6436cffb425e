"""Gaussian fits of atomic columns, one window per column, and the physical constant they use.

:func:`column_windows` cuts a fixed-size window around every column,
and :func:`fit_gaussians`, the one column fitter, fits ``A exp(-r^2 / 2 s^2) + B`` to every
window at once (batched Levenberg-Marquardt), with a free or a fixed centre. Its two uses:
:func:`refine_centres` (free centre: the Atomap-style finder's last step) and
:func:`fit_amplitudes` (fixed centre: the labelling assistant's check of each proposed
column). The whole-image lattice fit of one shared width, overlapping columns summed, is
another job: :func:`stembench.imaging.columns.fit_columns`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

__all__ = ["FWHM_PER_SIGMA", "HIGHPASS_NOISE", "GaussianFit", "centre_of_mass", "column_windows",
           "fit_amplitudes", "fit_gaussians", "refine_centres"]

#: Full width at half maximum of a Gaussian over its standard deviation, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: Standard deviation of white noise left after subtracting its 1 px Gaussian smoothing,
#: relative to the noise's own.
HIGHPASS_NOISE = 0.77


def column_windows(
    image: NDArray[np.float64], xy: NDArray[np.float64], half: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Fixed-size windows around the rounded column centres.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        The image.
    xy : ndarray, shape (N, 2)
        Column centres, x, y in pixels.
    half : int
        Half the window side: windows are ``2 * half + 1`` pixels square.

    Returns
    -------
    values, x, y : ndarray, shape (N, 2 * half + 1, 2 * half + 1)
        The image values (edge pixels repeated outside the image), and the x (column) and
        y (row) of each window pixel.
    inside : ndarray of bool, same shape
        The window pixel lies inside the image.
    """
    offsets = np.arange(-half, half + 1)
    cols = np.rint(xy[:, 0]).astype(np.int64)[:, None, None] + offsets[None, None, :]
    rows = np.rint(xy[:, 1]).astype(np.int64)[:, None, None] + offsets[None, :, None]
    rows, cols = np.broadcast_arrays(rows, cols)
    inside = (rows >= 0) & (rows < image.shape[0]) & (cols >= 0) & (cols < image.shape[1])
    values = image[np.clip(rows, 0, image.shape[0] - 1), np.clip(cols, 0, image.shape[1] - 1)]
    return values, cols.astype(np.float64), rows.astype(np.float64), inside



def centre_of_mass(
    values: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64],
    mask: NDArray[np.bool_], xy: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Background-subtracted centre of mass of each masked window (falls back to ``xy``).

    Parameters
    ----------
    values : numpy.ndarray, shape (N, h, w)
        Window intensities (:func:`column_windows`).
    x, y : numpy.ndarray, shape (N, h, w)
        Pixel coordinates of the windows (x = column, y = row).
    mask : numpy.ndarray of bool, shape (N, h, w)
        The pixels to use.
    xy : numpy.ndarray, shape (N, 2)
        Fallback centres, x, y in pixels.
    """
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



@dataclass(frozen=True)
class GaussianFit:
    """Least-squares fits of ``A exp(-r^2 / 2 s^2) + B``, one per window.

    Attributes
    ----------
    xy : ndarray, shape (N, 2)
        Centres, x, y pixels (the start centres where the centre was fixed).
    sigma_px, amplitude, background : ndarray, shape (N,)
        ``s`` (pixels), ``A`` and ``B`` (image units).
    sse : ndarray, shape (N,)
        Sum of squared residuals over the fitted pixels.
    """

    xy: NDArray[np.float64]
    sigma_px: NDArray[np.float64]
    amplitude: NDArray[np.float64]
    background: NDArray[np.float64]
    sse: NDArray[np.float64]


def _width_scan(values: NDArray[np.float64], r2: NDArray[np.float64],
                weight: NDArray[np.float64], lower: NDArray[np.float64] | float,
                upper: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """Start of a fixed-centre fit, ``(N, 3)`` s, A, B: the least-squares ``A`` and ``B`` at
    16 widths from ``lower`` to the largest ``upper`` (each window's at most its own), the
    width of least residual kept; flat windows (``(N, p)`` arrays, ``r2`` the squared
    distance to the centre)."""
    count = np.maximum(weight.sum(axis=1), 1.0)
    mean_v = (weight * values).sum(axis=1) / count
    best = np.full(len(values), np.inf)
    start = np.column_stack([np.broadcast_to(upper, best.shape), np.zeros_like(best), mean_v])
    for sigma in np.geomspace(float(np.min(lower)) or 0.5, float(np.max(upper)), 16):
        g = np.exp(-r2 / (2.0 * sigma * sigma))
        mean_g = (weight * g).sum(axis=1) / count
        spread = (weight * (g - mean_g[:, None]) ** 2).sum(axis=1)
        amp = (weight * (g - mean_g[:, None]) * values).sum(axis=1) / np.maximum(spread, 1e-12)
        base = mean_v - amp * mean_g
        sse = (weight * (values - amp[:, None] * g - base[:, None]) ** 2).sum(axis=1)
        better = (sse < best) & (sigma <= np.asarray(upper))
        best = np.where(better, sse, best)
        start = np.where(better[:, None], np.column_stack([np.full_like(best, sigma), amp, base]),
                         start)
    return start


def fit_gaussians(
    values: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64],
    mask: NDArray[np.bool_], start_xy: NDArray[np.float64], start_sigma: NDArray[np.float64],
    *, iterations: int, free_centre: bool = True,
    sigma_bounds: tuple[NDArray[np.float64] | float, NDArray[np.float64] | float] = (0.0, np.inf),
) -> GaussianFit:
    """Fit an isotropic 2D Gaussian plus background to every window at once: the one
    Gaussian column fitter of stembench (batched Levenberg-Marquardt).

    Parameters
    ----------
    values, x, y : ndarray, shape (N, h, w)
        :func:`column_windows`' arrays: pixel values and their x (column), y (row), pixels.
    mask : ndarray of bool, shape (N, h, w)
        The pixels to fit.
    start_xy : ndarray, shape (N, 2)
        Starting centres, x, y pixels (the centres themselves when ``free_centre`` is False).
    start_sigma : ndarray, shape (N,)
        Starting widths, pixels, with a free centre (``A`` and ``B`` then start at the
        window's range and minimum); a fixed-centre fit starts instead at the best of 16
        widths across ``sigma_bounds`` (``A`` and ``B`` by linear least squares at each),
        so that it starts in the basin of the least residual.
    iterations : int
        Most Levenberg-Marquardt steps.
    free_centre : bool
        Fit the centre (True) or keep it at ``start_xy`` and fit ``s``, ``A`` and ``B``.
    sigma_bounds : tuple
        ``(lower, upper)``, scalars or per window: a step is taken only while
        ``lower < s <= upper``; a fixed-centre fit holds ``s`` inside them.

    Returns
    -------
    GaussianFit
        The fitted parameters and residual. Stops after ``iterations`` steps or when no
        window's step moves its centre by more than 1e-4 px (fixed centre: no ``s``, ``A``
        or ``B`` by more than 1e-4 of itself plus one); the caller judges whether a fit
        succeeded.
    """
    n = len(start_xy)
    values, x, y = values.reshape(n, -1), x.reshape(n, -1), y.reshape(n, -1)
    weight = mask.reshape(n, -1).astype(np.float64)
    lower, upper = sigma_bounds
    if free_centre:
        masked = np.where(weight > 0, values, np.nan)
        base = np.nanmin(masked, axis=1)
        amp = np.nanmax(masked, axis=1) - base
        params = np.stack([start_xy[:, 0], start_xy[:, 1], start_sigma, amp, base], axis=1)
    else:
        r2 = (x - start_xy[:, 0, None]) ** 2 + (y - start_xy[:, 1, None]) ** 2
        params = np.column_stack([start_xy, _width_scan(values, r2, weight, lower, upper)])
    free = np.array([free_centre, free_centre, True, True, True], dtype=np.float64)
    damping = np.full(n, 1e-3)
    model, jac = _gaussian_terms(params, x, y)
    current = (weight * (values - model) ** 2).sum(axis=1)
    eye = np.eye(5)
    for _ in range(iterations):
        weighted_jac = jac * weight[:, None, :]
        if not free_centre:
            weighted_jac = weighted_jac * free[None, :, None]
        hessian = weighted_jac @ jac.transpose(0, 2, 1)
        gradient = (weighted_jac @ (values - model)[:, :, None])[..., 0]
        scaled = hessian + damping[:, None, None] * (hessian * eye + 1e-12 * eye)
        with np.errstate(all="ignore"):
            step = np.linalg.solve(scaled, gradient[..., None])[..., 0]
            trial = params + step
            if not free_centre:  # a fixed centre: the width is held inside its bounds
                trial[:, 2] = np.clip(trial[:, 2], lower, upper)
            trial_model, trial_jac = _gaussian_terms(trial, x, y)
            trial_cost = (weight * (values - trial_model) ** 2).sum(axis=1)
        better = (np.isfinite(trial_cost) & (trial_cost < current) & (trial[:, 2] > lower)
                  & (trial[:, 2] <= upper))
        params = np.where(better[:, None], trial, params)
        current = np.where(better, trial_cost, current)
        model = np.where(better[:, None], trial_model, model)
        jac = np.where(better[:, None, None], trial_jac, jac)
        damping = np.where(better, damping / 3.0, damping * 3.0)
        moving = (np.abs(step[:, :2]) if free_centre
                  else np.abs(step[:, 2:]) / (1.0 + np.abs(params[:, 2:])))
        if not np.nanmax(moving, initial=0.0) > 1e-4:
            break
    return GaussianFit(params[:, :2], params[:, 2], params[:, 3], params[:, 4], current)


def refine_centres(
    values: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64],
    mask: NDArray[np.bool_], start_xy: NDArray[np.float64], radius: NDArray[np.float64],
    *, iterations: int,
) -> NDArray[np.float64]:
    """Centres of :func:`fit_gaussians` with a free centre, ``(N, 2)`` x, y px.

    The width starts at half the window radius. Columns whose fit fails (non-finite,
    negative amplitude, width outside the window, or a centre moved by more than half the
    window radius) keep their start position.

    Parameters
    ----------
    values, x, y, mask : numpy.ndarray, shape (N, h, w)
        :func:`column_windows`' arrays: intensities, pixel coordinates (x = column,
        y = row) and the pixels to fit.
    start_xy : numpy.ndarray, shape (N, 2)
        Starting centres, x, y in pixels.
    radius : numpy.ndarray, shape (N,)
        Each column's window radius, pixels.
    iterations : int
        Most Levenberg-Marquardt steps (:func:`fit_gaussians`).
    """
    fit = fit_gaussians(values, x, y, mask, start_xy, radius / 2.0, iterations=iterations)
    moved = np.hypot(fit.xy[:, 0] - start_xy[:, 0], fit.xy[:, 1] - start_xy[:, 1])
    good = (
        np.all(np.isfinite(fit.xy), axis=1) & np.isfinite(fit.sigma_px)
        & np.isfinite(fit.amplitude) & np.isfinite(fit.background)
        & (fit.amplitude > 0)
        & (fit.sigma_px > 0.3)
        & (fit.sigma_px < 2.0 * radius)
        & (moved < 0.5 * radius)
    )
    return np.where(good[:, None], fit.xy, start_xy)


def fit_amplitudes(image: NDArray[np.float64], xy: NDArray[np.float64], *,
                   window_fraction: float
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                              NDArray[np.float64], NDArray[np.bool_]]:
    """Fit every column as ``A exp(-r^2 / 2 s^2) + B`` centred on ``xy`` (:func:`fit_gaussians`
    with the centre fixed, ``0.5 < s <=`` the window radius), on a disc of
    ``window_fraction`` of its nearest-neighbour distance (at most twice that of the median
    column, at least 2 px).

    Parameters
    ----------
    image : numpy.ndarray
        The image, 2-D.
    xy : numpy.ndarray, shape (N, 2)
        Column centres, x, y in pixels.
    window_fraction : float
        Radius of each column's fit disc as a fraction of its nearest-neighbour distance.

    Returns
    -------
    amplitude, sigma_px : ndarray, shape (N,)
        ``A`` and ``s`` (pixels).
    chi2 : ndarray, shape (N,)
        Reduced chi-square against the window's pixel noise (its 1 px high-pass, over
        :data:`HIGHPASS_NOISE`).
    t_value : ndarray, shape (N,)
        ``A`` over its standard error at the fitted ``s``.
    whole : ndarray of bool
        The fit window lies wholly inside the image.
    """
    n = len(xy)
    nearest = cKDTree(xy).query(xy, k=2)[0][:, 1] if n > 1 else np.full(n, 10.0)
    cap = max(2.0, 2.0 * window_fraction * float(np.median(nearest)))  # isolated columns
    radius = np.clip(window_fraction * nearest, 2.0, cap)
    half = int(np.ceil(radius.max()))
    values, x, y, inside = column_windows(image, xy, half)
    r2 = (x - xy[:, 0, None, None]) ** 2 + (y - xy[:, 1, None, None]) ** 2
    disc = r2 <= radius[:, None, None] ** 2
    whole = np.asarray(~(disc & ~inside).any(axis=(1, 2)), dtype=bool)
    mask = disc & inside
    fit = fit_gaussians(values, x, y, mask, xy, radius / 2.0, iterations=50,
                        free_centre=False, sigma_bounds=(0.5, radius))
    highpass = column_windows(image - ndimage.gaussian_filter(image, 1.0, mode="nearest"),
                              xy, half)[0]
    weight = mask.reshape(n, -1).astype(np.float64)
    count = weight.sum(axis=1)
    dof = np.maximum(count - 3, 1)
    noise_var = (weight * highpass.reshape(n, -1) ** 2).sum(axis=1) / count / HIGHPASS_NOISE**2
    g = np.exp(-r2.reshape(n, -1) / (2.0 * fit.sigma_px[:, None] ** 2))
    mean_g = (weight * g).sum(axis=1) / count
    spread = (weight * (g - mean_g[:, None]) ** 2).sum(axis=1)
    se = np.sqrt(fit.sse / dof / np.maximum(spread, 1e-12))
    chi2 = fit.sse / dof / np.maximum(noise_var, 1e-300)
    return fit.amplitude, fit.sigma_px, chi2, fit.amplitude / np.maximum(se, 1e-12), whole
