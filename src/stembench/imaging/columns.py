"""The visible columns of a lattice: candidate sites confirmed by a whole-image Gaussian fit.

Candidates are the local maxima of the averaged unit cell (the motif) and the lattice's
Voronoi vertices (the sites of a second sublattice, e.g. the S2 columns of WS2 that merge into
the W columns when the image is blurred, and stop being motif maxima). The whole image is
fitted as the lattice of all candidates, each a 2D Gaussian of one shared width, on a
constant background; a candidate is a visible column when its fitted amplitude is at least
:data:`VISIBLE_FRACTION` of the brightest column's: an estimate from a noisy image of the
generator's rule (:mod:`stembench.dataset_publish.simulate.visibility`: a column is labelled visible
when its noise-free peak stands at least 0.075 of the image's range above its local
background), not the same quantity, so the two can disagree on borderline columns. Weak
candidates are dropped one at a time, weakest first, with a refit after each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import optimize

from stembench.imaging.cell import reduce_basis

__all__ = ["VISIBLE_FRACTION", "ColumnFit", "confirm_columns", "fit_columns", "voronoi_sites"]

#: A candidate is a visible column when its fitted amplitude is at least this fraction of
#: the brightest column's (an estimate of the generator's visibility rule; module docstring).
VISIBLE_FRACTION = 0.1
_MAX_FIT_POINTS = 12000
_MAX_CANDIDATES = 8
#: Candidates closer than this (pixels; or 0.4 of the shortest cell vector if less) are one
#: column: a motif maximum on a Voronoi site. A fixed share of the cell alone would merge
#: distinct columns of a large cell with many of them (0.4 of a 50 px A15 cell is 20 px, its
#: columns are 12.5 px apart).
MERGE_PX = 5.0


@dataclass(frozen=True)
class ColumnFit:
    """A shared-width Gaussian fit of the whole image as a lattice of columns.

    Attributes
    ----------
    sigma_px : float
        Shared Gaussian standard deviation, pixels.
    background : float
        Constant background, image units.
    amplitudes : ndarray, shape (M,)
        Peak amplitude of each column, image units.
    """

    sigma_px: float
    background: float
    amplitudes: NDArray[np.float64]


def _sample(shape: tuple[int, int], reciprocal: NDArray[np.float64]
            ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    rows, cols = shape
    flat = np.arange(rows * cols)
    if flat.size > _MAX_FIT_POINTS:
        flat = np.random.default_rng(0).choice(flat, _MAX_FIT_POINTS, replace=False)
    xy = np.column_stack([flat % cols, flat // cols]).astype(np.float64)
    return xy @ reciprocal.T, flat


def _squared_distances(frac: NDArray[np.float64], columns_frac: NDArray[np.float64],
                       real: NDArray[np.float64], reach: int) -> NDArray[np.float64]:
    """Squared distances (px^2) from every point to every column image: (points, M, images)."""
    shifts = np.array([(n, m) for n in range(-reach, reach + 1)
                       for m in range(-reach, reach + 1)], dtype=np.float64)
    out = np.empty((len(frac), len(columns_frac), len(shifts)))
    for index, column in enumerate(columns_frac):
        delta = frac - column
        delta -= np.round(delta)
        d = (delta[:, None, :] + shifts[None, :, :]) @ real
        out[:, index, :] = d[..., 0] ** 2 + d[..., 1] ** 2
    return out


def fit_columns(image: NDArray[np.float64], reciprocal: NDArray[np.float64],
                real: NDArray[np.float64], columns_frac: NDArray[np.float64]) -> ColumnFit:
    """Fit ``image`` as Gaussian columns at ``columns_frac`` (fractional) of one shared width.

    Parameters
    ----------
    image : ndarray
        The 2D image.
    reciprocal, real : ndarray, shape (2, 2)
        Rows are the reciprocal (cycles per pixel) and real (pixels) basis vectors, ``(x, y)``.
    columns_frac : ndarray, shape (M, 2)
        Column sites in fractional coordinates of ``real``.
    """
    frac, flat = _sample(image.shape, reciprocal)
    values = image.ravel()[flat]
    shortest = float(np.min(np.hypot(real[:, 0], real[:, 1])))
    dist2 = _squared_distances(frac, columns_frac, real, 2 if len(columns_frac) == 1 else 1)

    def design(sigma: float) -> NDArray[np.float64]:
        summed = np.exp(-dist2 / (2 * sigma**2)).sum(axis=2)
        return np.column_stack([np.ones(len(values)), summed])

    def residual_norm(log_sigma: float) -> float:
        matrix = design(float(np.exp(log_sigma)))
        coef, *_ = np.linalg.lstsq(matrix, values, rcond=None)
        return float(np.sum((matrix @ coef - values) ** 2))

    result = optimize.minimize_scalar(residual_norm, bounds=(np.log(0.3), np.log(shortest)),
                                      method="bounded", options={"xatol": 1e-3})
    sigma = float(np.exp(result.x))
    coef, *_ = np.linalg.lstsq(design(sigma), values, rcond=None)
    return ColumnFit(sigma, float(coef[0]), np.asarray(coef[1:], dtype=np.float64))


def voronoi_sites(real: NDArray[np.float64]) -> NDArray[np.float64]:
    """Vertices of the lattice's Voronoi cell in fractional coordinates, ``(K, 2)``.

    They are the circumcentres of the triangles ``(0, b1, b2)`` and ``(b1, b2, b1 + b2)`` of
    the reduced, acute basis ``b1, b2``: one site for a square or rectangular lattice, the
    two sublattice sites of a honeycomb for a hexagonal one.
    """
    b1, b2 = reduce_basis(real[0].copy(), real[1].copy())
    if np.dot(b1, b2) < 0:
        b2 = -b2
    d = 2.0 * (b1[0] * b2[1] - b1[1] * b2[0])
    n1, n2 = float(np.dot(b1, b1)), float(np.dot(b2, b2))
    centre = np.array([(b2[1] * n1 - b1[1] * n2) / d, (b1[0] * n2 - b2[0] * n1) / d])
    sites = np.vstack([centre, b1 + b2 - centre]) @ np.linalg.inv(real)
    sites = np.mod(sites, 1.0)
    delta = sites[1] - sites[0]
    if np.hypot(*((delta - np.round(delta)) @ real)) < 1e-3 * np.sqrt(n1):
        sites = sites[:1]
    return np.asarray(sites, dtype=np.float64)


def _merge(candidates: NDArray[np.float64], real: NDArray[np.float64], min_distance: float
           ) -> NDArray[np.float64]:
    """Keep candidates (in order) at least ``min_distance`` px from every kept one."""
    kept: list[NDArray[np.float64]] = []
    shifts = np.array([(n, m) for n in (-1, 0, 1) for m in (-1, 0, 1)], dtype=np.float64)
    for site in candidates:
        if all(np.min(np.hypot(*(((site - other) - np.round(site - other) + shifts) @ real).T))
               >= min_distance for other in kept):
            kept.append(site)
    return np.asarray(kept, dtype=np.float64).reshape(-1, 2)


def confirm_columns(image: NDArray[np.float64], reciprocal: NDArray[np.float64],
                    real: NDArray[np.float64], maxima_frac: NDArray[np.float64]
                    ) -> tuple[NDArray[np.float64], ColumnFit]:
    """The visible columns among the motif maxima and the Voronoi sites of the brightest.

    Parameters
    ----------
    image : ndarray
        The 2D image.
    reciprocal, real : ndarray, shape (2, 2)
        The lattice (see :func:`fit_columns`).
    maxima_frac : ndarray, shape (K, 2)
        Motif maxima, fractional coordinates, brightest first (at least one).

    Returns
    -------
    columns_frac : ndarray, shape (M, 2)
        The visible columns, brightest first.
    fit : ColumnFit
        The fit of those columns (amplitudes in the same order).
    """
    shortest = float(np.min(np.hypot(real[:, 0], real[:, 1])))
    hollows = np.mod(voronoi_sites(real) + maxima_frac[0], 1.0)
    merge = min(0.4 * shortest, MERGE_PX)
    maxima = _merge(maxima_frac, real, merge)[:_MAX_CANDIDATES]
    candidates = _merge(np.vstack([maxima, hollows]), real, merge)
    fit = fit_columns(image, reciprocal, real, candidates)
    while len(candidates) > 1:
        relative = fit.amplitudes / max(float(fit.amplitudes.max()), 1e-300)
        weakest = int(np.argmin(relative))
        if relative[weakest] >= VISIBLE_FRACTION:
            break
        candidates = np.delete(candidates, weakest, axis=0)
        fit = fit_columns(image, reciprocal, real, candidates)
    order = np.argsort(fit.amplitudes)[::-1]
    return candidates[order], ColumnFit(fit.sigma_px, fit.background, fit.amplitudes[order])
