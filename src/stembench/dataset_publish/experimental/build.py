"""Experimental groups: a folder of labelled real images turned into quality series.

``stembench dataset build --experimental DIR`` reads every image in ``DIR`` (a microscope file
or TIFF, see
:mod:`stembench.dataset_publish.experimental.microscope`) that has a label CSV beside it
(``<stem>.csv`` or ``<stem>_labels.csv``, as ``stembench label`` writes and a person
corrects; see
:func:`stembench.dataset_publish.experimental.importer.read_positions_csv`), and an optional
``<stem>.json`` with any of:

``pixel_size_angstrom``
    overrides the file's calibration (required when it has none);
``material``, ``group``
    default ``"unknown"`` and the material; the group name always ends in
    ``"-experimental"`` (:data:`stembench.datamodel.EXPERIMENTAL_SUFFIX`), which
    gives it its own section in the report;
``signal``, ``frame``
    which signal / frame of a multi-signal file or stack;
``resolution_pm``
    the image's effective resolution; default: estimated from the image by the assessment's
    lattice fit (:func:`stembench.imaging.quality.raw_estimates`);
``dose_e_per_A2``, ``counts_per_unit``
    the dose and electrons per image unit; without a dose there is no dose series.

Each image becomes a group with the series of
:func:`stembench.dataset_publish.experimental.derived_series.experimental_series`
(binning, blur, background, dose thinning), its labels carried exactly (binning maps them;
the others leave them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stembench.datamodel import EXPERIMENTAL_SUFFIX, BenchmarkImage
from stembench.errors import InputError, StembenchError

__all__ = ["EXPERIMENTAL_STEPS", "ExperimentalSource", "experimental_images",
           "read_experimental_folder"]

#: Steps per axis and preset: binning factors, resolution as multiples of the source's,
#: contrasts (those below the source's), and dose as fractions of the source's.
EXPERIMENTAL_STEPS: dict[str, dict[str, tuple[float, ...]]] = {
    "mini": {"pixel_size": (2.0,), "resolution": (1.5, 2.5), "contrast": (0.3, 0.05),
             "dose": (0.3, 0.05)},
    "standard": {"pixel_size": (2.0, 3.0, 4.0, 5.0), "resolution": (1.25, 1.5, 2.0, 2.5, 3.0),
                 "contrast": (0.5, 0.2, 0.1, 0.05, 0.02, 0.01),
                 "dose": (0.5, 0.2, 0.1, 0.05, 0.02, 0.01)},
}
_KEYS = {"pixel_size_angstrom", "material", "group", "signal", "frame", "resolution_pm",
         "dose_e_per_A2", "counts_per_unit"}


@dataclass(frozen=True)
class ExperimentalSource:
    """One labelled real image and what is known of its conditions."""

    image: BenchmarkImage
    resolution_pm: float
    dose: float  # e-/A^2, NaN when unknown
    counts_per_unit: float
    notes: tuple[str, ...]


def _options(path: Path) -> dict[str, Any]:
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{sidecar}: not JSON ({exc})") from exc
    unknown = sorted(set(data) - _KEYS) if isinstance(data, dict) else ["<not an object>"]
    if unknown:
        raise InputError(f"{sidecar}: unknown key(s) {unknown}; expected some of "
                         f"{sorted(_KEYS)}")
    return dict(data)


def _labels(path: Path) -> Path | None:
    for candidate in (path.with_suffix(".csv"), path.with_name(f"{path.stem}_labels.csv")):
        if candidate.is_file():
            return candidate
    return None


def _estimated_resolution_pm(image: BenchmarkImage) -> float:
    from stembench.imaging.quality import raw_estimates

    try:
        _, values, _ = raw_estimates(image.image.astype(float),
                                     pixel_size_angstrom=image.pixel_size, name=image.image_id)
    except StembenchError:
        return math.nan
    return float(values["resolution"])


def read_experimental_folder(folder: str | Path) -> list[ExperimentalSource]:
    """Every labelled image of ``folder`` (see the module docstring), sorted by name.

    Raises
    ------
    InputError
        If the folder is missing or holds no labelled image, an image's sidecar JSON is bad,
        or an image or its labels cannot be read.
    """
    from stembench.dataset_publish.experimental.importer import import_labelled_image
    from stembench.dataset_publish.experimental.microscope import MICROSCOPE_READERS

    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder of experimental images")
    sources = []
    for path in sorted(p for p in root.iterdir() if p.suffix.lower() in MICROSCOPE_READERS):
        labels = _labels(path)
        if labels is None:
            continue
        opts = _options(path)
        material = str(opts.get("material", "unknown"))
        group = str(opts.get("group", material))
        group = group if group.endswith(EXPERIMENTAL_SUFFIX) else f"{group}{EXPERIMENTAL_SUFFIX}"
        image = import_labelled_image(
            path, labels, pixel_size=opts.get("pixel_size_angstrom"), signal=opts.get("signal"),
            frame=opts.get("frame"), image_id=path.stem, material=material,
            group=group)
        notes = []
        resolution = float(opts.get("resolution_pm", math.nan))
        if not resolution > 0:
            resolution = _estimated_resolution_pm(image)
            notes.append(f"resolution {resolution:.0f} pm estimated from the image"
                         if resolution > 0 else "no resolution series: resolution unknown")
        dose = float(opts.get("dose_e_per_A2", math.nan))
        if not dose > 0:
            notes.append(f"no dose series: give dose_e_per_A2 in {path.stem}.json")
        sources.append(ExperimentalSource(image, resolution, dose,
                                          float(opts.get("counts_per_unit", 1.0)), tuple(notes)))
    if not sources:
        raise InputError(f"{root}: no labelled image (an image file with <stem>.csv or "
                         "<stem>_labels.csv beside it)")
    return sources


def experimental_images(sources: list[ExperimentalSource], *, preset: str, seeds: int
                        ) -> Iterator[BenchmarkImage]:
    """Every image of every source's series (steps of :data:`EXPERIMENTAL_STEPS`).

    Parameters
    ----------
    sources : list of ExperimentalSource
        The real images (each with its labels in pixels and its pixel size in angstrom per
        pixel).
    preset : str
        ``"mini"`` or ``"standard"``: which steps of :data:`EXPERIMENTAL_STEPS`.
    seeds : int
        Images per series step (seeds ``0 .. seeds - 1``).
    """
    from stembench.dataset_publish.experimental.derived_series import (
        EXPERIMENTAL_AXES,
        experimental_series,
    )
    from stembench.dataset_publish.simulate.degradations import contrast

    steps = EXPERIMENTAL_STEPS[preset]
    for source in sources:
        group = str(source.image.metadata["group"])
        for axis in EXPERIMENTAL_AXES:
            values = steps[axis]
            if axis == "resolution":
                if not source.resolution_pm > 0:
                    continue
                values = tuple(round(v * source.resolution_pm, 1) for v in values)
            if axis == "dose":
                if not source.dose > 0:
                    continue
                values = tuple(v * source.dose for v in values)
            if axis == "contrast":  # background only lowers the contrast
                values = tuple(v for v in values if v < contrast(source.image.image))
            if not values:
                continue
            yield from experimental_series(
                source.image, axis, steps=values, seeds=range(seeds) if axis == "dose" else (0,),
                resolution_angstrom=source.resolution_pm / 100.0,
                dose_e_per_A2=source.dose, counts_per_unit=source.counts_per_unit,
                group=group)
