"""The training world: structures, probes and Z exponents the benchmark never shows.

The networks are trained on a generator configuration of their own, disjoint from the
benchmark's (:mod:`stembench.dataset_publish.simulate.build`):

- **Structures.** None of the benchmark's structures (its two materials, SrTiO3 [100] and WS2,
  and every generality structure) is a training structure, and no training structure is
  buildable through
  :func:`stembench.dataset_publish.simulate.catalogue.build_structure`: the training
  lattices are defined here. Following the published recipes, AtomNet "hexagonal" trains on
  graphene only (as Ziatdinov's released ``atomsegnet`` weights were), AtomNet "cubic" on cubic
  perovskites viewed along [100] (BaSnO3, BaZrO3, SrVO3 and the cubic phase of KNbO3; not
  SrTiO3, BaTiO3 or LaAlO3, which the benchmark holds), and AtomSegNet on a broad set of
  lattices in the spirit of its simulated training set (all of the above plus rock-salt MgO
  [100], fcc Au [100], fcc Pt [110] and 2H-MoSe2). Graphene left the generality set for this
  (see :mod:`stembench.dataset_publish.simulate.generality`).
- **Probes.** Five probe-forming conditions, none of them the benchmark's
  (:class:`~stembench.dataset_publish.simulate.probe.ProbeParameters` defaults: 200 kV,
  21.4 mrad, no defocus, 0.5 A source).
- **Thickness.** The HAADF Z exponent (a stand-in for thickness and detector angles) is drawn
  from 1.55-1.65 or 1.75-1.95, never the benchmark's 1.7.

Lattices are projected along the beam by hand: each basis column lists its atoms per repeat
along the beam, positions in angstrom (the honeycomb and MX2 monolayers are
:mod:`stembench.dataset_publish.simulate.structures`' own builders).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.simulate.structures import (
    ColumnStructure,
    Lattice,
    honeycomb,
    mx2,
    structure_from_columns,
    tile_lattice,
)
from stembench.errors import InputError

__all__ = [
    "CUBIC_STRUCTURES",
    "EXPONENT_RANGES",
    "HEXAGONAL_STRUCTURES",
    "MIXED_STRUCTURES",
    "TRAINING_PROBES",
    "Kind",
    "build_training_structure",
    "draw_exponent",
    "structures_for",
    "training_lattice",
]

Kind = Literal["mixed", "cubic", "hexagonal"]

def _lattice(a: float, b: float, basis: list[tuple[float, float]],
             symbols: list[tuple[str, ...]], group: str) -> Lattice:
    """A rectangular cell ``a x b`` with basis columns at fractional positions."""
    frac = np.asarray(basis, dtype=np.float64)
    return Lattice((a, 0.0), (0.0, b), frac * [a, b], tuple(symbols), group, None)


def _perovskite(a_site: str, b_site: str, a: float) -> Lattice:
    """ABO3 along [100]: A columns, B+O columns, O columns."""
    return _lattice(a, a, [(0, 0), (0.5, 0.5), (0.5, 0), (0, 0.5)],
                    [(a_site,), (b_site, "O"), ("O",), ("O",)], "Pm-3m")


_LATTICES: dict[str, Callable[[], Lattice]] = {
    "graphene": lambda: honeycomb("C", "C", 2.46),
    "BaSnO3[100]": lambda: _perovskite("Ba", "Sn", 4.116),
    "BaZrO3[100]": lambda: _perovskite("Ba", "Zr", 4.193),
    "SrVO3[100]": lambda: _perovskite("Sr", "V", 3.842),
    "KNbO3[100]": lambda: _perovskite("K", "Nb", 4.022),
    "MgO[100]": lambda: _lattice(4.212, 4.212, [(0, 0), (0.5, 0.5), (0.5, 0), (0, 0.5)],
                                 [("Mg", "O")] * 4, "Fm-3m"),
    "Au[100]": lambda: _lattice(4.078, 4.078, [(0, 0), (0.5, 0.5), (0.5, 0), (0, 0.5)],
                                [("Au",)] * 4, "Fm-3m"),
    "Pt[110]": lambda: _lattice(3.924, 3.924 / np.sqrt(2), [(0, 0), (0.5, 0.5)],
                                [("Pt",), ("Pt",)], "Fm-3m"),
    "MoSe2": lambda: mx2("Mo", "Se", 3.288),
}

#: AtomNet "hexagonal": graphene only, as the published weights were trained.
HEXAGONAL_STRUCTURES: tuple[str, ...] = ("graphene",)
#: AtomNet "cubic": cubic perovskites along [100] that the benchmark does not hold.
CUBIC_STRUCTURES: tuple[str, ...] = ("BaSnO3[100]", "BaZrO3[100]", "SrVO3[100]", "KNbO3[100]")
#: AtomSegNet: every training lattice.
MIXED_STRUCTURES: tuple[str, ...] = tuple(_LATTICES)

#: Probe-forming conditions of the training world (the benchmark's default is not among them).
TRAINING_PROBES: tuple[ProbeParameters, ...] = (
    ProbeParameters(energy_ev=300e3, convergence_mrad=25.0, source_fwhm_angstrom=0.6),
    ProbeParameters(convergence_mrad=30.0, source_fwhm_angstrom=0.4),
    ProbeParameters(convergence_mrad=17.0, source_fwhm_angstrom=0.7),
    ProbeParameters(energy_ev=80e3, convergence_mrad=28.0, source_fwhm_angstrom=0.6),
    ProbeParameters(convergence_mrad=24.0, defocus_angstrom=30.0, source_fwhm_angstrom=0.45),
)

#: Z-exponent ranges of the training world (the benchmark renders at exactly 1.7).
EXPONENT_RANGES: tuple[tuple[float, float], ...] = ((1.55, 1.65), (1.75, 1.95))


def structures_for(kind: Kind) -> tuple[str, ...]:
    """Training structure names of a kind: ``"hexagonal"``, ``"cubic"`` or ``"mixed"``."""
    by_kind = {"mixed": MIXED_STRUCTURES, "cubic": CUBIC_STRUCTURES,
               "hexagonal": HEXAGONAL_STRUCTURES}
    if kind not in by_kind:
        raise InputError(
            f"training data kind must be 'mixed', 'cubic' or 'hexagonal', got {kind!r}")
    return by_kind[kind]


def training_lattice(name: str) -> Lattice:
    """The projected lattice of training structure ``name``."""
    if name not in _LATTICES:
        raise InputError(f"unknown training structure {name!r}; known: {list(_LATTICES)}")
    return _LATTICES[name]()


def draw_exponent(rng: np.random.Generator) -> float:
    """A Z exponent from one of :data:`EXPONENT_RANGES`, chosen with equal chance."""
    low, high = EXPONENT_RANGES[int(rng.integers(len(EXPONENT_RANGES)))]
    return float(rng.uniform(low, high))


def build_training_structure(name: str, *, extent_angstrom: tuple[float, float],
                             exponent: float, seed: int | None) -> ColumnStructure:
    """Columns of training structure ``name`` filling ``extent_angstrom`` (width, height).

    ``seed`` shifts the lattice by a random fraction of its cell (``None``: no shift).

    Parameters
    ----------
    name : str
        A training structure (:func:`training_lattice`).
    extent_angstrom : tuple of float
        Field ``(width, height)``, angstrom.
    exponent : float
        HAADF Z exponent of the column weights.
    seed : int or None
        Seed of the random lattice shift; ``None``: no shift.
    """
    lat = training_lattice(name)
    origin = (0.0, 0.0)
    if seed is not None:
        frac = np.random.default_rng(seed).uniform(0, 1, 2)
        shift = frac[0] * np.array(lat.a1) + frac[1] * np.array(lat.a2)
        origin = (float(shift[0]), float(shift[1]))
    pos, weights, symbols, visible = tile_lattice(
        lat, extent_angstrom=extent_angstrom, origin_angstrom=origin, exponent=exponent)
    return structure_from_columns(name, pos, weights, symbols, visible,
                                  extent_angstrom=extent_angstrom, space_group=lat.space_group)
