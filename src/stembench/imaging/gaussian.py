"""Gaussian fits of atomic columns, one window per column, and the physical constant they use.

:func:`column_windows` cuts a fixed-size window around every column; :func:`refine_centres`
fits ``A exp(-r^2 / 2 s^2) + B`` with a free centre to every window at once (batched
Levenberg-Marquardt: the Atomap-style finder's last step); :func:`fit_amplitudes` fits the
same function at fixed centres, ``A`` and ``B`` by linear least squares for each width of a
grid (the labelling assistant's check of each proposed column). The whole-image lattice fit
of one shared width is :func:`stembench.imaging.columns.fit_columns`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

__all__ = ["FWHM_PER_SIGMA", "HIGHPASS_NOISE", "centre_of_mass", "column_windows", "fit_amplitudes",
           "refine_centres"]

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

    ``values``, ``x``, ``y`` are :func:`column_windows`' arrays, ``mask`` the pixels to use.
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



def refine_centres(
    values: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64],
    mask: NDArray[np.bool_], start_xy: NDArray[np.float64], radius: NDArray[np.float64],
    *, iterations: int,
) -> NDArray[np.float64]:
    """Fit an isotropic 2D Gaussian plus background to every window at once (LM); the
    fitted centres, ``(N, 2)`` x, y px.

    ``values``, ``x``, ``y`` and ``mask`` are :func:`column_windows`' arrays (``mask``: the
    pixels to fit), ``start_xy`` the starting centres, ``radius`` each column's window
    radius, px.

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


def _discs(image: NDArray[np.float64], xy: NDArray[np.float64], radius: NDArray[np.float64]
           ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_],
                      NDArray[np.bool_]]:
    """Windows around the rounded centres: values, squared distance to the exact centre,
    the disc mask (inside the image), and whether the whole disc lies inside the image."""
    half = int(np.ceil(radius.max()))
    values, _, _, inside = column_windows(image, xy, half)
    cols, rows = np.rint(xy[:, 0]).astype(np.int64), np.rint(xy[:, 1]).astype(np.int64)
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    dx = (cols - xy[:, 0])[:, None, None] + offsets[None, None, :]
    dy = (rows - xy[:, 1])[:, None, None] + offsets[None, :, None]
    r2 = dx * dx + dy * dy
    disc = r2 <= radius[:, None, None] ** 2
    whole = np.asarray(~(disc & ~inside).any(axis=(1, 2)), dtype=bool)
    return values, r2, disc & inside, whole


def fit_amplitudes(image: NDArray[np.float64], xy: NDArray[np.float64], *,
                   window_fraction: float
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                              NDArray[np.float64], NDArray[np.bool_]]:
    """Fit every column as ``A exp(-r^2 / 2 s^2) + B`` centred on ``xy`` (see the module
    docstring), on a disc of ``window_fraction`` of its nearest-neighbour distance (at most
    twice that of the median column, at least 2 px).

    Returns
    -------
    amplitude, sigma_px, chi2, t_value : ndarray, shape (N,)
    whole : ndarray of bool
        The fit window lies wholly inside the image.
    """
    n = len(xy)
    nearest = cKDTree(xy).query(xy, k=2)[0][:, 1] if n > 1 else np.full(n, 10.0)
    cap = max(2.0, 2.0 * window_fraction * float(np.median(nearest)))  # isolated columns
    radius = np.clip(window_fraction * nearest, 2.0, cap)
    values, r2, mask, whole = _discs(image, xy, radius)
    highpass, _, _, _ = _discs(image - ndimage.gaussian_filter(image, 1.0, mode="nearest"),
                               xy, radius)
    weight = mask.reshape(n, -1).astype(np.float64)
    v, d2 = values.reshape(n, -1), r2.reshape(n, -1)
    count = weight.sum(axis=1)
    mean_v = (weight * v).sum(axis=1) / count
    noise_var = (weight * highpass.reshape(n, -1) ** 2).sum(axis=1) / count / HIGHPASS_NOISE**2
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
