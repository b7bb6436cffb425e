"""The crystal lattice of an image, from its power spectrum, and its visible columns.

The strongest peaks of the windowed power spectrum are the Bragg reflections. The shortest
two non-parallel reflections among the strong ones, Gauss-reduced, are the reciprocal basis
``g1, g2`` (cycles per pixel, as ``(x, y)``); every significant peak is indexed by it, and the
basis is refined to the frequencies of greatest windowed Fourier power. An image with fewer
than :data:`MIN_PERIODS` lattice periods across its shorter side is refused: its spectrum
peaks are too broad to index reliably. Folding every pixel into the unit cell (fractional
coordinates ``u = r . g1``, ``v = r . g2``) and averaging gives a high signal-to-noise motif
whose local maxima, with the lattice's Voronoi sites, are the candidate columns; a
whole-image Gaussian fit keeps those the benchmark would label
(:mod:`stembench.imaging.columns`). Their median nearest-neighbour distance is the
projected column spacing, as the benchmark defines it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, optimize

from stembench.errors import InputError
from stembench.imaging.cell import reduce_basis, subdivision
from stembench.imaging.columns import confirm_columns
from stembench.validation import validate_image

__all__ = ["MIN_PERIODS", "MIN_SIDE_PX", "Lattice2D", "check_image", "find_lattice",
           "power_spectrum"]

#: Smallest image side the assessment accepts, pixels.
MIN_SIDE_PX = 64
#: A spectrum peak counts as a reflection when it exceeds the radial median this many times.
PEAK_RATIO = 25.0
#: Peaks with at least this fraction of the strongest peak's power form the basis: the
#: first-order reflections of the visible columns, not noise or window leakage.
STRONG_FRACTION = 0.05
#: Fewest lattice periods (longest reduced real basis vector) across the shorter side.
MIN_PERIODS = 4.0
#: A motif maximum is a candidate column when its height above the motif minimum is at least
#: this fraction of the brightest maximum's (the whole-image fit then decides).
CANDIDATE_FRACTION = 0.05
#: Strongest reflections whose exact frequencies fit the basis.
REFINED_REFLECTIONS = 8


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
        Fitted amplitude of each column relative to the brightest.
    spacing_px : float
        Median nearest-neighbour distance of the visible columns, pixels.
    n_peaks : int
        Number of spectrum peaks the basis indexes.
    sigma_px : float
        Shared Gaussian standard deviation of the columns in the whole-image fit, pixels.
    """

    reciprocal: NDArray[np.float64]
    real: NDArray[np.float64]
    kind: str
    columns_frac: NDArray[np.float64]
    column_heights: NDArray[np.float64]
    spacing_px: float
    n_peaks: int
    sigma_px: float

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
    out = validate_image(image, name=name, min_side=MIN_SIDE_PX)
    if np.ptp(out) == 0:
        raise InputError(f"{name}: the image is constant ({out.flat[0]}); nothing to assess")
    return out


def power_spectrum(image: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                        NDArray[np.float64], float]:
    """Hann-windowed power spectrum, centred.

    Returns
    -------
    power : ndarray
        ``|FFT|**2`` of the windowed image less its window-weighted mean, zero frequency at
        the centre.
    kx, ky : ndarray
        Frequencies of every bin in cycles per pixel (same shape as ``power``).
    window_energy : float
        ``sum(window**2)``: white noise of variance ``s**2`` has mean power
        ``s**2 * window_energy`` in every bin.
    """
    rows, cols = image.shape
    window = np.outer(np.hanning(rows), np.hanning(cols))
    mean = float(np.sum(image * window) / np.sum(window))  # no leakage of zero frequency
    spectrum = np.fft.fftshift(np.fft.fft2((image - mean) * window))
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


