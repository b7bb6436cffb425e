"""The fifth held-out set of the twin assessment (`bench_assess_twin.py --set heldout4`).

The fourth set (:mod:`twin_heldout3`) showed the twins easier than the images at poor quality;
the fifth version of the method (the fit's own bias divided out, ``twin/bias.py``) was shaped on
the development sets only. This set was fixed and committed on 2026-12-07 before any result on
it was seen and before that version was final: ten projected lattices in none of the benchmark
(any form), the training worlds, the development sets, held-out sets 1-4 or
``stembench.client.assess.validation``'s lattices (asserted by ``bench_assess_twin.lattices``),
under three qualities none of the earlier sets used (one at a lower dose than any), at seed 4.
It is to be run once; its results must not change the method.

The projections are computed from each conventional cell's atoms (fractional coordinates of
the named space group, written out below) as in :mod:`twin_heldout2` and :mod:`twin_heldout3`.
"""

from __future__ import annotations

import numpy as np

from stembench.dataset_publish.simulate.structures import Lattice
from twin_heldout2 import _along, _atoms
from twin_heldout3 import _body, _fcc, _hex_along_c

#: Seed of every image of this set (development 0, the earlier held-out scripts 1, 2 and 3).
HELDOUT4_SEED = 4


def heldout4_lattices() -> dict[str, Lattice]:
    """The ten lattices of the fifth held-out set."""
    insb, niti, ag = 6.479, 3.015, 4.086
    mg_a, mg_c = 3.209, 5.211
    al2cu_a, al2cu_c, cu_x = 6.067, 4.877, 0.1581
    pbo_a, pbo_c, pb_z = 3.975, 5.023, 0.2385
    wc_a, wc_c = 2.906, 2.837
    bfa_a, bfa_c, as_z = 3.963, 13.017, 0.354
    ni2in_a, ni2in_c = 4.179, 5.131
    third = 1.0 / 3.0
    zig_a, zig_b = 4.2, 3.4  # zigzag net: rectangular cell, angstrom
    cu_8h = [(cu_x, cu_x + 0.5, 0), (-cu_x, 0.5 - cu_x, 0), (0.5 - cu_x, cu_x, 0),
             (0.5 + cu_x, -cu_x, 0)]
    return {
        # zinc-blende InSb along [100]: In and Sb columns alternate on a square net a / 2
        "InSb[100]": _along((insb,) * 3, _atoms("In", _fcc([(0, 0, 0)]))
                            + _atoms("Sb", _fcc([(0.25, 0.25, 0.25)])), 0, "F-43m"),
        # B2 NiTi along [100]: pure Ni and pure Ti columns in a checkerboard
        "NiTi[100]": _along((niti,) * 3, _atoms("Ni", [(0, 0, 0)])
                            + _atoms("Ti", [(0.5, 0.5, 0.5)]), 0, "Pm-3m"),
        # fcc Ag along [100]: one kind of column on a square net a / 2
        "Ag[100]": _along((ag,) * 3, _atoms("Ag", _fcc([(0, 0, 0)])), 0, "Fm-3m"),
        # hcp Mg along [0001]: a honeycomb of Mg columns
        "Mg[0001]": _hex_along_c(mg_a, mg_c, _atoms("Mg", [(third, 2 * third, 0.25),
                                                           (2 * third, third, 0.75)]),
                                 "P63/mmc"),
        # theta Al2Cu along [001]: Al columns on a square net, Cu squares around them
        "Al2Cu[001]": _along((al2cu_a, al2cu_a, al2cu_c),
                             _atoms("Al", _body([(0, 0, 0.25), (0, 0, 0.75)]))
                             + _atoms("Cu", _body(cu_8h)), 2, "I4/mcm"),
        # litharge PbO along [001]: Pb and O columns in a checkerboard
        "PbO[001]": _along((pbo_a, pbo_a, pbo_c), _atoms("O", [(0.75, 0.25, 0), (0.25, 0.75, 0)])
                           + _atoms("Pb", [(0.25, 0.25, pb_z), (0.75, 0.75, -pb_z)]), 2,
                           "P4/nmm"),
        # WC along [0001]: a triangular net of W, C in half of its triangles
        "WC[0001]": _hex_along_c(wc_a, wc_c, _atoms("W", [(0, 0, 0)])
                                 + _atoms("C", [(third, 2 * third, 0.5)]), "P-6m2"),
        # ThCr2Si2-type BaFe2As2 along [100]: Ba, Fe and As columns in a tall a x c cell
        "BaFe2As2[100]": _along((bfa_a, bfa_a, bfa_c), _atoms("Ba", _body([(0, 0, 0)]))
                                + _atoms("Fe", _body([(0, 0.5, 0.25), (0.5, 0, 0.25)]))
                                + _atoms("As", _body([(0, 0, as_z), (0, 0, -as_z)])), 0,
                                "I4/mmm"),
        # Ni2In along [0001]: Ni columns on a triangular net, mixed Ni-In columns between
        "Ni2In[0001]": _hex_along_c(ni2in_a, ni2in_c, _atoms("Ni", [
            (0, 0, 0), (0, 0, 0.5), (third, 2 * third, 0.75), (2 * third, third, 0.25)])
            + _atoms("In", [(third, 2 * third, 0.25), (2 * third, third, 0.75)]), "P63/mmc"),
        # a zigzag net: heavy and light columns alternating along zigzag chains
        "zigzag-2D": Lattice((zig_a, 0.0), (0.0, zig_b), np.array([
            (0.0, 0.0), (zig_a / 2, 0.35 * zig_b)]), (("W",) * 2, ("S",) * 2), "pm", None),
    }


def heldout4_qualities() -> list:
    """Three qualities used by no earlier set (development 8/10/12 atoms per 100 px,
    5000/600/150 e-/A^2, contrast 1/0.5/0.25; held-out set 1: 7/11/14, 4000/800/250,
    1/0.6/0.35; set 2: 6.5/9.5/13, 6000/1000/350, 0.8/0.45/0.3; set 3: 7.5/10.5/12.5,
    3000/700/200, 0.9/0.55/0.4), the poor one at a lower dose than any of them."""
    from stembench.client.assess.validation import Condition

    return [Condition("good-5", 8.5, 2500.0, 0.85), Condition("moderate-5", 11.5, 450.0, 0.65),
            Condition("poor-5", 13.5, 120.0, 0.45)]
