"""Which benchmark group is nearest to an image, and is it near enough to vouch for a model?

A model's cutoffs were measured on a group's images. They say something about another image
only when that image looks like the group's: a lattice of the same kind, columns about as far
apart (in angstrom), and columns of about the same relative brightness (a lattice with one
column type is a different task from one with a bright and a faint type). Each is compared
on the lattice found by :func:`stembench.imaging.lattice.find_lattice`, for the image
and for the clean reference image of the group's material:

* **kind**: ``square``, ``hexagonal`` or ``oblique``; a different kind is not near;
* **spacing**: ``|ln(spacing / group spacing)|`` against ``ln(1 + SPACING_TOLERANCE)``;
* **weakest column**: the faintest visible column's height relative to the brightest,
  its difference to the group's against :data:`HEIGHT_TOLERANCE`.

The *distance* is the largest of the two normalised differences (2 for a different kind); a
group is *close enough* at a distance of at most 1. Groups whose material stembench cannot
render (an experimental group, a report from another generator) have no reference and are
listed as not comparable.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from stembench.imaging.lattice import Lattice2D

__all__ = [
    "HEIGHT_TOLERANCE",
    "SPACING_TOLERANCE",
    "GroupMatch",
    "LatticeSignature",
    "group_signature",
    "match_groups",
]

#: Relative difference of column spacing still close enough.
SPACING_TOLERANCE = 0.25
#: Difference of the weakest visible column's relative height still close enough.
HEIGHT_TOLERANCE = 0.3
_KIND_MISMATCH = 2.0


@dataclass(frozen=True)
class LatticeSignature:
    """What decides whether two images pose the same column-finding task.

    Attributes
    ----------
    kind : str
        Lattice kind.
    spacing_angstrom : float
        Median nearest-neighbour distance of the visible columns, A.
    columns_per_cell : int
        Visible columns per unit cell.
    weakest_height : float
        Height of the faintest visible column relative to the brightest (1 for one type).
    """

    kind: str
    spacing_angstrom: float
    columns_per_cell: int
    weakest_height: float

    @classmethod
    def of(cls, lattice: Lattice2D, pixel_size_angstrom: float) -> LatticeSignature:
        """The signature of a lattice found in an image of the given pixel size (A/px)."""
        heights = lattice.column_heights
        return cls(lattice.kind, float(lattice.spacing_px * pixel_size_angstrom),
                   len(lattice.columns_frac), float(heights.min()) if len(heights) else 1.0)


@dataclass(frozen=True)
class GroupMatch:
    """How near an image is to one benchmark group.

    Attributes
    ----------
    group : str
        Data group.
    reference : LatticeSignature or None
        The group's signature; ``None`` when not comparable.
    spacing_ratio : float
        Image spacing over the group's (NaN when not comparable).
    height_difference : float
        Image weakest-column height less the group's.
    distance : float
        See the module docstring (inf when not comparable).
    close_enough : bool
        ``distance <= 1``.
    summary : str
        One line saying which and how near.
    """

    group: str
    reference: LatticeSignature | None
    spacing_ratio: float
    height_difference: float
    distance: float
    close_enough: bool
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (inf and NaN become None)."""
        data = asdict(self)
        for key in ("spacing_ratio", "height_difference", "distance"):
            data[key] = data[key] if math.isfinite(data[key]) else None
        return data


@lru_cache(maxsize=16)
def group_signature(group: str) -> LatticeSignature | None:
    """Signature of a group's clean reference image, or ``None`` for a group stembench cannot
    render (its material is not one of the simulated benchmark materials)."""
    from stembench.dataset_publish.simulate.series import MATERIALS, reference_image
    from stembench.imaging.lattice import find_lattice

    material = next((m for m, spec in MATERIALS.items() if spec.group == group), None)
    if material is None:
        return None
    image = reference_image(material)
    return LatticeSignature.of(find_lattice(image.image.astype(float), name=group),
                               image.pixel_size)


def _match(signature: LatticeSignature, group: str) -> GroupMatch:
    reference = group_signature(group)
    if reference is None:
        return GroupMatch(group, None, math.nan, math.nan, math.inf, False,
                          f"{group}: not comparable (no reference lattice for this group)")
    ratio = signature.spacing_angstrom / reference.spacing_angstrom
    height = signature.weakest_height - reference.weakest_height
    parts = [abs(math.log(ratio)) / math.log(1.0 + SPACING_TOLERANCE),
             abs(height) / HEIGHT_TOLERANCE]
    if signature.kind != reference.kind:
        parts.append(_KIND_MISMATCH)
    distance = max(parts)
    close = distance <= 1.0
    summary = (f"{group}: distance {distance:.2f} ({'close enough' if close else 'too far'}): "
               f"{reference.kind} lattice vs {signature.kind}, column spacing "
               f"{reference.spacing_angstrom:.2f} A vs {signature.spacing_angstrom:.2f} A "
               f"(x{ratio:.2f}), weakest column {reference.weakest_height:.2f} vs "
               f"{signature.weakest_height:.2f} of the brightest")
    return GroupMatch(group, reference, ratio, height, distance, close, summary)


def match_groups(signature: LatticeSignature, groups: list[str]) -> list[GroupMatch]:
    """Every group's match to the image, nearest first."""
    return sorted((_match(signature, g) for g in sorted(set(groups))),
                  key=lambda m: (m.distance, m.group))