def _basis(peaks: NDArray[np.float64], powers: NDArray[np.float64], shape: tuple[int, int]
           ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The reduced basis of the lattice all strong reflections generate, and the strong
    reflections it indexes, strongest first."""
    strong = peaks[powers >= powers.max() * STRONG_FRACTION]
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
    g1, g2 = reduce_basis(g1, g2)
    tolerance = 0.12 * max(shape) / min(shape) + 0.08
    pair = np.vstack([g1, g2])
    basis = subdivision(pair, strong, tolerance)
    indices = strong @ np.linalg.inv(basis)
    indexed = np.all(np.abs(indices - np.round(indices)) < tolerance, axis=1)
    return basis, strong[indexed]


def _refine_frequency(windowed: NDArray[np.float64], g: NDArray[np.float64]
                      ) -> NDArray[np.float64]:
    """The frequency near ``g`` (cycles/px, ``(x, y)``) of greatest windowed Fourier power.

    The maximum of ``|sum w(r) I(r) exp(-2 pi i g . r)|`` over continuous ``g`` (searched
    within one FFT bin of the start) is the least-squares frequency of the reflection, free of
    the bin grid and of aliased harmonics.
    """
    rows, cols = windowed.shape
    x, y = np.arange(cols), np.arange(rows)

    def negative_power(k: NDArray[np.float64]) -> float:
        phase_y = 2 * np.pi * k[1] * y
        row = np.cos(phase_y) @ windowed - 1j * (np.sin(phase_y) @ windowed)
        amplitude = row @ np.exp(-2j * np.pi * k[0] * x)
        return -float(abs(amplitude) ** 2)

    step = 1.0 / max(rows, cols)
    start = np.asarray(g, dtype=np.float64)
    simplex = start + np.array([[0.0, 0.0], [0.3 * step, 0.0], [0.0, 0.3 * step]])
    result = optimize.minimize(negative_power, start, method="Nelder-Mead",
                               options={"initial_simplex": simplex, "xatol": 1e-3 * step,
                                        "fatol": 1e-9, "maxiter": 200})
    refined = np.asarray(result.x, dtype=np.float64)
    return refined if np.hypot(*(refined - start)) <= 1.5 * step else start


def refine_basis(image: NDArray[np.float64], reciprocal: NDArray[np.float64],
                 reflections: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """The reciprocal basis fitted to the exact frequencies (cycles/px) of its reflections.

    Each of the :data:`REFINED_REFLECTIONS` first ``reflections`` (strongest first; default
    the basis vectors themselves) is moved to its exact frequency, and the basis is their
    least-squares fit by their integer indices. A basis vector may be a weak or extinct
    reflection (cells with several columns), which alone would refine to noise.
    """
    rows, cols = image.shape
    windowed = (image - image.mean()) * np.outer(np.hanning(rows), np.hanning(cols))
    chosen = reciprocal if reflections is None else reflections[:REFINED_REFLECTIONS]
    refined = np.vstack([_refine_frequency(windowed, g) for g in chosen])
    indices = np.round(chosen @ np.linalg.inv(reciprocal))
    if np.linalg.matrix_rank(indices) < 2:
        return np.vstack([_refine_frequency(windowed, g) for g in reciprocal])
    return np.asarray(np.linalg.lstsq(indices, refined, rcond=None)[0], dtype=np.float64)


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
    maxima &= smooth - low >= CANDIDATE_FRACTION * (high - low)
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


def _check_strongest_reflection(image: NDArray[np.float64], reciprocal: NDArray[np.float64],
                                name: str) -> None:
    """Refuse a basis that does not index the spectrum's strongest non-zero frequency.

    With only a few periods across the image, the first-order reflections sit a few bins
    from zero frequency and drown in its window leakage; harmonics then pose as the basis.
    """
    power, kx, ky, _ = power_spectrum(image)
    away = np.hypot(kx, ky) > 1.5 / min(image.shape)
    index = np.unravel_index(np.argmax(np.where(away, power, 0.0)), power.shape)
    strongest = np.array([kx[index], ky[index]])
    hkl = strongest @ np.linalg.inv(reciprocal)
    tolerance = 1.5 / min(image.shape) / float(np.min(np.hypot(*reciprocal.T)))
    if np.any(np.abs(hkl - np.round(hkl)) > max(tolerance, 0.2)):
        raise InputError(f"{name}: the strongest spectrum peak ({strongest[0]:.4f}, "
                         f"{strongest[1]:.4f}) cycles/px is not a reflection of the lattice "
                         f"found; fewer than {MIN_PERIODS:g} periods may fit across the image "
                         f"{image.shape}, or it holds no clear lattice")


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
        If the spectrum holds no lattice (fewer than two non-parallel reflections) or fewer
        than :data:`MIN_PERIODS` periods fit across the image.
    """
    peaks, powers = _spectrum_peaks(image)
    if len(peaks) < 2:
        raise InputError(f"{name}: no lattice found in the power spectrum ({len(peaks)} "
                         f"peak(s) above {PEAK_RATIO:g}x the background); is this an "
                         "atomic-resolution image of a crystal?")
    reciprocal, indexed = _basis(peaks, powers, image.shape)
    n_peaks = len(indexed)
    reciprocal = refine_basis(image, reciprocal, indexed)
    _check_strongest_reflection(image, reciprocal, name)
    real = np.asarray(np.linalg.inv(reciprocal).T, dtype=np.float64)
    longest = float(np.max(np.hypot(real[:, 0], real[:, 1])))
    periods = min(image.shape) / longest
    if periods < MIN_PERIODS:
        raise InputError(f"{name}: only {periods:.1f} lattice periods ({longest:.0f} px) fit "
                         f"across the image {image.shape}; at least {MIN_PERIODS:g} are needed "
                         "to measure the lattice (use a larger field of view or finer pixels)")
    cell_px = float(np.sqrt(abs(np.linalg.det(real))))
    bins = int(np.clip(round(2 * cell_px), 16, 64))
    maxima, _ = _motif_columns(fold_motif(image, reciprocal, bins))
    if len(maxima) == 0:
        raise InputError(f"{name}: no column found in the averaged unit cell")
    columns, fit = confirm_columns(image, reciprocal, real, maxima)
    heights = fit.amplitudes / max(float(fit.amplitudes[0]), 1e-300)
    spacing = nearest_spacing_px(columns, real)
    return Lattice2D(reciprocal, real, _kind(reciprocal), columns, heights, spacing, n_peaks,
                     fit.sigma_px)
