"""Every structure by name: the perfect crystals and the out-of-distribution ones.

:func:`build_structure` builds a perfect crystal of
:mod:`stembench.dataset_publish.simulate.structures` or a generality structure of
:mod:`stembench.dataset_publish.simulate.generality`, and judges which of its columns are
visible (:mod:`stembench.dataset_publish.simulate.visibility`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from stembench.dataset_publish.simulate.columns import ColumnStructure
from stembench.dataset_publish.simulate.generality import GENERALITY_STRUCTURES
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.simulate.structures import (
    lattice,
    lattice_names,
    structure_from_columns,
    tile_lattice,
    visible_spacing,
)
from stembench.dataset_publish.simulate.visibility import structure_visibility
from stembench.errors import InputError

__all__ = ["build_structure", "list_structures"]


def _judged(structure: ColumnStructure, probe: ProbeParameters) -> ColumnStructure:
    """``structure`` with its visibility judged on its own noise-free image at ``probe``."""
    visible = structure_visibility(structure, probe=probe)
    spacing = visible_spacing(structure.name, structure.positions_angstrom, visible,
                              structure.extent_angstrom)
    return replace(structure, visible=visible, column_spacing_angstrom=spacing)


def _perfect(name: str, extent: tuple[float, float], exponent: float,
             rng: np.random.Generator | None, probe: ProbeParameters) -> ColumnStructure:
    lat = lattice(name)
    origin = (0.0, 0.0)
    if rng is not None:
        frac = rng.uniform(0, 1, 2)
        shift = frac[0] * np.array(lat.a1) + frac[1] * np.array(lat.a2)
        origin = (float(shift[0]), float(shift[1]))
    pos, w, syms, vis = tile_lattice(lat, extent_angstrom=extent, origin_angstrom=origin,
                                     exponent=exponent, probe=probe)
    return structure_from_columns(name, pos, w, syms, vis, extent_angstrom=extent,
                                  space_group=lat.space_group, unit_cell=lat.atoms,
                                  cell_origin_angstrom=origin)


def list_structures() -> list[str]:
    """Names accepted by :func:`build_structure`: perfect crystals, then generality structures."""
    return lattice_names() + list(GENERALITY_STRUCTURES)


def build_structure(name: str, *, extent_angstrom: tuple[float, float], exponent: float = 1.7,
                    seed: int | None = None,
                    probe: ProbeParameters | None = None) -> ColumnStructure:
    """Build the projected columns of ``name`` filling ``extent_angstrom`` (width, height).

    Parameters
    ----------
    name : str
        One of :func:`list_structures`.
    extent_angstrom : tuple of float
        (width, height) of the region to fill, angstrom; both must be positive.
    exponent : float
        HAADF Z-exponent of the column weights (1.5-2).
    seed : int or None
        Random lattice offset (and defect placement); None puts a lattice point at (0, 0).
    probe : ProbeParameters, optional
        Probe whose noise-free image decides which columns are visible (default
        :class:`ProbeParameters`): per basis column for a perfect crystal, over the whole
        extent for a generality structure.

    Raises
    ------
    InputError
        For an unknown name or a non-positive extent or exponent.
    """
    w, h = (float(v) for v in extent_angstrom)
    if not (np.isfinite([w, h]).all() and w > 0 and h > 0):
        raise InputError(f"structure {name!r}: extent must be two positive lengths in "
                         f"angstrom, got {extent_angstrom}")
    if not (np.isfinite(exponent) and exponent > 0):
        raise InputError(f"structure {name!r}: Z exponent must be positive, got {exponent}")
    rng = None if seed is None else np.random.default_rng(seed)
    probe = probe or ProbeParameters()
    if name in lattice_names():
        return _perfect(name, (w, h), exponent, rng, probe)
    if name in GENERALITY_STRUCTURES:
        built = GENERALITY_STRUCTURES[name](
            (w, h), exponent, rng if rng is not None else np.random.default_rng(0))
        return _judged(replace(built, name=name), probe)
    raise InputError(f"unknown structure {name!r}; known: {list_structures()}")
