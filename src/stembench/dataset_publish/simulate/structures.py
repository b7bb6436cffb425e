"""Projected atomic-column structures with exact column positions, built with ``ase``.

A crystal is described by an orthogonal (or, for the oblique 2D lattice, general) 2D cell
whose atoms are projected along the beam (z): atoms within 0.05 A in (x, y) form one column.
A column's HAADF weight is the sum over its atoms of ``occupancy * Z**exponent``. Whether a
column is *visible* follows one rule for every structure, from its noise-free image at the
probe (:mod:`stembench.dataset_publish.simulate.visibility`): a perfect crystal's basis columns are
judged once on a patch of the lattice, any other structure on its whole extent. Positions are
in angstrom, x to the right, y downwards.

Every structure by name, the perfect crystals here and the out-of-distribution "generality"
structures (dumbbells, interfaces, grain boundaries, vacancies, dopants, thickness gradients) of
:mod:`stembench.dataset_publish.simulate.generality`, is built by
:func:`stembench.dataset_publish.simulate.catalogue.build_structure`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from ase.spacegroup import crystal
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from stembench._moved import moved_names
from stembench.dataset_publish.simulate.columns import ColumnStructure
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.simulate.visibility import structure_visibility
from stembench.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ColumnStructure",
    "Lattice",
    "basis_visibility",
    "honeycomb",
    "lattice",
    "lattice_names",
    "mx2",
    "structure_from_columns",
    "tile_lattice",
    "visible_spacing",
]

_COLUMN_TOLERANCE_ANGSTROM = 0.05
_PATCH_CELLS = 4


@dataclass(frozen=True)
class Lattice:
    """A 2D periodic arrangement of columns: lattice vectors and a basis, in angstrom."""

    a1: tuple[float, float]
    a2: tuple[float, float]
    basis: NDArray[np.float64]  # (M, 2) column positions in the cell, angstrom
    symbols: tuple[tuple[str, ...], ...]  # atoms of each basis column
    space_group: str
    atoms: Atoms | None  # orthogonal periodic cell, beam along z, when a1, a2 are orthogonal


def _column_label(symbols: tuple[str, ...]) -> tuple[str, str]:
    ordered = sorted(symbols, key=lambda s: -atomic_numbers[s])
    counts = Counter(ordered)
    label = "".join(s if counts[s] == 1 else f"{s}{counts[s]}" for s in dict.fromkeys(ordered))
    return "+".join(ordered), label


def column_weight(symbols: tuple[str, ...], exponent: float) -> float:
    """HAADF weight ``sum Z**exponent`` of the atoms in one column (occupancy 1)."""
    return float(sum(atomic_numbers[s] ** exponent for s in symbols))


def _project(atoms: Atoms, space_group: str) -> Lattice:
    """Group the atoms of an orthogonal cell into columns along z."""
    ax, ay = float(atoms.cell[0, 0]), float(atoms.cell[1, 1])
    xy = np.mod(atoms.positions[:, :2], [ax, ay])
    centres: list[NDArray[np.float64]] = []
    members: list[list[str]] = []
    for pos, sym in zip(xy, atoms.get_chemical_symbols(), strict=True):
        for k, c in enumerate(centres):
            d = pos - c
            d -= np.round(d / [ax, ay]) * [ax, ay]
            if np.hypot(*d) < _COLUMN_TOLERANCE_ANGSTROM:
                members[k].append(sym)
                break
        else:
            centres.append(pos)
            members.append([sym])
    basis = np.mod(np.array(centres), [ax, ay])
    basis[np.isclose(basis, [ax, ay], atol=1e-6)] = 0.0
    return Lattice((ax, 0.0), (0.0, ay), basis, tuple(tuple(m) for m in members),
                   space_group, atoms)


def _oriented(conventional: Atoms, x_dir: tuple[int, int, int],
              beam: tuple[int, int, int]) -> Atoms:
    """Cut an orthogonal cell with x along ``x_dir`` and z along ``beam`` from a cubic cell."""
    a = float(conventional.cell[0, 0])
    e1, e3 = np.array(x_dir, float), np.array(beam, float)
    e2 = np.cross(e3, e1)
    e2 /= np.gcd.reduce(np.abs(e2[e2 != 0]).astype(int))
    lengths = a * np.array([np.linalg.norm(e1), np.linalg.norm(e2), np.linalg.norm(e3)])
    unit = np.array([e1, e2, e3]) / np.linalg.norm([e1, e2, e3], axis=1)[:, None]
    n = int(np.ceil(lengths.max() / a)) + 1
    grid = np.array(np.meshgrid(*[np.arange(-n, n + 1)] * 3, indexing="ij")).reshape(3, -1).T
    pos = (conventional.get_scaled_positions()[None, :, :] + grid[:, None, :]).reshape(-1, 3) * a
    syms = np.tile(conventional.get_chemical_symbols(), len(grid))
    new = pos @ unit.T
    keep = np.all((new > -1e-4) & (new < lengths - 1e-4), axis=1)
    new = np.where(np.abs(new) < 1e-4, 0.0, new)
    return Atoms(list(syms[keep]), positions=new[keep], cell=np.diag(lengths), pbc=True)


def _layer(a: float, ay_factor: float, frac: list[tuple[float, float]],
           symbols: list[str], z: list[float], space_group: str) -> Lattice:
    cell = [a, a * ay_factor, 20.0]
    pos = [(fx * cell[0], fy * cell[1], 10.0 + dz) for (fx, fy), dz in zip(frac, z, strict=True)]
    return _project(Atoms(symbols, positions=pos, cell=cell, pbc=True), space_group)


def mx2(metal: str, chalcogen: str, a: float) -> Lattice:
    """A 2H transition-metal dichalcogenide monolayer ``MX2`` along [001], lattice constant
    ``a`` (A): metal columns and chalcogen-pair columns on a rectangular cell.

    Parameters
    ----------
    metal, chalcogen : str
        Element symbols of the metal (M) and the chalcogen (X).
    a : float
        Lattice constant, angstrom.
    """
    frac = [(0, 0), (0.5, 0.5), (0.5, 1 / 6), (0.5, 1 / 6), (0, 2 / 3), (0, 2 / 3)]
    syms = [metal, metal] + [chalcogen] * 4
    return _layer(a, np.sqrt(3), frac, syms, [0, 0, 1.57, -1.57, 1.57, -1.57], "P-6m2")


def honeycomb(first: str, second: str, a: float) -> Lattice:
    """A honeycomb monolayer of ``first`` and ``second`` atoms (graphene, hBN), lattice
    constant ``a`` (A), on a rectangular cell.

    Parameters
    ----------
    first, second : str
        Element symbols of the two sublattices (equal for graphene).
    a : float
        Lattice constant, angstrom.
    """
    frac = [(0, 0), (0.5, 0.5), (0.5, 1 / 6), (0, 2 / 3)]
    group = "P6/mmm" if first == second else "P-6m2"
    return _layer(a, np.sqrt(3), frac, [first, first, second, second], [0] * 4, group)


def _cubic(symbols: list[str], basis: list[tuple[float, float, float]], group: int, a: float,
           x_dir: tuple[int, int, int], beam: tuple[int, int, int], name: str,
           setting: int = 1) -> Lattice:
    conv = crystal(symbols, basis=basis, spacegroup=group, cellpar=[a, a, a, 90, 90, 90],
                   setting=setting)
    return _project(_oriented(conv, x_dir, beam), name)


def _oblique(symbol: str, a: float, b: float, gamma_deg: float) -> Lattice:
    g = np.deg2rad(gamma_deg)
    return Lattice((a, 0.0), (b * np.cos(g), b * np.sin(g)), np.zeros((1, 2)),
                   ((symbol,),), "p2", None)


_PEROVSKITE = (["Sr", "Ti", "O"], [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)])
_LATTICES: dict[str, Callable[[], Lattice]] = {
    "SrTiO3[100]": lambda: _cubic(*_PEROVSKITE, 221, 3.905, (1, 0, 0), (0, 0, 1), "Pm-3m"),
    "SrTiO3[110]": lambda: _cubic(*_PEROVSKITE, 221, 3.905, (1, -1, 0), (1, 1, 0), "Pm-3m"),
    "LaAlO3[100]": lambda: _cubic(["La", "Al", "O"], _PEROVSKITE[1], 221, 3.79, (1, 0, 0),
                                  (0, 0, 1), "Pm-3m"),
    "BaTiO3[100]": lambda: _cubic(["Ba", "Ti", "O"], _PEROVSKITE[1], 221, 4.0, (1, 0, 0),
                                  (0, 0, 1), "Pm-3m"),
    "MgAl2O4[100]": lambda: _cubic(
        ["Mg", "Al", "O"], [(0.125,) * 3, (0.5,) * 3, (0.263,) * 3], 227, 8.083, (1, 0, 0),
        (0, 0, 1), "Fd-3m", setting=2),
    "MgAl2O4[110]": lambda: _cubic(
        ["Mg", "Al", "O"], [(0.125,) * 3, (0.5,) * 3, (0.263,) * 3], 227, 8.083, (0, 0, 1),
        (1, 1, 0), "Fd-3m", setting=2),
    "Si[110]": lambda: _cubic(["Si"], [(0, 0, 0)], 227, 5.431, (0, 0, 1), (1, 1, 0), "Fd-3m"),
    "GaAs[110]": lambda: _cubic(["Ga", "As"], [(0, 0, 0), (0.25,) * 3], 216, 5.653, (0, 0, 1),
                                (1, 1, 0), "F-43m"),
    "WS2": lambda: mx2("W", "S", 3.153),
    "MoS2": lambda: mx2("Mo", "S", 3.16),
    "hBN": lambda: honeycomb("N", "B", 2.504),
    "CeO2[110]": lambda: _cubic(["Ce", "O"], [(0, 0, 0), (0.25, 0.25, 0.25)], 225, 5.411,
                                (0, 0, 1), (1, 1, 0), "Fm-3m"),
    "square-2D": lambda: _layer(3.0, 1.0, [(0, 0)], ["Mo"], [0], "p4m"),
    "rectangular-2D": lambda: _layer(3.1, 1.42, [(0, 0)], ["W"], [0], "p2mm"),
    "oblique-2D": lambda: _oblique("W", 3.2, 3.8, 72.0),
}


def lattice(name: str) -> Lattice:
    """The periodic lattice called ``name`` (one of the perfect-crystal names)."""
    if name not in _LATTICES:
        raise InputError(f"unknown lattice {name!r}; known: {sorted(_LATTICES)}")
    return _LATTICES[name]()


def _lattice_columns(lat: Lattice, extent: tuple[float, float], origin: tuple[float, float],
                     rotation_deg: float) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Positions of the columns of ``lat`` inside ``[0, w] x [0, h]`` and their basis index."""
    w, h = extent
    rot = np.deg2rad(rotation_deg)
    r = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
    vecs = r @ np.array([lat.a1, lat.a2]).T  # columns are rotated a1, a2
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], float) - origin
    ij = np.linalg.solve(vecs, corners.T)
    lo = np.floor(ij.min(axis=1)) - 2
    hi = np.ceil(ij.max(axis=1)) + 2
    ii, jj = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    points = (vecs @ np.array([ii.ravel(), jj.ravel()])).T + origin
    basis = (r @ lat.basis.T).T
    pos = (points[:, None, :] + basis[None, :, :]).reshape(-1, 2)
    idx = np.tile(np.arange(len(lat.basis)), len(points))
    inside = (pos[:, 0] >= 0) & (pos[:, 0] <= w) & (pos[:, 1] >= 0) & (pos[:, 1] <= h)
    return pos[inside], idx[inside]


