"""The projected atomic columns of a structure, the one type every image-formation step reads.

Built by :mod:`stembench.dataset_publish.simulate.structures` and
:mod:`stembench.dataset_publish.simulate.catalogue`; read by the image-formation backends and the
visibility rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from numpy.typing import NDArray

__all__ = ["ColumnStructure"]


@dataclass(frozen=True)
class ColumnStructure:
    """Projected atomic columns filling a rectangle ``[0, width] x [0, height]`` (angstrom).

    Attributes
    ----------
    name : str
        Structure name, e.g. ``"SrTiO3[100]"``.
    positions_angstrom : ndarray, shape (N, 2)
        Column x, y in angstrom.
    weights : ndarray, shape (N,)
        HAADF weight per column, sum over atoms of ``occupancy * Z**exponent``.
    elements : tuple of str
        Atoms in each column, heaviest first, e.g. ``"Ti+O"``, ``"S+S"``.
    column_types : tuple of str
        Column type label, e.g. ``"Sr"``, ``"TiO"``, ``"S2"``.
    visible : ndarray of bool, shape (N,)
        Columns visible in the noise-free HAADF image (the others are faint).
    extent_angstrom : tuple of float
        (width, height) of the filled region in angstrom.
    column_spacing_angstrom : float
        Median nearest-neighbour spacing of visible columns in angstrom.
    space_group : str
        Space group (or plane group) symbol.
    unit_cell : ase.Atoms or None
        Orthogonal periodic cell with the beam along z, for perfect crystals; else None.
    cell_origin_angstrom : tuple of float
        Where ``unit_cell``'s (0, 0) sits in the plane, angstrom.
    """

    name: str
    positions_angstrom: NDArray[np.float64]
    weights: NDArray[np.float64]
    elements: tuple[str, ...]
    column_types: tuple[str, ...]
    visible: NDArray[np.bool_]
    extent_angstrom: tuple[float, float]
    column_spacing_angstrom: float
    space_group: str
    unit_cell: Atoms | None
    cell_origin_angstrom: tuple[float, float]
