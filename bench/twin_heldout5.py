"""Held-out set 5 of the twin assessment (`bench_assess_twin.py --set heldout5`).

README numbering: held-out sets 1-4 are :mod:`twin_heldout` to :mod:`twin_heldout4`; every one
of them has been run and seen, so none is independent of a later change of the method. This set
was fixed and committed on 2026-12-07 (session start, 06:05 UTC) before any change of the
method made in that session and before any result on it was seen: ten projected lattices in
none of the benchmark (any form), the training worlds, the development sets, held-out sets 1-4
or ``stembench.client.assess.validation``'s lattices (asserted by
``bench_assess_twin.lattices``), under three qualities none of the earlier sets used, at seed 5.
It is to be run once; its results must not change the method.

The projections are computed from each conventional cell's atoms (fractional coordinates of
the named space group, written out below) as in :mod:`twin_heldout2` and :mod:`twin_heldout3`;
:func:`closest_columns` checks that no two projected columns are closer than 1.8 A (the
fitted column model cannot represent overlapping columns, which is a limitation stated
elsewhere, not a thing to validate here).
"""

from __future__ import annotations

import numpy as np

from stembench.dataset_publish.simulate.structures import Lattice
from twin_heldout2 import _along, _atoms
from twin_heldout3 import _body, _hex_along_c

#: Seed of every image of this set (development 0, held-out sets 1-4: 1-4).
HELDOUT5_SEED = 5


def heldout5_lattices() -> dict[str, Lattice]:
    """The ten lattices of held-out set 5."""
    cuau_a, cuau_c = 2.803, 3.670
    sn_a, sn_c = 5.832, 3.182
    in_a, in_c = 3.252, 4.946
    al3ti_a, al3ti_c = 3.848, 8.596
    te_a, te_c, te_x = 4.457, 5.929, 0.2636
    sb_a, sb_c, sb_z = 4.307, 11.273, 0.2336
    u_a, u_b, u_c, u_y = 2.854, 5.869, 4.955, 0.1025
    net = 6.65
    edge = 2.6
    third = 1.0 / 3.0
    return {
        # rows of heavy column pairs 2.5 A apart, a light column between the rows (2D, no
        # parent crystal)
        "dimer-rows-2D": Lattice((6.2, 0.0), (0.0, 3.3),
                                 np.array([(0.0, 0.0), (2.5, 0.0), (4.35, 1.65)]),
                                 (("Hf",) * 2, ("Hf",) * 2, ("Si",) * 2), "pm", None),
        # L1_0 CuAu along [100] (primitive tetragonal cell): Au and Cu columns alternate
        "CuAu[100]": _along((cuau_a, cuau_a, cuau_c), _atoms("Au", [(0, 0, 0)])
                            + _atoms("Cu", [(0.5, 0.5, 0.5)]), 0, "P4/mmm"),
        # beta-Sn (I4_1/amd, origin 1) along [001]: a square net of Sn columns a / 2 apart
        "Sn[001]": _along((sn_a, sn_a, sn_c), _atoms("Sn", _body([(0, 0, 0), (0, 0.5, 0.25)])),
                          2, "I4_1/amd"),
        # body-centred tetragonal In along [100]: a centred rectangle of In columns
        "In[100]": _along((in_a, in_a, in_c), _atoms("In", _body([(0, 0, 0)])), 0, "I4/mmm"),
        # D0_22 Al3Ti along [100]: Ti every fourth column along c, Al between
        "Al3Ti[100]": _along((al3ti_a, al3ti_a, al3ti_c), _atoms("Ti", _body([(0, 0, 0)]))
                             + _atoms("Al", _body([(0, 0, 0.5), (0, 0.5, 0.25),
                                                   (0.5, 0, 0.25)])), 0, "I4/mmm"),
        # trigonal Te along [0001]: the helical chains seen end on, triangles of columns
        "Te[0001]": _hex_along_c(te_a, te_c, _atoms("Te", [(te_x, 0, third), (0, te_x, 2 * third),
                                                           (1 - te_x, 1 - te_x, 0)]), "P3_121"),
        # A7 Sb along [0001] (hexagonal setting): a triangular net of Sb columns a / sqrt 3
        "Sb[0001]": _hex_along_c(sb_a, sb_c, _atoms("Sb", [
            (0, 0, sb_z), (0, 0, -sb_z), (2 * third, third, third + sb_z),
            (2 * third, third, third - sb_z), (third, 2 * third, 2 * third + sb_z),
            (third, 2 * third, 2 * third - sb_z)]), "R-3m"),
        # alpha-U (Cmcm) along [100]: zigzag chains of U columns
        "U[100]": _along((u_a, u_b, u_c), _atoms("U", [(0, u_y, 0.25), (0, -u_y, 0.75),
                                                      (0.5, 0.5 + u_y, 0.25),
                                                      (0.5, 0.5 - u_y, 0.75)]), 0, "Cmcm"),
        # the elongated triangular tiling (3.3.3.4.4; 2D, no parent crystal), edge 2.6 A:
        # two rows of heavy columns framing squares, two rows of light ones shifted by half
        "elongated-triangular-2D": Lattice(
            (edge, 0.0), (0.0, float(edge * (2.0 + np.sqrt(3.0)))),
            np.array([(0.0, 0.0), (0.0, edge), (edge / 2, edge * (1.0 + np.sqrt(3.0) / 2)),
                      (edge / 2, edge * (2.0 + np.sqrt(3.0) / 2))]),
            (("Ta",) * 2, ("Ta",) * 2, ("Ge",) * 2, ("Ge",) * 2), "pmm", None),
        # a square net of columns net / 2 apart, every second one heavy along both axes
        # (2D, no parent crystal): one heavy column and three light ones per cell
        "square-superstructure-2D": Lattice(
            (net, 0.0), (0.0, net),
            np.array([(0.0, 0.0), (net / 2, 0.0), (0.0, net / 2), (net / 2, net / 2)]),
            (("Mo",) * 2, ("S",) * 2, ("S",) * 2, ("S",) * 2), "p4mm", None),
    }


