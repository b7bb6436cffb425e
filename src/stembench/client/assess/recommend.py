"""Compare an image's estimated quality with each model's cutoffs and recommend models.

On each axis a model has a limit: its cutoff (``"crossed"``), the worse end of the tested
range (``"not reached"``: reliable at least that far; beyond it nothing is known), or the
clean end (``"fails from start"``). The *margin* is how far the image is from the limit toward
the clean side, in the axis' units (positive = inside). A margin within one estimated
uncertainty of zero is ``"borderline"``. A model is ``"recommended"`` when every assessed
axis is inside, ``"borderline"`` when none is outside but some are borderline or beyond the
tested range, and ``"not recommended"`` otherwise. Cutoffs vouch for a model only on images
near their group (:mod:`stembench.client.assess.nearest`): when the nearest group is not close
enough, :func:`vouch` turns "recommended" and "borderline" into :data:`NO_CLOSE_GROUP`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from stembench.client.analysis.axes import AXES
from stembench.client.analysis.cutoffs import Cutoff
from stembench.client.assess.nearest import GroupMatch, LatticeSignature, match_groups
from stembench.errors import InputError
from stembench.imaging.estimate import Estimate

__all__ = [
    "BUILTIN_CUTOFFS_PATH",
    "NO_CLOSE_GROUP",
    "AxisVerdict",
    "ModelVerdict",
    "choose_group",
    "load_cutoffs",
    "recommend",
    "vouch",
]

BUILTIN_CUTOFFS_PATH = Path(__file__).parent / "data" / "builtin_cutoffs.json"
#: Verdict when no benchmark group is close enough to the image to vouch for a model.
NO_CLOSE_GROUP = "no close group"


@dataclass(frozen=True)
class AxisVerdict:
    """Where the image sits against one model's limit on one axis.

    Attributes
    ----------
    axis : str
        Series name of the axis.
    estimate, uncertainty : float
        The image's estimate and its one-sigma uncertainty, axis units.
    limit : float
        The model's limit, axis units.
    limit_kind : str
        ``"cutoff"``, ``"tested range"`` (never failed up to here) or ``"fails from start"``.
    margin : float
        Distance from the limit toward the clean side, axis units (negative = outside).
    margin_fraction : float
        ``margin`` divided by ``|limit|``.
    status : str
        ``"inside"``, ``"borderline"``, ``"beyond tested range"`` or ``"outside"``.
    """

    axis: str
    estimate: float
    uncertainty: float
    limit: float
    limit_kind: str
    margin: float
    margin_fraction: float
    status: str


@dataclass(frozen=True)
class ModelVerdict:
    """One model's recommendation for the image."""

    model: str
    group: str
    verdict: str
    axes: tuple[AxisVerdict, ...]

    @property
    def failing_axes(self) -> tuple[str, ...]:
        """Axes on which the image is outside the model's limit."""
        return tuple(a.axis for a in self.axes if a.status == "outside")

    @property
    def worst_margin_fraction(self) -> float:
        """Smallest margin fraction over the axes (how close the image is to failing)."""
        values = [a.margin_fraction for a in self.axes if math.isfinite(a.margin_fraction)]
        return min(values) if values else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        data = asdict(self)
        data["failing_axes"] = list(self.failing_axes)
        data["axes"] = [asdict(a) for a in self.axes]
        return data


def cutoffs_dataset_version(data: Mapping[str, Any]) -> str | None:
    """The dataset version a report (``provenance``) or a cutoffs file (``dataset_version``)
    was computed on; ``None`` when it does not say."""
    provenance = data.get("provenance")
    version = (provenance.get("dataset_version") if isinstance(provenance, Mapping)
               else data.get("dataset_version"))
    return str(version) if version is not None else None


def load_cutoffs(path: str | Path | None = None) -> list[Cutoff]:
    """Cutoffs from a report JSON, a cutoffs file, or (``None``) the built-in models' file.

    The cutoffs must be of this stembench's dataset version: a cutoff measured on another
    version's series (other labels, other axes) would place the image against limits the
    benchmark no longer has, so such a file is refused, as is one that does not say.

    Raises
    ------
    InputError
        If the file is missing, holds no cutoffs, or is of another dataset version.
    """
    source = BUILTIN_CUTOFFS_PATH if path is None else Path(path)
    if not source.is_file():
        raise InputError(f"{source}: no such results file")
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: not JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cutoffs"), list):
        raise InputError(f"{source}: expected a report or cutoffs JSON with a 'cutoffs' list")
    try:
        cutoffs = [Cutoff.from_dict(item) for item in data["cutoffs"]]
    except TypeError as exc:
        raise InputError(f"{source}: malformed cutoff entry ({exc})") from exc
    if not cutoffs:
        raise InputError(f"{source}: the file holds no cutoffs")
    from stembench.dataset_publish.simulate.build import DATASET_VERSION

    version = cutoffs_dataset_version(data)
    if version != DATASET_VERSION:
        found = f"dataset {version}" if version else "a dataset version it does not name"
        raise InputError(
            f"{source}: cutoffs of {found}, but this stembench's benchmark is dataset "
            f"{DATASET_VERSION}; its limits may differ (labels and axes change with the "
            "version): use the report of a `stembench run` of this version"
            + (" (the built-in file is regenerated by `python bench/make_builtin_cutoffs.py "
               "--report REPORT.json`)" if path is None else ""))
    return cutoffs