_BASIS_VISIBLE: dict[tuple[object, ...], NDArray[np.bool_]] = {}


def basis_visibility(lat: Lattice, *, exponent: float = 1.7,
                     probe: ProbeParameters | None = None) -> NDArray[np.bool_]:
    """Whether each basis column of ``lat`` is visible, by the rule of the visibility module.

    The rule is applied once per lattice, exponent and probe, to the column of each basis
    type nearest the centre of a patch ``_PATCH_CELLS`` lattice periods (at least 12 A) wide.

    Parameters
    ----------
    lat : Lattice
        The lattice.
    exponent : float, optional
        HAADF Z exponent of the column weights; default 1.7.
    probe : ProbeParameters, optional
        The probe; default :class:`ProbeParameters`.
    """
    probe = probe or ProbeParameters()
    key = (lat.a1, lat.a2, lat.basis.tobytes(), lat.symbols, float(exponent), probe)
    if key not in _BASIS_VISIBLE:
        size = max(_PATCH_CELLS * float(np.hypot(*lat.a1)),
                   _PATCH_CELLS * float(np.hypot(*lat.a2)), 12.0)
        pos, idx = _lattice_columns(lat, (size, size), (size / 2, size / 2), 0.0)
        weights = np.array([column_weight(s, exponent) for s in lat.symbols])[idx]
        patch = ColumnStructure("patch", pos, weights, ("",) * len(pos), ("",) * len(pos),
                                np.ones(len(pos), bool), (size, size), 1.0, lat.space_group,
                                None, (size / 2, size / 2))
        visible = structure_visibility(patch, probe=probe)
        off_centre = np.hypot(*(pos - size / 2).T)
        central = [np.flatnonzero(idx == b)[np.argmin(off_centre[idx == b])]
                   for b in range(len(lat.basis))]
        _BASIS_VISIBLE[key] = visible[central]
    return _BASIS_VISIBLE[key].copy()


