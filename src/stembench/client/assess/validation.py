"""Check ``assess`` against the truth: are its "recommended" verdicts right?

Images of lattices outside the benchmark groups are simulated with known labels (the fast
incoherent-HAADF backend, the generator's probe), degraded (pixel size, dose, contrast),
assessed exactly as ``stembench assess`` does, and every model's verdict is compared with the
model's actual score on the image under the benchmark's criteria (recall >= 0.90, precision
>= 0.95, RMS <= 0.30 A; :data:`stembench.client.analysis.cutoffs.DEFAULT_CRITERIA`). A
"recommended" verdict is *wrong* when the model fails them.

Lattices: every perfect crystal of :mod:`stembench.dataset_publish.simulate.structures` except the
benchmark materials (SrTiO3 [100], WS2), plus Au [100] (fcc, a = 4.078 A) and CeO2 [110]
(fluorite, a = 5.411 A), which no part of stembench renders otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from stembench.client.analysis.cutoffs import DEFAULT_CRITERIA, Cutoff
from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.simulate import degradations as deg
from stembench.dataset_publish.simulate.structures import Lattice

__all__ = [
    "VALIDATION_CONDITIONS",
    "Condition",
    "VerdictCheck",
    "check_verdicts",
    "lattice_image",
    "validation_image",
    "validation_lattice",
    "validation_lattice_names",
    "wrong_recommendation_rate",
]


@dataclass(frozen=True)
class Condition:
    """How an image is degraded: sampling, dose (e-/A^2) and contrast ((max - min) / max)."""

    name: str
    atoms_per_100px: float
    dose: float  # e-/A^2
    contrast: float = 1.0


#: Conditions every lattice is checked under.
VALIDATION_CONDITIONS: tuple[Condition, ...] = (
    Condition("clean", 8.0, 20000.0),
    Condition("low dose", 8.0, 300.0),
    Condition("low contrast", 8.0, 5000.0, 0.05),
    Condition("coarse pixels", 15.0, 5000.0),
)


def _au100() -> Lattice:
    a = 4.078
    return Lattice((a, 0.0), (0.0, a), np.array([[0.0, 0.0], [a / 2, a / 2]]),
                   (("Au", "Au"), ("Au", "Au")), "Fm-3m", None)


def _ceo2_110() -> Lattice:
    a = 5.411
    w = a / math.sqrt(2.0)
    basis = np.array([[0.0, 0.0], [w / 2, a / 2], [0.0, a / 4], [0.0, 3 * a / 4],
                      [w / 2, a / 4], [w / 2, 3 * a / 4]])
    symbols = (("Ce", "Ce"), ("Ce", "Ce"), ("O", "O"), ("O", "O"), ("O", "O"), ("O", "O"))
    return Lattice((w, 0.0), (0.0, a), basis, symbols, "Fm-3m", None)


_EXTRA: dict[str, Callable[[], Lattice]] = {"Au[100]": _au100, "CeO2[110]": _ceo2_110}


def validation_lattice_names() -> list[str]:
    """Lattices outside the benchmark groups: stembench's other perfect crystals and the extra
    ones of this module."""
    from stembench.dataset_publish.simulate.catalogue import list_structures
    from stembench.dataset_publish.simulate.generality import GENERALITY_STRUCTURES
    from stembench.dataset_publish.simulate.series import MATERIALS

    return [n for n in list_structures() if n not in GENERALITY_STRUCTURES
            and n not in MATERIALS] + list(_EXTRA)


def validation_lattice(name: str) -> Lattice:
    """The lattice called ``name`` (see :func:`validation_lattice_names`)."""
    from stembench.dataset_publish.simulate.structures import lattice

    return _EXTRA[name]() if name in _EXTRA else lattice(name)


def validation_image(name: str, condition: Condition, *, shape: tuple[int, int] = (160, 160),
                     seed: int = 0) -> BenchmarkImage:
    """A labelled image of lattice ``name`` under ``condition``.

    Parameters
    ----------
    name : str
        A validation lattice (:func:`validation_lattice`).
    condition, shape, seed
        As in :func:`lattice_image`.
    """
    return lattice_image(validation_lattice(name), name, condition, shape=shape, seed=seed)


def lattice_image(lat: Lattice, name: str, condition: Condition, *,
                  shape: tuple[int, int] = (160, 160), seed: int = 0) -> BenchmarkImage:
    """A labelled image of the lattice ``lat`` (called ``name``) under ``condition``.

    Parameters
    ----------
    lat : Lattice
        The lattice.
    name : str
        Its name, in the image id.
    condition : Condition
        Sampling, dose and contrast of the image.
    shape : tuple of int, optional
        Image shape ``(rows, columns)`` in pixels; default (160, 160).
    seed : int, optional
        Seed of the scan and noise; default 0.
    """
    from stembench.dataset_publish.simulate.fast_backend import FastHAADF
    from stembench.dataset_publish.simulate.probe import ProbeParameters
    from stembench.dataset_publish.simulate.scan import ScanParameters, beam_positions
    from stembench.dataset_publish.simulate.series import seed_for
    from stembench.dataset_publish.simulate.structures import structure_from_columns, tile_lattice
    from stembench.dataset_publish.simulate.visibility import column_pixels

    rng = np.random.default_rng(seed_for("assess-validation", name, condition.name, seed))
    margin = 5.0
    pos, weights, symbols, visible = tile_lattice(
        lat, extent_angstrom=(60.0, 60.0),
        origin_angstrom=tuple(rng.uniform(0, 1, 2) @ np.array([lat.a1, lat.a2])))
    spacing = structure_from_columns(name, pos, weights, symbols, visible,
                                     extent_angstrom=(60.0, 60.0),
                                     space_group=lat.space_group).column_spacing_angstrom
    pixel = condition.atoms_per_100px * spacing / 100.0
    extent = (shape[1] * pixel + 2 * margin, shape[0] * pixel + 2 * margin)
    pos, weights, symbols, visible = tile_lattice(
        lat, extent_angstrom=extent,
        origin_angstrom=tuple(rng.uniform(0, 1, 2) @ np.array([lat.a1, lat.a2])))
    structure = structure_from_columns(name, pos, weights, symbols, visible,
                                       extent_angstrom=extent, space_group=lat.space_group)
    scan = ScanParameters(shape, pixel, (margin, margin))
    x, y = beam_positions(scan)
    clean = FastHAADF(ProbeParameters()).intensity(structure, x, y)
    clean = clean / clean.max()
    if condition.contrast < 1.0:
        clean, _ = deg.set_contrast(clean, target_contrast=condition.contrast)
    noisy, expected, _ = deg.poisson_at_dose(clean, dose_e_per_A2=condition.dose,
                                             pixel_size_angstrom=pixel, rng=rng)
    truth = column_pixels(structure.positions_angstrom[structure.visible], scan,
                          probe=ProbeParameters())
    inside = ((truth >= -0.5).all(axis=1) & (truth[:, 0] <= shape[1] - 0.5)
              & (truth[:, 1] <= shape[0] - 0.5))
    return BenchmarkImage(f"{name}:{condition.name}:seed{seed}", noisy.astype(np.float32),
                          truth[inside], pixel, raw=expected.astype(np.float32),
                          metadata={"material": name, "condition": condition.name})


@dataclass(frozen=True)
class VerdictCheck:
    """One model's verdict on one validation image, against its actual score."""

    image_id: str
    model: str
    group: str
    close_enough: bool
    verdict: str
    recall: float
    precision: float
    rms_angstrom: float

    @property
    def works(self) -> bool:
        """The model meets the benchmark's criteria on this image."""
        c = DEFAULT_CRITERIA
        return (self.recall >= c.recall_min and self.precision >= c.precision_min
                and (math.isnan(self.rms_angstrom) or self.rms_angstrom <= c.rms_max_angstrom))


