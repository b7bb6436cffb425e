"""The simulated part of the benchmark dataset: quality series of both materials plus the
generality set.

:func:`iter_dataset` renders every image of a preset;
:func:`stembench.dataset_publish.build.build_dataset` writes them (with any experimental
images) through :class:`stembench.dataset_publish.storage.stembench_layout.DatasetWriter`.
Presets:

* ``"mini"``: 128x128 images, 3 steps per axis (first, middle, last of the standard values),
  2 seeds, 6 generality images; builds in seconds (tests, CI smoke run).
* ``"standard"``: 256x256 images, 10 steps per axis, 3 seeds, every generality structure.

The abTEM backend renders the two materials' series (perfect crystals); the generality
structures are not periodic and are always rendered by the fast backend (their ``backend``
metadata says so).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stembench._moved import moved_names
from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.simulate import degradations as deg
from stembench.dataset_publish.simulate.catalogue import build_structure, list_structures
from stembench.dataset_publish.simulate.fast_backend import FastHAADF, ImageFormation
from stembench.dataset_publish.simulate.probe import ProbeParameters, probe_fwhm_angstrom
from stembench.dataset_publish.simulate.scan import ScanParameters
from stembench.dataset_publish.simulate.series import (
    AXES,
    GENERATOR_VERSION,
    MATERIALS,
    PROBE_CURRENT_PA,
    image_metadata,
    material_series,
    render,
    seed_for,
)
from stembench.errors import InputError

__all__ = [
    "DATASET_NAME",
    "DATASET_VERSION",
    "GENERALITY_NAMES",
    "GENERATOR_VERSION",
    "PRESETS",
    "Preset",
    "generality_images",
    "image_count",
    "image_formation",
    "iter_dataset",
]

DATASET_NAME = "atom-locating-benchmark"
DATASET_VERSION = "3.0.0"
GENERALITY_DOSE_E_PER_A2 = 3000.0

#: Generality structures: every structure except the two benchmark materials.
GENERALITY_NAMES: tuple[str, ...] = tuple(n for n in list_structures() if n not in MATERIALS)


@dataclass(frozen=True)
class Preset:
    """Size of a build: image shape, steps kept per axis, seeds, generality images."""

    shape: tuple[int, int]
    step_indices: tuple[int, ...] | None  # indices into the standard steps; None = all
    seeds: int
    generality: int | None  # number of generality images; None = all


PRESETS: dict[str, Preset] = {
    "mini": Preset((128, 128), (0, 4, 9), 2, 6),
    "standard": Preset((256, 256), None, 3, None),
}


def generality_images(names: tuple[str, ...], *, backend: ImageFormation,
                      probe: ProbeParameters, shape: tuple[int, int],
                      seed: int = 0) -> Iterator[BenchmarkImage]:
    """Yield one noisy image per generality structure, 5-9 atoms per 100 px, dose 3000 e-/A^2.

    Parameters
    ----------
    names : tuple of str
        Generality structures (see :data:`GENERALITY_NAMES`), one image each.
    backend : ImageFormation
        The image-formation backend.
    probe : ProbeParameters
        The probe the images and labels are made at.
    shape : tuple of int
        Image shape ``(rows, columns)`` in pixels.
    seed : int, optional
        Base seed of the structures, scans and noise; default 0.
    """
    r0 = probe_fwhm_angstrom(probe)
    for index, name in enumerate(names):
        if name not in list_structures():
            raise InputError(f"unknown generality structure {name!r}; known: "
                             f"{list(GENERALITY_NAMES)}")
        spacing = build_structure(name, extent_angstrom=(40.0, 40.0), seed=0,
                                  probe=probe).column_spacing_angstrom
        pixel = spacing * (5.0 + index % 5) / 100.0
        structure_seed = seed_for("generality", name, seed)
        scan = ScanParameters(shape, pixel, rotation_deg=0.0, seed=structure_seed)
        rendered = render(name, backend, scan, structure_seed=structure_seed, probe=probe)
        rng = np.random.default_rng(structure_seed)
        noisy, expected, peak = deg.poisson_at_dose(
            rendered.raw, dose_e_per_A2=GENERALITY_DOSE_E_PER_A2, pixel_size_angstrom=pixel,
            rng=rng)
        meta = image_metadata(rendered, noisy, expected, resolution_angstrom=r0,
                              material=name, group="generality", series="generality", step=0,
                              seed=int(seed), backend=backend.name, axis_value=float("nan"),
                              dose_e_per_A2=GENERALITY_DOSE_E_PER_A2, peak_intensity_e=peak,
                              probe_current_pA=PROBE_CURRENT_PA)
        yield BenchmarkImage(image_id=f"generality:{name}:seed{seed}",
                             image=noisy.astype(np.float32), coords=rendered.coords,
                             pixel_size=pixel, raw=expected.astype(np.float32),
                             column_types=rendered.column_types,
                             faint_coords=rendered.faint_coords,
                             faint_types=rendered.faint_types, metadata=meta)


def image_formation(name: str, probe: ProbeParameters, cache_dir: Path) -> ImageFormation:
    """The image-formation backend ``name`` (``"fast"`` or ``"abtem"``) at ``probe``.

    Parameters
    ----------
    name : str
        ``"fast"`` (:class:`FastHAADF`) or ``"abtem"`` (:class:`AbtemHAADF`, 4 frozen phonons).
    probe : ProbeParameters
        The probe.
    cache_dir : pathlib.Path
        Cache of abTEM's simulated periods (unused by ``"fast"``).
    """
    if name == "fast":
        return FastHAADF(probe)
    if name == "abtem":
        from stembench.dataset_publish.simulate.abtem_backend import AbtemHAADF

        return AbtemHAADF(probe, cache_dir=cache_dir, frozen_phonons=4)
    raise InputError(f"unknown backend {name!r}; expected 'fast' or 'abtem'")


def image_count(preset: Preset, seeds: int) -> int:
    """How many images :func:`iter_dataset` yields for ``preset`` and ``seeds``."""
    steps = len(preset.step_indices) if preset.step_indices is not None else 10
    n_gen = len(GENERALITY_NAMES) if preset.generality is None else preset.generality
    return len(MATERIALS) * len(AXES) * (steps + 1) * seeds + n_gen


def iter_dataset(*, preset: Preset, backend: ImageFormation, probe: ProbeParameters,
                 seeds: int) -> Iterator[BenchmarkImage]:
    """Yield every image of a build: both materials' series, then the generality set.

    Parameters
    ----------
    preset : Preset
        Size of the build (image shape, steps kept, generality images).
    backend : ImageFormation
        The image-formation backend.
    probe : ProbeParameters
        The probe the images and labels are made at.
    seeds : int
        Images per series step (seeds ``0 .. seeds - 1``).
    """
    for material, spec in MATERIALS.items():
        for axis in AXES:
            values = spec.steps[axis]
            if preset.step_indices is not None:
                values = tuple(values[i] for i in preset.step_indices)
            yield from material_series(material, axis, steps=values, seeds=range(seeds),
                                       backend=backend, probe=probe, shape=preset.shape)
    names = GENERALITY_NAMES if preset.generality is None else GENERALITY_NAMES[
        :: max(len(GENERALITY_NAMES) // preset.generality, 1)][: preset.generality]
    fast = backend if backend.name == "fast" else FastHAADF(probe)
    yield from generality_images(names, backend=fast, probe=probe, shape=preset.shape)


__getattr__ = moved_names(__name__, {"build_dataset": "stembench.dataset_publish.build"})
