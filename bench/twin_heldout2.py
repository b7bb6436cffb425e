"""The second held-out set of the twin assessment (`bench_assess_twin.py --set heldout2`).

The first held-out set (:mod:`twin_heldout`) prompted two changes to the method, so its
figures are no longer independent of it. This third set was fixed and committed on
2026-12-07 before any result on it was seen, and before the method it checks (the count of
missing columns in :mod:`stembench.client.assess.twin.likeness`) was run on it: ten projected
lattices in none of the benchmark (any form), the training worlds, the development set, the
first held-out set or ``stembench.client.assess.validation``'s lattices (asserted by
``bench_assess_twin.lattices``), under three qualities none of the earlier sets used, at seed 2.
It is to be run once; its results must not change the method.

The projections are computed from each conventional cell's atoms (fractional coordinates of
the named space group, written out below) by grouping the atoms that share a position across
the beam; the labels come from the same positions, so a projection error would change the
lattice, not the truth of its labels.
"""

from __future__ import annotations

import math

import numpy as np

from stembench.dataset_publish.simulate.structures import Lattice

SQRT2, SQRT3 = math.sqrt(2.0), math.sqrt(3.0)

#: Seed of every image of this set (development: 0, first held-out set: 1).
HELDOUT2_SEED = 2

#: Column length aimed at, in angstrom (the cell is repeated along the beam to about this).
_THICKNESS = 10.0

Atom = tuple[str, float, float, float]


def _along(lengths: tuple[float, float, float], atoms: list[Atom], axis: int,
           group: str) -> Lattice:
    """The columns of an orthogonal cell (``lengths`` in angstrom, ``atoms`` fractional)
    viewed along ``axis`` (0, 1, 2 = x, y, z); the other two axes, in cyclic order, span the
    projected cell."""
    u, v = (axis + 1) % 3, (axis + 2) % 3
    columns: dict[tuple[float, float], list[tuple[float, str]]] = {}
    for symbol, *frac in atoms:
        key = (round(frac[u] % 1.0, 4) % 1.0, round(frac[v] % 1.0, 4) % 1.0)
        columns.setdefault(key, []).append((frac[axis] % 1.0, symbol))
    repeats = max(1, round(_THICKNESS / lengths[axis]))
    keys = sorted(columns)
    basis = np.array([(fu * lengths[u], fv * lengths[v]) for fu, fv in keys], float)
    symbols = tuple(tuple(s for _, s in sorted(columns[k])) * repeats for k in keys)
    return Lattice((lengths[u], 0.0), (0.0, lengths[v]), basis, symbols, group, None)


def _b20(x: float) -> list[tuple[float, float, float]]:
    """Wyckoff 4a of P2_13: (x,x,x) and its three screw images."""
    return [(x, x, x), (0.5 - x, -x, 0.5 + x), (-x, 0.5 + x, 0.5 - x), (0.5 + x, 0.5 - x, -x)]


def _pnma_4c(x: float, z: float) -> list[tuple[float, float, float]]:
    """Wyckoff 4c of Pnma: (x,1/4,z) and its images."""
    return [(x, 0.25, z), (0.5 - x, 0.75, 0.5 + z), (-x, 0.75, -z), (0.5 + x, 0.25, 0.5 - z)]


def _cmce_8f(y: float, z: float) -> list[tuple[float, float, float]]:
    """Wyckoff 8f of Cmce: (0,y,z), its images and their C-centred copies."""
    half = [(0.0, y, z), (0.0, 0.5 - y, 0.5 + z), (0.0, 0.5 + y, 0.5 - z), (0.0, -y, -z)]
    return half + [(0.5 + p, 0.5 + q, r) for p, q, r in half]


def _atoms(symbol: str, sites: list[tuple[float, float, float]]) -> list[Atom]:
    return [(symbol, x, y, z) for x, y, z in sites]