def heldout5_qualities() -> list:
    """Three qualities used by no earlier set (development 8/10/12 atoms per 100 px,
    5000/600/150 e-/A^2, contrast 1/0.5/0.25; set 1: 7/11/14, 4000/800/250, 1/0.6/0.35;
    set 2: 6.5/9.5/13, 6000/1000/350, 0.8/0.45/0.3; set 3: 7.5/10.5/12.5, 3000/700/200,
    0.9/0.55/0.4; set 4: 8.5/11.5/13.5, 2500/450/120, 0.85/0.65/0.45)."""
    from stembench.client.assess.validation import Condition

    return [Condition("good-6", 7.8, 3500.0, 0.75), Condition("moderate-6", 10.8, 550.0, 0.6),
            Condition("poor-6", 12.8, 180.0, 0.35)]


def closest_columns(lattice: Lattice) -> float:
    """The smallest distance between two projected columns of ``lattice``, in angstrom: the
    cell is first Gauss-reduced and the basis wrapped into it, then every column is compared
    with every other of the 5 x 5 surrounding cells, itself excluded by index (so coincident
    columns give 0)."""
    a, b = np.asarray(lattice.a1, float), np.asarray(lattice.a2, float)
    while True:  # Gauss (Lagrange) reduction: shortest vectors spanning the same lattice
        if b @ b < a @ a:
            a, b = b, a
        mu = round(float(a @ b) / float(a @ a))
        if mu == 0:
            break
        b = b - mu * a
    frac = np.linalg.solve(np.column_stack([a, b]), np.asarray(lattice.basis, float).T).T % 1.0
    basis = frac @ np.vstack([a, b])
    shifts = [(i, j) for i in range(-2, 3) for j in range(-2, 3)]
    points = np.array([p + i * a + j * b for p in basis for i, j in shifts])
    best = np.inf
    for k, p in enumerate(basis):
        d = np.hypot(*(points - p).T)
        d[k * len(shifts) + shifts.index((0, 0))] = np.inf
        best = min(best, float(d.min()))
    return best
