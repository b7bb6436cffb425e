"""The cell that a crystal's strong reflections generate, for motifs with many columns.

:func:`subdivision` turns the two shortest strong reflections of a power spectrum into the
basis of the lattice all the strong reflections generate (the crystal's reciprocal lattice
where the first orders are extinct or weak); :func:`reduce_basis` is the Lagrange-Gauss
reduction both use. Frequencies are in cycles per pixel, as ``(x, y)`` rows.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_SUBDIVISION", "MIN_SUBDIVIDING", "reduce_basis", "subdivision"]

#: Finest subdivision of the two shortest strong reflections' lattice that the other strong
#: reflections may ask for (a real cell up to this many times larger along each axis).
MAX_SUBDIVISION = 4
#: Fewest strong reflections that a subdivision must index beyond the shortest pair's lattice.
MIN_SUBDIVIDING = 2


def reduce_basis(g1: NDArray[np.float64], g2: NDArray[np.float64]
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lagrange-Gauss reduction: the shortest basis of the same 2D lattice.

    Parameters
    ----------
    g1, g2 : ndarray, shape (2,)
        A basis, cycles per pixel ``(x, y)``.
    """
    for _ in range(50):
        if np.dot(g2, g2) < np.dot(g1, g1):
            g1, g2 = g2, g1
        mu = round(float(np.dot(g1, g2) / np.dot(g1, g1)))
        if mu == 0:
            break
        g2 = g2 - mu * g1
    return g1, g2


def subdivision(pair: NDArray[np.float64], strong: NDArray[np.float64], tolerance: float
                 ) -> NDArray[np.float64]:
    """The reduced basis of the lattice that the two shortest strong reflections ``pair`` and
    every other strong one generate.

    In a cell with several columns the first-order reflections may be extinct or weak (A15,
    B20 and NiAs-like projections): the two shortest strong peaks then span a sublattice of
    the reciprocal lattice (a real cell too small, often centred) that leaves strong peaks at
    half-integer indices. The basis ``pair / n`` (``n`` <= :data:`MAX_SUBDIVISION`), fitted
    to the strong peaks it indexes, is tried for each ``n``; the smallest ``n`` that indexes
    the most of them, and at least :data:`MIN_SUBDIVIDING` more than ``n = 1`` does (one
    stray peak does not subdivide a cell), gives the lattice those peaks generate. The fit
    matters: a weak shortest peak is poorly placed, and its error grows with the order of the
    peaks it indexes.

    Parameters
    ----------
    pair : ndarray, shape (2, 2)
        The two shortest non-parallel strong reflections, reduced, cycles per pixel.
    strong : ndarray, shape (K, 2)
        Every strong reflection, cycles per pixel.
    tolerance : float
        Largest distance of an index from an integer for a peak to count as indexed.
    """
    fits = [_fit_subdivision(pair, strong, tolerance, n) for n in range(1, MAX_SUBDIVISION + 1)]
    counts = [int(near.sum()) for _, near in fits]
    n = 1 + counts.index(max(counts))
    if n == 1 or counts[n - 1] - counts[0] < MIN_SUBDIVIDING:
        return fits[0][0]
    fine, near = fits[n - 1]
    frac = np.round(strong[near] @ np.linalg.inv(fine))
    vectors = [(n, 0), (0, n)] + [(int(h), int(k)) for h, k in frac]
    rows = np.asarray(_integer_basis(vectors), dtype=np.float64) @ fine
    g1, g2 = reduce_basis(rows[0], rows[1])
    return np.vstack([g1, g2])


def _fit_subdivision(pair: NDArray[np.float64], strong: NDArray[np.float64], tolerance: float,
                     n: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The basis ``pair / n`` fitted to the strong reflections it indexes, and which those are."""
    fine = pair / n
    for _ in range(3):
        frac = strong @ np.linalg.inv(fine)
        near = np.all(np.abs(frac - np.round(frac)) < tolerance, axis=1)
        if np.linalg.matrix_rank(np.round(frac[near])) < 2:
            break
        fine = np.asarray(np.linalg.lstsq(np.round(frac[near]), strong[near], rcond=None)[0],
                          dtype=np.float64)
    frac = strong @ np.linalg.inv(fine)
    return fine, np.all(np.abs(frac - np.round(frac)) < tolerance, axis=1)


def _integer_basis(vectors: list[tuple[int, int]]) -> list[list[int]]:
    """A basis of the 2D integer lattice the ``vectors`` generate (row reduction, which ends
    in Hermite form: one row with a non-zero first entry and ``(0, gcd)``)."""
    rows = [list(v) for v in vectors if v != (0, 0)]
    while sum(1 for r in rows if r[0] != 0) > 1:
        pivot = min((r for r in rows if r[0] != 0), key=lambda r: abs(r[0]))
        for r in rows:
            if r is not pivot and r[0] != 0:
                q = r[0] // pivot[0]
                r[0], r[1] = r[0] - q * pivot[0], r[1] - q * pivot[1]
    first = next(r for r in rows if r[0] != 0)
    rest = 0
    for r in rows:
        if r[0] == 0:
            rest = math.gcd(rest, r[1])
    return [first, [0, rest]]