def check_verdicts(images: Iterable[BenchmarkImage], models: Sequence[str],
                   cutoffs: Sequence[Cutoff]) -> list[VerdictCheck]:
    """Assess each image as ``stembench assess`` does and score every model on it.

    Parameters
    ----------
    images : iterable of BenchmarkImage
        Labelled images (positions in pixels, x = column, y = row).
    models : sequence of str
        Model specs (registry name, file or ``module:function``).
    cutoffs : sequence of Cutoff
        The cutoffs the verdicts are made from.
    """
    from stembench.client.assess.assessment import assess_image
    from stembench.client.assess.nearest import LatticeSignature
    from stembench.client.assess.recommend import choose_group, recommend, vouch
    from stembench.endpoints.models.registry import load_model
    from stembench.errors import StembenchError
    from stembench.scoring import score_image

    loaded = {name: load_model(name) for name in models}
    checks = []
    for image in images:
        try:
            assessment = assess_image(image.image, pixel_size_angstrom=image.pixel_size,
                                      name=image.image_id)
        except StembenchError:
            continue  # assess refuses the image: no verdict to check
        group, matches = choose_group(LatticeSignature.of(assessment.lattice, image.pixel_size),
                                      cutoffs)
        verdicts = vouch(recommend(assessment.estimates, cutoffs, group=group), matches[0])
        for verdict in verdicts:
            if verdict.model not in loaded:
                continue
            found = loaded[verdict.model].locate(image.image, image.pixel_size)
            score = score_image(found, image.coords, pixel_size=image.pixel_size,
                                image_shape=image.shape, image_id=image.image_id)
            checks.append(VerdictCheck(image.image_id, verdict.model, group,
                                       matches[0].close_enough, verdict.verdict, score.recall,
                                       score.precision, score.rms_angstrom))
    return checks


def wrong_recommendation_rate(checks: Sequence[VerdictCheck]) -> tuple[int, int, float]:
    """``(recommended, wrong, wrong / recommended)`` (NaN rate when none was recommended)."""
    recommended = [c for c in checks if c.verdict == "recommended"]
    wrong = sum(not c.works for c in recommended)
    return len(recommended), wrong, wrong / len(recommended) if recommended else math.nan
