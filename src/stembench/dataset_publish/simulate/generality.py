"""Out-of-distribution ("generality") structures: the variety the published OOD images covered.

Each entry of :data:`GENERALITY_STRUCTURES` maps a name to a builder
``(extent_angstrom, exponent, rng) -> ColumnStructure``. They cover 2D lattices of every
Bravais type, complex cells, closely spaced dumbbells, heterointerfaces with a step in
intensity, grain boundaries, vacancies, substitutional dopants and thickness gradients.
Labels follow every modification: a removed column loses its label, a substituted column
gets its new element and type. The visibility a builder sets is its lattice's (used only to
thin crowded grain-boundary columns);
:func:`stembench.dataset_publish.simulate.catalogue.build_structure`
judges the finished structure's visibility on its own noise-free image. Thickness factors scale
all weights of a region.

No generality structure is a training structure of the shipped networks
(:mod:`stembench.endpoints.training.world`). Graphene, which AtomNet "hexagonal" trains on as
the published network did, was traded out: its three entries (graphene|hBN, a graphene grain
boundary, Si dopants in graphene) became hBN|MoS2, an hBN grain boundary and Si dopants in hBN,
and the perfect graphene lattice gave way to fluorite CeO2 [110]
(:mod:`stembench.dataset_publish.simulate.structures`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from stembench.dataset_publish.simulate.structures import (
    ColumnStructure,
    column_weight,
    lattice,
    structure_from_columns,
    tile_lattice,
)

__all__ = ["GENERALITY_STRUCTURES", "Builder"]

#: ``(extent_angstrom, exponent, rng) -> ColumnStructure``; the structure is named after its base
#: lattice and renamed by :func:`stembench.dataset_publish.simulate.catalogue.build_structure`.
Builder = Callable[[tuple[float, float], float, np.random.Generator], ColumnStructure]


@dataclass
class _Columns:
    positions: NDArray[np.float64]
    weights: NDArray[np.float64]
    symbols: list[tuple[str, ...]]
    visible: NDArray[np.bool_]

    def take(self, keep: NDArray[np.bool_]) -> _Columns:
        return _Columns(self.positions[keep], self.weights[keep],
                        [s for s, k in zip(self.symbols, keep, strict=True) if k],
                        self.visible[keep])

    def join(self, other: _Columns) -> _Columns:
        return _Columns(np.vstack([self.positions, other.positions]),
                        np.concatenate([self.weights, other.weights]),
                        self.symbols + other.symbols,
                        np.concatenate([self.visible, other.visible]))


def _tile(name: str, extent: tuple[float, float], exponent: float, rng: np.random.Generator,
          rotation_deg: float = 0.0, thickness: float = 1.0) -> _Columns:
    lat = lattice(name)
    frac = rng.uniform(0, 1, 2)
    origin = frac[0] * np.array(lat.a1) + frac[1] * np.array(lat.a2)
    pos, w, syms, vis = tile_lattice(lat, extent_angstrom=extent, rotation_deg=rotation_deg,
                                     origin_angstrom=(float(origin[0]), float(origin[1])),
                                     exponent=exponent)
    return _Columns(pos, w * thickness, syms, vis)


def _finish(base: str, cols: _Columns, extent: tuple[float, float],
            space_group: str) -> ColumnStructure:
    return structure_from_columns(base, cols.positions, cols.weights, cols.symbols, cols.visible,
                                  extent_angstrom=extent, space_group=space_group)


def _rotated(base: str, angle: float) -> Builder:
    def build(extent: tuple[float, float], exponent: float,
              rng: np.random.Generator) -> ColumnStructure:
        cols = _tile(base, extent, exponent, rng, rotation_deg=angle)
        return _finish(base, cols, extent, lattice(base).space_group)
    return build


def _interface(left: str, right: str, right_thickness: float, tilt_deg: float = 0.0) -> Builder:
    """Left lattice for x < boundary, right lattice (thickness-scaled) beyond it."""
    def build(extent: tuple[float, float], exponent: float,
              rng: np.random.Generator) -> ColumnStructure:
        a = _tile(left, extent, exponent, rng)
        b = _tile(right, extent, exponent, rng, thickness=right_thickness)
        slope = np.tan(np.deg2rad(tilt_deg))
        def boundary(p: NDArray[np.float64]) -> NDArray[np.float64]:
            return extent[0] / 2 + slope * (p[:, 1] - extent[1] / 2)
        a = a.take(a.positions[:, 0] < boundary(a.positions))
        b = b.take(b.positions[:, 0] >= boundary(b.positions) + 0.5)
        return _finish(left, a.join(b), extent,
                       f"{lattice(left).space_group}|{lattice(right).space_group}")
    return build


def _grain_boundary(base: str, angle: float) -> Builder:
    """Two grains rotated by +-angle/2, joined at x = width/2; crowded columns removed."""
    def build(extent: tuple[float, float], exponent: float,
              rng: np.random.Generator) -> ColumnStructure:
        a = _tile(base, extent, exponent, rng, rotation_deg=angle / 2)
        b = _tile(base, extent, exponent, rng, rotation_deg=-angle / 2)
        a = a.take(a.positions[:, 0] < extent[0] / 2)
        b = b.take(b.positions[:, 0] >= extent[0] / 2)
        spacing = _visible_spacing(a)
        dist, _ = cKDTree(a.positions[a.visible]).query(b.positions)
        b = b.take(~(b.visible & (dist < 0.6 * spacing)))
        return _finish(base, a.join(b), extent, lattice(base).space_group)
    return build


def _visible_spacing(cols: _Columns) -> float:
    pos = cols.positions[cols.visible]
    dist, _ = cKDTree(pos).query(pos, k=2)
    return float(np.median(dist[:, 1]))


def _vacancies(base: str, column_type: str, fraction: float, remove_atoms: int) -> Builder:
    """Remove ``remove_atoms`` atoms (0 = the whole column) from a fraction of one column type."""
    def build(extent: tuple[float, float], exponent: float,
              rng: np.random.Generator) -> ColumnStructure:
        cols = _tile(base, extent, exponent, rng)
        heaviest = [s[0] for s in cols.symbols]
        chosen = np.array([h == column_type for h in heaviest]) & (rng.random(len(heaviest))
                                                                    < fraction)
        if remove_atoms == 0:
            cols = cols.take(~chosen)
        else:
            for k in np.flatnonzero(chosen):
                cols.symbols[k] = tuple(cols.symbols[k][remove_atoms:])
            _reweigh(cols, chosen, exponent)
        return _finish(base, cols, extent,
                       lattice(base).space_group)
    return build


def _dopants(base: str, host: str, dopant: str, fraction: float) -> Builder:
    """Replace the ``host`` atom of a fraction of the columns containing it by ``dopant``."""
    def build(extent: tuple[float, float], exponent: float,
              rng: np.random.Generator) -> ColumnStructure:
        cols = _tile(base, extent, exponent, rng)
        has_host = np.array([host in s for s in cols.symbols])
        chosen = has_host & (rng.random(len(has_host)) < fraction)
        for k in np.flatnonzero(chosen):
            syms = list(cols.symbols[k])
            syms[syms.index(host)] = dopant
            cols.symbols[k] = tuple(syms)
        _reweigh(cols, chosen, exponent)
        return _finish(base, cols, extent,
                       lattice(base).space_group)
    return build


def _reweigh(cols: _Columns, changed: NDArray[np.bool_], exponent: float) -> None:
    for k in np.flatnonzero(changed):
        cols.weights[k] = column_weight(cols.symbols[k], exponent)


def _gradient(base: str, end_factor: float, direction_deg: float = 0.0,
              bump: bool = False) -> Builder:
    """Thickness varying across the field: linear ramp 1 -> ``end_factor`` or a central bump."""
    def build(extent: tuple[float, float], exponent: float,
              rng: np.random.Generator) -> ColumnStructure:
        cols = _tile(base, extent, exponent, rng)
        centred = cols.positions - np.array(extent) / 2
        if bump:
            r2 = (centred**2).sum(axis=1) / (0.3 * min(extent)) ** 2
            factor = 1 + (end_factor - 1) * np.exp(-r2 / 2)
        else:
            d = np.deg2rad(direction_deg)
            along = centred @ np.array([np.cos(d), np.sin(d)])
            half = np.abs(np.array(extent) @ np.abs([np.cos(d), np.sin(d)])) / 2
            factor = 1 + (end_factor - 1) * (along + half) / (2 * half)
        cols.weights = cols.weights * factor
        return _finish(base, cols, extent, lattice(base).space_group)
    return build


_BUILDERS: list[tuple[str, Builder]] = [
    ("MoS2-rotated-30deg", _rotated("MoS2", 30.0)),
    ("BaTiO3[100]-rotated-17deg", _rotated("BaTiO3[100]", 17.0)),
    ("GaAs[110]-rotated-20deg", _rotated("GaAs[110]", 20.0)),
    ("hBN-rotated-11deg", _rotated("hBN", 11.0)),
    ("SrTiO3[100]|LaAlO3[100]", _interface("SrTiO3[100]", "LaAlO3[100]", 1.0)),
    ("LaAlO3[100]|SrTiO3[100]-x0.4", _interface("LaAlO3[100]", "SrTiO3[100]", 0.4)),
    ("WS2|MoS2", _interface("WS2", "MoS2", 1.0, tilt_deg=10.0)),
    ("hBN|MoS2", _interface("hBN", "MoS2", 1.0)),
    ("GaAs[110]|Si[110]", _interface("GaAs[110]", "Si[110]", 1.0)),
    ("SrTiO3[100]-thickness-step-x3", _interface("SrTiO3[100]", "SrTiO3[100]", 3.0, 15.0)),
    ("SrTiO3[100]-GB-12deg", _grain_boundary("SrTiO3[100]", 12.0)),
    ("SrTiO3[100]-GB-36.9deg", _grain_boundary("SrTiO3[100]", 36.9)),
    ("WS2-GB-13deg", _grain_boundary("WS2", 13.0)),
    ("hBN-GB-21.8deg", _grain_boundary("hBN", 21.8)),
    ("square-2D-GB-28deg", _grain_boundary("square-2D", 28.0)),
    ("SrTiO3[100]-Sr-vacancies-8%-columns", _vacancies("SrTiO3[100]", "Sr", 0.08, 0)),
    ("WS2-W-vacancies-6%-columns", _vacancies("WS2", "W", 0.06, 0)),
    ("WS2-S-vacancies-15%-1-atom", _vacancies("WS2", "S", 0.15, 1)),
    ("MoS2-Mo-vacancies-8%-columns", _vacancies("MoS2", "Mo", 0.08, 0)),
    ("hBN-N-vacancies-10%-columns", _vacancies("hBN", "N", 0.10, 0)),
    ("SrTiO3[100]-La-dopants-10%", _dopants("SrTiO3[100]", "Sr", "La", 0.10)),
    ("SrTiO3[100]-Nb-dopants-10%", _dopants("SrTiO3[100]", "Ti", "Nb", 0.10)),
    ("WS2-Mo-dopants-15%", _dopants("WS2", "W", "Mo", 0.15)),
    ("MoS2-W-dopants-10%", _dopants("MoS2", "Mo", "W", 0.10)),
    ("hBN-Si-dopants-3%", _dopants("hBN", "N", "Si", 0.03)),
    ("SrTiO3[100]-thickness-gradient-x6-0deg", _gradient("SrTiO3[100]", 6.0)),
    ("WS2-thickness-gradient-x0.2-90deg", _gradient("WS2", 0.2, 90.0)),
    ("GaAs[110]-thickness-gradient-x4-45deg", _gradient("GaAs[110]", 4.0, 45.0)),
    ("LaAlO3[100]-thickness-gradient-x5-30deg", _gradient("LaAlO3[100]", 5.0, 30.0)),
    ("MoS2-thickness-bump-x4", _gradient("MoS2", 4.0, bump=True)),
]

#: Generality structures by name (the perfect complex crystals are listed too, so the
#: generality image set can name them directly).
GENERALITY_STRUCTURES: dict[str, Builder] = dict(_BUILDERS)
