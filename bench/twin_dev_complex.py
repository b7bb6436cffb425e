"""Development lattices with many columns per cell (`bench_assess_twin.py --set complex`).

Made on 2026-12-07 to find and fix why the assessment's lattice finder refused the A15-,
B20- and NiAs-like lattices of the second held-out set, without looking at any held-out set
again: the same structure types in other materials (V3Si, FeSi, CrSb), and two for the
missing-column count at high dose (Ag2O, PdO: cuprite and cooperite types), imaged under the
development qualities at seed 0. Results on them shape the method; they are development
figures, never validation.
"""

from __future__ import annotations

import math

import numpy as np

from stembench.dataset_publish.simulate.structures import Lattice
from twin_heldout2 import _along, _atoms, _b20

SQRT3 = math.sqrt(3.0)


def complex_lattices() -> dict[str, Lattice]:
    """Five development lattices with 3 to 8 columns per cell."""
    v3si, fesi, ag2o = 4.722, 4.483, 4.72
    pdo_a, pdo_c = 3.043, 5.337
    crsb_a, crsb_c = 4.12, 5.47
    return {
        # A15 V3Si along [100]: first-order reflections nearly extinct
        "V3Si[100]": _along((v3si,) * 3, _atoms("Si", [(0, 0, 0), (0.5, 0.5, 0.5)]) + _atoms(
            "V", [(0.25, 0, 0.5), (0.75, 0, 0.5), (0.5, 0.25, 0), (0.5, 0.75, 0),
                  (0, 0.5, 0.25), (0, 0.5, 0.75)]), 2, "Pm-3n"),
        # B20 FeSi along [001]
        "FeSi[001]": _along((fesi,) * 3, _atoms("Fe", _b20(0.137)) + _atoms("Si", _b20(0.842)),
                            2, "P2_13"),
        # NiAs-type CrSb along [11-20]
        "CrSb[11-20]": Lattice((crsb_a * SQRT3 / 2, 0.0), (0.0, crsb_c), np.array([
            (0.0, 0.0), (0.0, crsb_c / 2), (2 / 3 * crsb_a * SQRT3 / 2, crsb_c / 4),
            (1 / 3 * crsb_a * SQRT3 / 2, 3 * crsb_c / 4)]),
            (("Cr",) * 3, ("Cr",) * 3, ("Sb",) * 3, ("Sb",) * 3), "P6_3/mmc", None),
        # cuprite-type Ag2O along [100]: Ag on a square net a / 2, faint O in half its squares
        "Ag2O[100]": _along((ag2o,) * 3, _atoms("O", [(0, 0, 0), (0.5, 0.5, 0.5)]) + _atoms(
            "Ag", [(0.25, 0.25, 0.25), (0.75, 0.75, 0.25), (0.75, 0.25, 0.75),
                   (0.25, 0.75, 0.75)]), 2, "Pn-3m"),
        # cooperite-type PdO along [100]: O chains at c / 4, Pd columns between them
        "PdO[100]": _along((pdo_a, pdo_a, pdo_c), _atoms("Pd", [(0, 0.5, 0), (0.5, 0, 0.5)])
                           + _atoms("O", [(0, 0, 0.25), (0, 0, 0.75)]), 0, "P4_2/mmc"),
    }