def tile_lattice(lat: Lattice, *, extent_angstrom: tuple[float, float],
                 origin_angstrom: tuple[float, float] = (0.0, 0.0), rotation_deg: float = 0.0,
                 exponent: float = 1.7, probe: ProbeParameters | None = None
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64], list[tuple[str, ...]],
                            NDArray[np.bool_]]:
    """Columns of ``lat`` inside ``[0, w] x [0, h]``: positions, weights, atoms, visibility.

    The lattice point (0, 0) sits at ``origin_angstrom``; the lattice is rotated by
    ``rotation_deg`` (counter-clockwise in the x-right, y-down frame as drawn) about it.
    Visibility is :func:`basis_visibility` at ``probe`` (default :class:`ProbeParameters`).

    Parameters
    ----------
    lat : Lattice
        The lattice.
    extent_angstrom : tuple of float
        Field ``(w, h)``, angstrom.
    origin_angstrom : tuple of float, optional
        Where the lattice point (0, 0) sits, ``(x, y)`` in angstrom; default (0, 0).
    rotation_deg : float, optional
        Rotation of the lattice, degrees; default 0.
    exponent : float, optional
        HAADF Z exponent of the column weights; default 1.7.
    probe : ProbeParameters, optional
        The probe visibility is decided at; default :class:`ProbeParameters`.
    """
    pos, idx = _lattice_columns(lat, extent_angstrom, origin_angstrom, rotation_deg)
    cell_weights = np.array([column_weight(s, exponent) for s in lat.symbols])
    visible = basis_visibility(lat, exponent=exponent, probe=probe)[idx]
    return pos, cell_weights[idx], [lat.symbols[k] for k in idx], visible


