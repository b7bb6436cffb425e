"""The held-out validation set of the twin assessment (`bench_assess_twin.py --set heldout`).

Fixed on 2026-12-07, before any result on it was seen and without changing the method
afterwards: ten projected lattices in none of the benchmark (any form), the training worlds,
or the development validation set of ``bench_assess_twin.py`` (whose results shaped the
method), under three qualities other than the development ones, at seed 1 (the development
set used seed 0). The projections are done by hand below (cubic, tetragonal and hexagonal cells
viewed down the named zone axis; columns of one repeat along the beam, repeated for thickness);
the labels come from the same positions, so a projection error would change the lattice, not
the truth of its labels.
"""

from __future__ import annotations

import math

import numpy as np

from stembench.dataset_publish.simulate.structures import Lattice

SQRT2, SQRT3 = math.sqrt(2.0), math.sqrt(3.0)


def _cell(a1: tuple[float, float], a2: tuple[float, float],
          basis: list[tuple[float, float, tuple[str, ...]]], group: str) -> Lattice:
    """A cell spanned by ``a1``, ``a2`` with columns at fractional ``(f1, f2)``."""
    frac = np.array([(f1, f2) for f1, f2, _ in basis], float)
    return Lattice(a1, a2, frac @ np.array([a1, a2], float), tuple(s for _, _, s in basis),
                   group, None)


def _rect(a: float, b: float, basis: list[tuple[float, float, tuple[str, ...]]],
          group: str) -> Lattice:
    return _cell((a, 0.0), (0.0, b), basis, group)


def heldout_lattices() -> dict[str, Lattice]:
    """The ten held-out lattices."""
    ktao3, tis2, ti_a, ti_c = 3.989, 3.407, 2.951, 4.686
    gan_a, gan_c, gan_u = 3.189, 5.185, 0.377
    ge, cu2o, sno2_a, sno2_c, sno2_u, reo3 = 5.658, 4.270, 4.737, 3.186, 0.307, 3.750
    three = 3
    return {
        # perovskite along [110]: K-O columns, Ta columns, O columns (2 O per repeat)
        "KTaO3[110]": _rect(ktao3 / SQRT2, ktao3, [
            (0, 0, ("K", "O") * three), (0, 0.5, ("Ta",) * three),
            (0.5, 0.5, ("O", "O") * three)], "Pm-3m"),
        # 1T monolayer along [001]: Ti and the two S sites fill a triangular net
        "TiS2-1T[001]": _rect(tis2, tis2 * SQRT3, [
            (0, 0, ("Ti",)), (0.5, 0.5, ("Ti",)), (0, 1 / 3, ("S",)), (0.5, 1 / 6, ("S",)),
            (0.5, 5 / 6, ("S",)), (0, 2 / 3, ("S",))], "P-3m1"),
        # hcp along [11-20]: ABAB stacking, a sqrt(3)/2 x c
        "Ti[11-20]": _rect(ti_a * SQRT3 / 2, ti_c, [
            (2 / 3, 0.25, ("Ti",) * three), (1 / 3, 0.75, ("Ti",) * three)], "P63/mmc"),
        # wurtzite along [11-20]: Ga-N dumbbells about 1.1 A apart in projection
        "GaN[11-20]": _rect(gan_a * SQRT3 / 2, gan_c, [
            (2 / 3, 0, ("Ga",) * three), (1 / 3, 0.5, ("Ga",) * three),
            (2 / 3, gan_u, ("N",) * three), (1 / 3, 0.5 + gan_u, ("N",) * three)], "P63mc"),
        # diamond along [100]: a square net of a sqrt(2) / 4
        "Ge[100]": _rect(ge, ge, [(x, y, ("Ge", "Ge")) for x, y in (
            (0, 0), (0.5, 0.5), (0.5, 0), (0, 0.5), (0.25, 0.25), (0.75, 0.75), (0.75, 0.25),
            (0.25, 0.75))], "Fd-3m"),
        # cuprite along [100]: Cu squares, O in every other centre
        "Cu2O[100]": _rect(cu2o, cu2o, [
            (0, 0, ("O", "O")), (0.5, 0.5, ("O", "O")), (0.25, 0.25, ("Cu", "Cu")),
            (0.75, 0.75, ("Cu", "Cu")), (0.25, 0.75, ("Cu", "Cu")),
            (0.75, 0.25, ("Cu", "Cu"))], "Pn-3m"),
        # rutile along [110]: Sn-O2 columns, Sn columns, an O pair 0.76 A apart
        "SnO2[110]": _rect(sno2_a / SQRT2, sno2_c, [
            (0, 0, ("Sn", "O", "O") * 2), (0, 0.5, ("Sn",) * 2),
            (2 * sno2_u, 0.5, ("O",) * 2), (1 - 2 * sno2_u, 0.5, ("O",) * 2)], "P42/mnm"),
        # ReO3 along [100]: Re on the corners, O on the edge centres
        "ReO3[100]": _rect(reo3, reo3, [
            (0, 0, ("Re",) * three), (0.5, 0, ("O",) * three), (0, 0.5, ("O",) * three)],
            "Pm-3m"),
        # a kagome net of 2.5 A spacing (one kind of column)
        "kagome-2D": _cell((5.0, 0.0), (-2.5, 2.5 * SQRT3), [
            (0, 0, ("Mo",)), (0.5, 0, ("Mo",)), (0, 0.5, ("Mo",))], "p6mm"),
        # an oblique net of unequal pairs: a heavy and a light column 1.9 A apart
        "oblique-pairs-2D": _cell((4.2, 0.0), (1.4, 3.7), [
            (0, 0, ("Mo", "Mo")), (0.45, 0.35, ("S",))], "p1"),
    }


def heldout_qualities() -> list:
    """Three qualities, none of the development set's (8/10/12 atoms per 100 px, 5000/600/150
    e-/A^2, contrast 1/0.5/0.25)."""
    from stembench.client.assess.validation import Condition

    return [Condition("good-2", 7.0, 4000.0), Condition("moderate-2", 11.0, 800.0, 0.6),
            Condition("poor-2", 14.0, 250.0, 0.35)]


#: Seed of every held-out image (the development set's: 0).
HELDOUT_SEED = 1