def choose_group(signature: LatticeSignature, cutoffs: Sequence[Cutoff], *,
                 group: str | None = None) -> tuple[str, list[GroupMatch]]:
    """The data group whose cutoffs apply, and how near every group is.

    ``group`` if given, else the nearest group (:mod:`stembench.client.assess.nearest`),
    whether or not it is close enough: :func:`vouch` then says so in the verdicts.

    Parameters
    ----------
    signature : LatticeSignature
        The image's lattice signature (kind, spacing, column types).
    cutoffs : sequence of Cutoff
        The cutoffs, naming the groups available.
    group : str, optional
        The group to use; default the nearest one.

    Raises
    ------
    InputError
        If ``group`` is not in the cutoffs.
    """
    groups = sorted({c.group for c in cutoffs})
    if group is not None and group not in groups:
        raise InputError(f"group {group!r} has no cutoffs; available: {groups}")
    matches = match_groups(signature, groups)
    return (group if group is not None else matches[0].group), matches


def vouch(verdicts: Sequence[ModelVerdict], match: GroupMatch) -> list[ModelVerdict]:
    """Verdicts as they stand when ``match`` is close enough; otherwise every
    ``"recommended"`` or ``"borderline"`` becomes :data:`NO_CLOSE_GROUP` (a model outside its
    cutoffs stays ``"not recommended"``)."""
    if match.close_enough:
        return list(verdicts)
    return [v if v.verdict == "not recommended" else replace(v, verdict=NO_CLOSE_GROUP)
            for v in verdicts]


def _axis_verdict(cutoff: Cutoff, estimate: Estimate) -> AxisVerdict:
    axis = AXES[cutoff.axis]
    if cutoff.status == "crossed" and cutoff.value is not None:
        limit, kind = float(cutoff.value), "cutoff"
    elif cutoff.status == "fails from start":
        limit, kind = float(cutoff.tested_range[0]), "fails from start"
    else:
        limit, kind = float(cutoff.tested_range[1]), "tested range"
    margin = limit - estimate.value if axis.larger_is_worse else estimate.value - limit
    fraction = margin / abs(limit) if limit != 0 else math.nan
    if kind == "fails from start":
        status = "outside"
    elif abs(margin) <= estimate.uncertainty:
        status = "borderline"
    elif margin > 0:
        status = "inside"
    else:
        status = "beyond tested range" if kind == "tested range" else "outside"
    return AxisVerdict(cutoff.axis, estimate.value, estimate.uncertainty, limit, kind,
                       float(margin), float(fraction), status)


def recommend(estimates: Mapping[str, Estimate], cutoffs: Sequence[Cutoff], *, group: str,
              method: str = "pchip") -> list[ModelVerdict]:
    """Verdict of every model with cutoffs in ``group``, best first.

    Parameters
    ----------
    estimates : mapping of str to Estimate
        The image's estimates keyed by axis series name; non-finite ones are skipped.
    cutoffs : sequence of Cutoff
        Cutoffs of any number of models and groups.
    group : str
        The data group to compare with.
    method : str
        Cutoff method (``"pchip"``, ``"sigmoid"`` or ``"linear"``; falls back to any).

    Returns
    -------
    list of ModelVerdict
        Recommended first, then borderline, then not recommended; within each, larger
        worst margin fraction first.
    """
    in_group = [c for c in cutoffs if c.group == group]
    if not in_group:
        raise InputError(f"no cutoffs for group {group!r}")
    order = {"recommended": 0, "borderline": 1, "not recommended": 2}
    verdicts = []
    for model in sorted({c.model for c in in_group}):
        mine = [c for c in in_group if c.model == model]
        by_axis: dict[str, Cutoff] = {}
        for cutoff in mine:
            if cutoff.method == method or cutoff.axis not in by_axis:
                by_axis[cutoff.axis] = cutoff
        axes = tuple(_axis_verdict(by_axis[name], estimates[name]) for name in AXES
                     if name in by_axis and name in estimates
                     and math.isfinite(estimates[name].value))
        statuses = {a.status for a in axes}
        verdict = ("not recommended" if "outside" in statuses else
                   "borderline" if statuses & {"borderline", "beyond tested range"} else
                   "recommended")
        verdicts.append(ModelVerdict(model, group, verdict, axes))
    return sorted(verdicts, key=lambda v: (order[v.verdict], -_finite(v.worst_margin_fraction)))


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf
