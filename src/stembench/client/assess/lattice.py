"""The crystal lattice of an image, from its power spectrum, and the averaged unit cell.

The strongest peaks of the windowed power spectrum are the Bragg reflections. The shortest
two non-parallel reflections, Gauss-reduced, are the reciprocal basis ``g1, g2`` (cycles per
pixel, as ``(x, y)``); every significant peak is indexed by it and the basis is refined by
least squares over all indexed peaks. Folding every pixel into the unit cell (fractional
coordinates ``u = r . g1``, ``v = r . g2``) and averaging gives a high signal-to-noise motif
whose local maxima are the visible columns; their median nearest-neighbour distance is the
projected column spacing, as the benchmark defines it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from stembench.errors import InputError

__all__ = ["MIN_SIDE_PX", "Lattice2D", "check_image", "find_lattice", "power_spectrum"]

#: Smallest image side the assessment accepts, pixels.
MIN_SIDE_PX = 64
#: A spectrum peak counts as a reflection when it exceeds the radial median this many times.
PEAK_RATIO = 25.0
#: A motif maximum is a visible column when its height above the motif minimum is at least
#: this fraction of the brightest column's (the generator labels columns of >= 0.1 weight).
VISIBLE_FRACTION = 0.1


@dataclass(frozen=True)
class Lattice2D:
    """A lattice found in an image.

    Attributes
    ----------
    reciprocal : ndarray, shape (2, 2)
        Rows ``g1, g2``: reduced reciprocal basis in cycles per pixel, ``(x, y)``.
    real : ndarray, shape (2, 2)
        Rows ``a1, a2``: real-space basis in pixels, ``(x, y)`` (``a_i . g_j = delta_ij``).
    kind : str
        ``"square"``, ``"hexagonal"`` or ``"oblique"``.
    columns_frac : ndarray, shape (M, 2)
        Visible columns of the motif in fractional coordinates, brightest first.
    column_heights : ndarray, shape (M,)
        Motif height of each column above the motif minimum, relative to the brightest.
    spacing_px : float
        Median nearest-neighbour distance of the visible columns, pixels.
    n_peaks : int
        Number of spectrum peaks the basis indexes.
    """

    reciprocal: NDArray[np.float64]
    real: NDArray[np.float64]
    kind: str
    columns_frac: NDArray[np.float64]
    column_heights: NDArray[np.float64]
    spacing_px: float
    n_peaks: int

    def columns_px(self) -> NDArray[np.float64]:
        """Visible motif columns in pixels relative to the lattice origin, ``(x, y)``."""
        return np.asarray(self.columns_frac @ self.real, dtype=np.float64)


def check_image(image: NDArray[np.generic], *, name: str = "image") -> NDArray[np.float64]:
    """Validate an image for assessment and return it as float64.

    Raises
    ------
    InputError
        If it is not 2D, smaller than :data:`MIN_SIDE_PX` on a side, holds non-finite
        values, or is constant.
    """
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise InputError(f"{name}: expected a 2D image, got {arr.ndim} dimensions {arr.shape}")
    if min(arr.shape) < MIN_SIDE_PX:
        raise InputError(f"{name}: image {arr.shape} is too small to assess; each side needs "
                         f">= {MIN_SIDE_PX} px")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    bad = int(np.count_nonzero(~np.isfinite(out)))
    if bad:
        raise InputError(f"{name}: {bad} non-finite value(s) (NaN or inf) in the image")
    if np.ptp(out) == 0:
        raise InputError(f"{name}: the image is constant ({out.flat[0]}); nothing to assess")
    return out


def power_spectrum(image: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                        NDArray[np.float64], float]:
    """Hann-windowed power spectrum, centred.

    Returns
    -------
    power : ndarray
        ``|FFT|**2`` of the mean-subtracted, windowed image, zero frequency at the centre.
    kx, ky : ndarray
        Frequencies of every bin in cycles per pixel (same shape as ``power``).
    window_energy : float
        ``sum(window**2)``: white noise of variance ``s**2`` has mean power
        ``s**2 * window_energy`` in every bin.
    """
    rows, cols = image.shape
    window = np.outer(np.hanning(rows), np.hanning(cols))
    spectrum = np.fft.fftshift(np.fft.fft2((image - image.mean()) * window))
    ky, kx = np.meshgrid(np.fft.fftshift(np.fft.fftfreq(rows)),
                         np.fft.fftshift(np.fft.fftfreq(cols)), indexing="ij")
    return np.abs(spectrum) ** 2, kx, ky, float(np.sum(window**2))


def _radial_median(power: NDArray[np.float64], k: NDArray[np.float64], step: float
                   ) -> NDArray[np.float64]:
    bins = np.round(k / step).astype(np.int64)
    order = np.argsort(bins, axis=None)
    sorted_bins = bins.ravel()[order]
    sorted_power = power.ravel()[order]
    edges = np.searchsorted(sorted_bins, np.arange(bins.max() + 2))
    medians = np.array([np.median(sorted_power[a:b]) if b > a else np.nan
                        for a, b in itertools.pairwise(edges)])
    return np.asarray(medians[bins], dtype=np.float64)


def _spectrum_peaks(image: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Significant spectrum peaks in the half plane: (K, 2) frequencies and their powers."""
    power, kx, ky, _ = power_spectrum(image)
    step = 1.0 / max(image.shape)
    k = np.hypot(kx, ky)
    ratio = power / np.maximum(_radial_median(power, k, step), 1e-300)
    local_max = ndimage.maximum_filter(power, size=5, mode="wrap") == power
    half = (ky > 0) | ((ky == 0) & (kx > 0))
    keep = local_max & half & (k > 2.0 / min(image.shape)) & (ratio > PEAK_RATIO)
    rows, cols = np.nonzero(keep)
    order = np.argsort(power[rows, cols])[::-1][:60]
    rows, cols = rows[order], cols[order]
    log_power = np.log(np.maximum(power, 1e-300))
    refined = []
    for r, c in zip(rows, cols, strict=True):
        shift = []
        for dr, dc in ((1, 0), (0, 1)):
            lo = log_power[(r - dr) % power.shape[0], (c - dc) % power.shape[1]]
            mid = log_power[r, c]
            hi = log_power[(r + dr) % power.shape[0], (c + dc) % power.shape[1]]
            denom = lo - 2 * mid + hi
            shift.append(0.5 * (lo - hi) / denom if denom < 0 else 0.0)
        refined.append((kx[r, c] + shift[1] / image.shape[1],
                        ky[r, c] + shift[0] / image.shape[0]))
    return np.asarray(refined, dtype=np.float64).reshape(-1, 2), power[rows, cols]


def _reduce(g1: NDArray[np.float64], g2: NDArray[np.float64]
            ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lagrange-Gauss reduction: the shortest basis of the same 2D lattice."""
    for _ in range(50):
        if np.dot(g2, g2) < np.dot(g1, g1):
            g1, g2 = g2, g1
        mu = round(float(np.dot(g1, g2) / np.dot(g1, g1)))
        if mu == 0:
            break
        g2 = g2 - mu * g1
    return g1, g2


def _basis(peaks: NDArray[np.float64], powers: NDArray[np.float64], shape: tuple[int, int]
           ) -> tuple[NDArray[np.float64], int]:
    strong = peaks[powers >= powers.max() * 1e-3]
    lengths = np.hypot(strong[:, 0], strong[:, 1])
    order = np.argsort(lengths)
    g1 = strong[order[0]]
    g2 = None
    for index in order[1:]:
        cand = strong[index]
        sine = abs(g1[0] * cand[1] - g1[1] * cand[0]) / (lengths[order[0]] * lengths[index])
        if sine > 0.25:
            g2 = cand
            break
    if g2 is None:
        raise InputError(f"no 2D lattice: the spectrum's {len(strong)} strong peak(s) all lie "
                         "on one line (a 1D fringe pattern, not atomic columns)")
    g1, g2 = _reduce(g1, g2)
    basis = np.vstack([g1, g2])
    indices = strong @ np.linalg.inv(basis)
    rounded = np.round(indices)
    indexed = np.all(np.abs(indices - rounded) < 0.12 * max(shape) / min(shape) + 0.08, axis=1)
    if indexed.sum() >= 3:
        solution, *_ = np.linalg.lstsq(rounded[indexed], strong[indexed], rcond=None)
        basis = np.asarray(solution, dtype=np.float64)
    return basis, int(indexed.sum())


def _kind(reciprocal: NDArray[np.float64]) -> str:
    g1, g2 = reciprocal
    n1, n2 = np.hypot(*g1), np.hypot(*g2)
    angle = np.degrees(np.arccos(np.clip(abs(np.dot(g1, g2)) / (n1 * n2), 0.0, 1.0)))
    equal = abs(n1 - n2) / max(n1, n2) < 0.08
    if equal and abs(angle - 90.0) < 6.0:
        return "square"
    if equal and abs(angle - 60.0) < 6.0:
        return "hexagonal"
    return "oblique"


def fold_motif(image: NDArray[np.float64], reciprocal: NDArray[np.float64], bins: int
               ) -> NDArray[np.float64]:
    """Average of the image over unit cells: ``(bins, bins)`` array indexed by ``(u, v)``."""
    rows, cols = image.shape
    y, x = np.mgrid[0:rows, 0:cols]
    frac = np.column_stack([x.ravel(), y.ravel()]) @ reciprocal.T
    cell = np.floor(np.mod(frac, 1.0) * bins).astype(np.int64) % bins
    flat = cell[:, 0] * bins + cell[:, 1]
    total = np.bincount(flat, weights=image.ravel(), minlength=bins * bins)
    count = np.bincount(flat, minlength=bins * bins)
    motif = np.where(count > 0, total / np.maximum(count, 1), np.nan).reshape(bins, bins)
    if np.isnan(motif).any():
        filled = ndimage.generic_filter(np.nan_to_num(motif, nan=float(np.nanmean(motif))),
                                        np.mean, size=3, mode="wrap")
        motif = np.where(np.isnan(motif), filled, motif)
    return np.asarray(motif, dtype=np.float64)


def _motif_columns(motif: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    bins = motif.shape[0]
    smooth = ndimage.gaussian_filter(motif, 0.8, mode="wrap")
    low, high = float(smooth.min()), float(smooth.max())
    maxima = (ndimage.maximum_filter(smooth, size=3, mode="wrap") == smooth)
    maxima &= smooth - low >= VISIBLE_FRACTION * (high - low)
    iu, iv = np.nonzero(maxima)
    heights = (smooth[iu, iv] - low) / (high - low)
    frac = []
    for u, v in zip(iu, iv, strict=True):
        patch = smooth[np.ix_(np.arange(u - 1, u + 2) % bins, np.arange(v - 1, v + 2) % bins)]
        weights = np.clip(patch - low, 0.0, None)
        du = float(np.sum(weights.sum(axis=1) * np.array([-1, 0, 1])) / weights.sum())
        dv = float(np.sum(weights.sum(axis=0) * np.array([-1, 0, 1])) / weights.sum())
        frac.append(((u + 0.5 + du) / bins, (v + 0.5 + dv) / bins))
    order = np.argsort(heights)[::-1]
    return np.asarray(frac, dtype=np.float64)[order] % 1.0, heights[order]


def _suppress(columns: NDArray[np.float64], heights: NDArray[np.float64],
              real: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Drop maxima closer than 0.4 of the shortest lattice vector to a brighter one."""
    min_distance = 0.4 * float(np.min(np.hypot(real[:, 0], real[:, 1])))
    shifts = np.array([(n, m) for n in (-1, 0, 1) for m in (-1, 0, 1)], dtype=np.float64)
    kept: list[int] = []
    for index, frac in enumerate(columns):  # brightest first
        close = False
        for other in kept:
            delta = (columns[other] - frac) - np.round(columns[other] - frac)
            if np.min(np.hypot(*((delta + shifts) @ real).T)) < min_distance:
                close = True
                break
        if not close:
            kept.append(index)
    return columns[kept], heights[kept]


def nearest_spacing_px(columns_frac: NDArray[np.float64], real: NDArray[np.float64]
                       ) -> float:
    """Median over columns of the nearest-neighbour distance (periodic), pixels."""
    shifts = np.array([(n, m) for n in (-1, 0, 1) for m in (-1, 0, 1)], dtype=np.float64)
    nearest = []
    for i, fi in enumerate(columns_frac):
        best = np.inf
        for j, fj in enumerate(columns_frac):
            delta = (fj - fi) - np.round(fj - fi)
            dist = np.hypot(*((delta + shifts) @ real).T)
            if i == j:
                dist = dist[np.any(shifts != 0, axis=1) | (np.hypot(*delta) > 0)]
            best = min(best, float(dist.min()))
        nearest.append(best)
    return float(np.median(nearest))


def find_lattice(image: NDArray[np.float64], *, name: str = "image") -> Lattice2D:
    """Find the lattice, the visible motif columns and the column spacing of an image.

    Parameters
    ----------
    image : ndarray
        A validated 2D image (see :func:`check_image`).
    name : str
        Name used in error messages.

    Raises
    ------
    InputError
        If the spectrum holds no lattice (fewer than two non-parallel reflections).
    """
    peaks, powers = _spectrum_peaks(image)
    if len(peaks) < 2:
        raise InputError(f"{name}: no lattice found in the power spectrum ({len(peaks)} "
                         f"peak(s) above {PEAK_RATIO:g}x the background); is this an "
                         "atomic-resolution image of a crystal?")
    reciprocal, n_peaks = _basis(peaks, powers, image.shape)
    real = np.asarray(np.linalg.inv(reciprocal).T, dtype=np.float64)
    cell_px = float(np.sqrt(abs(np.linalg.det(real))))
    if cell_px > min(image.shape) / 1.5:
        raise InputError(f"{name}: the lattice found ({cell_px:.0f} px cell) is too coarse for "
                         f"the image {image.shape}; fewer than 1.5 cells across")
    bins = int(np.clip(round(2 * cell_px), 16, 64))
    columns, heights = _suppress(*_motif_columns(fold_motif(image, reciprocal, bins)), real)
    if len(columns) == 0:
        raise InputError(f"{name}: no column found in the averaged unit cell")
    spacing = nearest_spacing_px(columns, real)
    return Lattice2D(reciprocal, real, _kind(reciprocal), columns, heights, spacing, n_peaks)