def heldout2_lattices() -> dict[str, Lattice]:
    """The ten lattices of the second held-out set."""
    a15, b20 = 4.555, 4.558
    sn_a, sn_c = 5.832, 3.182
    bp = (3.314, 10.478, 4.376)
    snse = (11.49, 4.153, 4.440)
    pts_a, pts_c = 3.470, 6.110
    mo, lab6, lab6_x = 3.147, 4.157, 0.1996
    nias_a, nias_c = 3.619, 5.034
    edge = 2.4  # square-octagon net: bond length, angstrom
    octa = (1.0 + SQRT2) * edge
    f = (edge / SQRT2) / octa
    return {
        # A15 Cr3Si along [100]: Si on the bcc sites, Cr pairs on the cube faces
        "Cr3Si[100]": _along((a15,) * 3, _atoms("Si", [(0, 0, 0), (0.5, 0.5, 0.5)]) + _atoms(
            "Cr", [(0.25, 0, 0.5), (0.75, 0, 0.5), (0.5, 0.25, 0), (0.5, 0.75, 0),
                   (0, 0.5, 0.25), (0, 0.5, 0.75)]), 2, "Pm-3n"),
        # B20 MnSi along [001]: eight single-atom columns, no two on a simple net
        "MnSi[001]": _along((b20,) * 3, _atoms("Mn", _b20(0.138)) + _atoms("Si", _b20(0.845)),
                            2, "P2_13"),
        # white tin along [100]: a rhombic arrangement of four columns in b x c
        "beta-Sn[100]": _along((sn_a, sn_a, sn_c), _atoms("Sn", [
            (0, 0, 0), (0, 0.5, 0.25), (0.5, 0.5, 0.5), (0.5, 0, 0.75)]), 0, "I4_1/amd"),
        # black phosphorus along [100] (the short a axis): puckered double layers
        "black-P[100]": _along(bp, _atoms("P", _cmce_8f(0.1017, 0.0806)), 0, "Cmce"),
        # SnSe along [010]: Sn-Se zigzag bilayers
        "SnSe[010]": _along(snse, _atoms("Sn", _pnma_4c(0.1185, 0.1029))
                            + _atoms("Se", _pnma_4c(0.8550, 0.4818)), 1, "Pnma"),
        # cooperite PtS along [100]: S chains at c/4 and Pt columns between them
        "PtS[100]": _along((pts_a, pts_a, pts_c), _atoms("Pt", [(0, 0.5, 0), (0.5, 0, 0.5)])
                           + _atoms("S", [(0, 0, 0.25), (0, 0, 0.75)]), 0, "P4_2/mmc"),
        # bcc Mo along [110]: a rectangular net a / sqrt(2) x a / 2, one atom per a sqrt(2)
        "Mo[110]": Lattice((mo / SQRT2, 0.0), (0.0, mo / 2), np.zeros((1, 2)),
                           (("Mo",) * 2,), "Im-3m", None),
        # LaB6 along [100]: La columns and the much fainter B octahedra between them
        "LaB6[100]": _along((lab6,) * 3, _atoms("La", [(0, 0, 0)]) + _atoms("B", [
            (lab6_x, 0.5, 0.5), (-lab6_x, 0.5, 0.5), (0.5, lab6_x, 0.5), (0.5, -lab6_x, 0.5),
            (0.5, 0.5, lab6_x), (0.5, 0.5, -lab6_x)]), 2, "Pm-3m"),
        # NiAs along [11-20]: Ni columns c / 2 apart, As columns at +-1/3 between them
        "NiAs[11-20]": Lattice((nias_a * SQRT3 / 2, 0.0), (0.0, nias_c), np.array([
            (0.0, 0.0), (0.0, nias_c / 2), (2 / 3 * nias_a * SQRT3 / 2, nias_c / 4),
            (1 / 3 * nias_a * SQRT3 / 2, 3 * nias_c / 4)]),
            (("Ni",) * 3, ("Ni",) * 3, ("As",) * 3, ("As",) * 3), "P6_3/mmc", None),
        # the square-octagon (4.8.8) net of one kind of column, bonds 2.4 A
        "square-octagon-2D": Lattice((octa, 0.0), (0.0, octa), np.array([
            (f, 0.0), (1 - f, 0.0), (0.0, f), (0.0, 1 - f)]) * octa, (("Mo",),) * 4, "p4mm",
            None),
    }


def heldout2_qualities() -> list:
    """Three qualities used by no earlier set (development 8/10/12 atoms per 100 px,
    5000/600/150 e-/A^2, contrast 1/0.5/0.25; first held-out set 7/11/14, 4000/800/250,
    1/0.6/0.35)."""
    from stembench.client.assess.validation import Condition

    return [Condition("good-3", 6.5, 6000.0, 0.8), Condition("moderate-3", 9.5, 1000.0, 0.45),
            Condition("poor-3", 13.0, 350.0, 0.3)]
