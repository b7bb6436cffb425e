"""Fast incoherent HAADF image formation, and the protocol every backend satisfies.

The incoherent model: ``I(r) = sum_j w_j PSF(|r - r_j|)`` with ``w_j`` the column weights
(about ``Z**1.7`` per atom) and ``PSF`` the probe intensity profile of
:func:`stembench.dataset_publish.simulate.probe.probe_profile`, truncated at
``cutoff_fwhm * FWHM`` (shifted and rescaled so that it falls continuously to zero there
and peaks at 1). It is evaluated at the beam positions, so scan distortions act physically.
Only columns within the cutoff of a beam position are summed, found with a k-d tree. Right
for positions, roughly right for intensities.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from stembench.dataset_publish.simulate.columns import ColumnStructure
from stembench.dataset_publish.simulate.probe import (
    ProbeParameters,
    probe_fwhm_angstrom,
    probe_profile,
)
from stembench.errors import InputError

__all__ = ["FastHAADF", "ImageFormation"]

_CHUNK = 16384


@runtime_checkable
class ImageFormation(Protocol):
    """An image-formation backend: HAADF intensity at given beam positions."""

    name: str

    def intensity(self, structure: ColumnStructure, x_angstrom: NDArray[np.float64],
                  y_angstrom: NDArray[np.float64]) -> NDArray[np.float64]:
        """HAADF intensity with the beam at ``(x_angstrom, y_angstrom)`` (any equal shapes).

        Parameters
        ----------
        structure : ColumnStructure
            The specimen's columns (positions in angstrom).
        x_angstrom, y_angstrom : numpy.ndarray
            Beam positions, angstrom (any equal shapes).
        """
        ...


class FastHAADF:
    """Incoherent HAADF: probe intensity profile summed over the columns.

    Parameters
    ----------
    probe : ProbeParameters
        Probe conditions.
    cutoff_fwhm : float
        Radius beyond which a column contributes nothing, in units of the probe FWHM.
    """

    name = "fast"

    def __init__(self, probe: ProbeParameters, *, cutoff_fwhm: float = 4.0) -> None:
        if not cutoff_fwhm > 0:
            raise InputError(f"cutoff_fwhm must be positive, got {cutoff_fwhm}")
        self.probe = probe
        self.fwhm_angstrom = probe_fwhm_angstrom(probe)
        self.cutoff_angstrom = max(cutoff_fwhm * self.fwhm_angstrom, 2.0)
        radii, profile = probe_profile(probe)
        keep = radii <= self.cutoff_angstrom
        self._radii = radii[keep]
        tail = profile[keep][-1]
        self._table = np.clip((profile[keep] - tail) / (1.0 - tail), 0.0, None)
        self._table_step = float(radii[1] - radii[0])
        along = np.concatenate([-self._radii[:0:-1], self._radii])
        self._line_table = np.array([self.psf(np.hypot(along, d)).sum() * self._table_step
                                     for d in self._radii])

    def line_weight(self, d_angstrom: NDArray[np.float64]) -> NDArray[np.float64]:
        """A column's intensity recorded along a scan line at distance ``d_angstrom``.

        The probe profile integrated along the line (angstrom times the profile's unit), 0
        beyond the cutoff: the weight of a line in the column's label,
        :func:`~stembench.dataset_publish.simulate.scan.ground_truth_pixels`.
        """
        return np.interp(np.abs(d_angstrom), self._radii, self._line_table, right=0.0)

    def psf(self, r_angstrom: NDArray[np.float64]) -> NDArray[np.float64]:
        """Probe intensity at radius ``r_angstrom`` (1 at the centre, 0 beyond the cutoff)."""
        return np.interp(r_angstrom, self._radii, self._table, right=0.0)

    def intensity(self, structure: ColumnStructure, x_angstrom: NDArray[np.float64],
                  y_angstrom: NDArray[np.float64]) -> NDArray[np.float64]:
        """Image intensity at the beam positions, in units of column weight.

        Parameters
        ----------
        structure : ColumnStructure
            The projected columns (all of them, visible or not, contribute).
        x_angstrom, y_angstrom : ndarray
            Beam positions in angstrom, equal shapes.

        Returns
        -------
        ndarray
            Intensity with the shape of ``x_angstrom``.
        """
        x = np.asarray(x_angstrom, dtype=np.float64)
        y = np.asarray(y_angstrom, dtype=np.float64)
        if x.shape != y.shape:
            raise InputError(f"beam x and y positions differ in shape: {x.shape} vs {y.shape}")
        cols = structure.positions_angstrom
        if len(cols) == 0:
            return np.zeros(x.shape)
        tree = cKDTree(cols)
        width, height = structure.extent_angstrom
        density = len(cols) / max(width * height, 1e-9)
        k_typical = int(min(len(cols), 1.5 * density * np.pi * self.cutoff_angstrom**2 + 4))
        points = np.column_stack([x.ravel(), y.ravel()])
        out = np.empty(len(points))
        weights = np.append(structure.weights, 0.0)  # index len(cols) = no neighbour
        for start in range(0, len(points), _CHUNK):
            chunk = points[start:start + _CHUNK]
            values, crowded = self._sum(tree, chunk, weights, k_typical)
            if crowded.any() and k_typical < len(cols):
                # more columns within the cutoff than k_typical: redo with the exact bound
                bound = tree.query_ball_point(cols, 2 * self.cutoff_angstrom, return_length=True)
                k_max = int(min(len(cols), np.max(bound)))
                values[crowded], _ = self._sum(tree, chunk[crowded], weights, k_max)
            out[start:start + len(chunk)] = values
        return out.reshape(x.shape)

    def _sum(self, tree: cKDTree, points: NDArray[np.float64], weights: NDArray[np.float64],
             k: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Summed contributions of the ``k`` nearest columns, and where ``k`` may be too few."""
        dist, idx = tree.query(points, k=k, distance_upper_bound=self.cutoff_angstrom)
        dist = dist.reshape(len(points), k)
        idx = idx.reshape(len(points), k)
        values = (self._lookup(dist) * weights[idx]).sum(axis=1)
        return values, np.isfinite(dist[:, -1])

    def _lookup(self, dist: NDArray[np.float64]) -> NDArray[np.float64]:
        finite = np.isfinite(dist)
        pos = np.where(finite, dist, 0.0) / self._table_step
        lo = np.minimum(pos.astype(np.int64), len(self._table) - 2)
        frac = pos - lo
        value = self._table[lo] * (1 - frac) + self._table[lo + 1] * frac
        return np.where(finite & (dist <= self._radii[-1]), value, 0.0)