def structure_from_columns(name: str, positions: NDArray[np.float64], weights: NDArray[np.float64],
                           symbols: list[tuple[str, ...]], visible: NDArray[np.bool_], *,
                           extent_angstrom: tuple[float, float], space_group: str,
                           unit_cell: Atoms | None = None,
                           cell_origin_angstrom: tuple[float, float] = (0.0, 0.0)
                           ) -> ColumnStructure:
    """Assemble a :class:`ColumnStructure`, computing labels and the column spacing.

    Parameters
    ----------
    name : str
        The structure's name.
    positions : numpy.ndarray
        Column positions ``(N, 2)``, ``(x, y)`` in angstrom.
    weights : numpy.ndarray
        HAADF weight of each column, ``(N,)``.
    symbols : list of tuple of str
        The atoms of each column.
    visible : numpy.ndarray of bool
        Whether each column is visible, ``(N,)``.
    extent_angstrom : tuple of float
        Field ``(w, h)``, angstrom.
    space_group : str
        The structure's space group (Hermann-Mauguin symbol).
    unit_cell : ase.Atoms, optional
        The periodic cell, for backends that simulate one (abTEM); default none.
    cell_origin_angstrom : tuple of float, optional
        Where the unit cell's origin sits, ``(x, y)`` in angstrom; default (0, 0).
    """
    labels = [_column_label(s) for s in symbols]
    vis = np.asarray(visible, bool)
    return ColumnStructure(
        name=name, positions_angstrom=np.asarray(positions, float),
        weights=np.asarray(weights, float), elements=tuple(e for e, _ in labels),
        column_types=tuple(t for _, t in labels), visible=vis,
        extent_angstrom=(float(extent_angstrom[0]), float(extent_angstrom[1])),
        column_spacing_angstrom=visible_spacing(name, positions, vis, extent_angstrom),
        space_group=space_group,
        unit_cell=unit_cell,
        cell_origin_angstrom=(float(cell_origin_angstrom[0]), float(cell_origin_angstrom[1])))


def visible_spacing(name: str, positions: NDArray[np.float64], visible: NDArray[np.bool_],
             extent: tuple[float, float]) -> float:
    """Median nearest-neighbour distance of the visible columns, angstrom.

    Parameters
    ----------
    name : str
        The structure's name (for the error message).
    positions : numpy.ndarray
        Column positions ``(N, 2)``, ``(x, y)`` in angstrom.
    visible : numpy.ndarray of bool
        Whether each column is visible, ``(N,)``.
    extent : tuple of float
        The structure's field ``(w, h)`` in angstrom (for the error message).
    """
    if visible.sum() < 2:
        raise InputError(f"structure {name!r}: fewer than 2 visible columns in extent "
                         f"{extent} A; enlarge the extent")
    dist, _ = cKDTree(positions[visible]).query(positions[visible], k=2)
    return float(np.median(dist[:, 1]))


def lattice_names() -> list[str]:
    """Names of the perfect crystals, :func:`lattice` accepts each."""
    return list(_LATTICES)


__getattr__ = moved_names(__name__, {
    "build_structure": "stembench.dataset_publish.simulate.catalogue",
    "list_structures": "stembench.dataset_publish.simulate.catalogue",
})
