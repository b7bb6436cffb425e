"""Quality series of simulated images: a clean reference and degraded steps, several seeds.

For each material and quality axis the series holds step 0 (the clean reference) and one
step per axis value; every step is realised for each seed. A seed fixes the lattice offset
(the same field for every step and axis), the scan distortion and the noise. Labels come from
construction: the visible columns at the centroid of their own image on the distorted scan,
and the faint ones apart (:mod:`stembench.dataset_publish.simulate.visibility`; visibility
is judged once, at the probe, so it does not change along a series). The stored
``raw`` is the noise-free image with every deterministic degradation applied (blur, contrast
offset, scan distortion), so ``psnr_db(imgs, raw)`` measures the noise alone (inf without).

Axis values (step >= 1) are in the units of the axis: ``pixel_size`` in atoms per 100 px,
``resolution`` in pm, ``contrast`` as (max - min)/max, ``noise`` as dose in e-/A^2 (its
``axis_value`` is the measured PSNR in dB), ``flyback`` in px, ``drift`` in px per line.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.simulate import degradations as deg
from stembench.dataset_publish.simulate.catalogue import build_structure, list_structures
from stembench.dataset_publish.simulate.columns import ColumnStructure
from stembench.dataset_publish.simulate.fast_backend import FastHAADF, ImageFormation
from stembench.dataset_publish.simulate.probe import ProbeParameters, probe_fwhm_angstrom
from stembench.dataset_publish.simulate.scan import ScanParameters, beam_positions
from stembench.dataset_publish.simulate.visibility import column_pixels
from stembench.errors import InputError

__all__ = [
    "AXES",
    "GENERATOR_VERSION",
    "MATERIALS",
    "PROBE_CURRENT_PA",
    "MaterialSeries",
    "RenderedImage",
    "image_metadata",
    "material_series",
    "reference_image",
    "render",
    "seed_for",
]

GENERATOR_VERSION = "3.0.0"
PROBE_CURRENT_PA = 18.9
AXES = ("pixel_size", "resolution", "contrast", "noise", "flyback", "drift")


@dataclass(frozen=True)
class MaterialSeries:
    """What a material's series look like: the reference and the axis values per step."""

    material: str
    group: str
    reference_pixel_size_angstrom: float
    steps: dict[str, tuple[float, ...]]


def _standard_steps(atoms_per_100px: tuple[float, float]) -> dict[str, tuple[float, ...]]:
    values = {
        "pixel_size": np.linspace(*atoms_per_100px, 10).round(2),
        "resolution": np.linspace(95.0, 320.0, 10).round(1),
        "contrast": np.geomspace(1.0, 0.003, 10).round(4),
        "noise": np.geomspace(6.0, 12000.0, 10).round(0),
        "flyback": np.linspace(0.45, 4.5, 10).round(2),
        "drift": np.linspace(0.035, 0.35, 10).round(3),
    }
    return {axis: tuple(float(v) for v in steps) for axis, steps in values.items()}


#: The benchmark's two materials, with reference pixel sizes near the published experiments.
MATERIALS: dict[str, MaterialSeries] = {
    "SrTiO3[100]": MaterialSeries("SrTiO3[100]", "SrTiO3-simulated", 0.12,
                                  _standard_steps((2.0, 18.0))),
    "WS2": MaterialSeries("WS2", "WS2-simulated", 0.16, _standard_steps((4.0, 22.0))),
}


def seed_for(*parts: object) -> int:
    """A stable 32-bit seed from any printable parts (CRC-32 of their joined text)."""
    return zlib.crc32("/".join(str(p) for p in parts).encode())


@dataclass(frozen=True)
class RenderedImage:
    """A noise-free image of a structure on a scan, with its labels from construction."""

    raw: NDArray[np.float64]  # peak-normalised intensity
    coords: NDArray[np.float64]  # (N, 2) x, y pixels of the visible columns in the image
    column_types: tuple[str, ...]
    column_elements: tuple[str, ...]
    structure: ColumnStructure
    scan: ScanParameters
    faint_coords: NDArray[np.float64]  # (M, 2) x, y pixels of the faint columns in the image
    faint_types: tuple[str, ...]


def render(structure_name: str, backend: ImageFormation, scan: ScanParameters, *,
           structure_seed: int, exponent: float = 1.7, margin_angstrom: float = 5.0,
           probe: ProbeParameters | None = None) -> RenderedImage:
    """Render ``structure_name`` on ``scan`` and label its visible and its faint columns.

    The structure is built to cover every beam position plus ``margin_angstrom``; the scan's
    ``origin_angstrom`` is shifted so that the field sits inside it. Which columns are
    visible, and where each is labelled, is decided at ``probe`` (default
    :class:`ProbeParameters`), see :mod:`stembench.dataset_publish.simulate.visibility`.

    Parameters
    ----------
    structure_name : str
        A structure of the catalogue
        (:func:`~stembench.dataset_publish.simulate.catalogue.list_structures`).
    backend : ImageFormation
        The image-formation backend.
    scan : ScanParameters
        The scan (shape, pixel size in angstrom per pixel, distortions).
    structure_seed : int
        Seed of the structure (defects, disorder).
    exponent : float, optional
        HAADF Z exponent of the column weights; default 1.7.
    margin_angstrom : float, optional
        Margin of structure around the scanned field, angstrom; default 5.
    probe : ProbeParameters, optional
        The probe the labels are decided at; default :class:`ProbeParameters`.
    """
    x, y = beam_positions(scan)
    shift = margin_angstrom - np.array([x.min(), y.min()])
    origin = (scan.origin_angstrom[0] + shift[0], scan.origin_angstrom[1] + shift[1])
    placed = ScanParameters(scan.shape, scan.pixel_size_angstrom, origin, scan.rotation_deg,
                            scan.drift_px_per_line, scan.flyback_px, scan.seed)
    x, y = x + shift[0], y + shift[1]
    extent = (float(x.max() + margin_angstrom), float(y.max() + margin_angstrom))
    structure = build_structure(structure_name, extent_angstrom=extent, exponent=exponent,
                                seed=structure_seed, probe=probe)
    raw = backend.intensity(structure, x, y)
    raw = raw / raw.max()
    pixels = column_pixels(structure.positions_angstrom, placed,
                           probe=probe or ProbeParameters())
    rows, cols = scan.shape
    inside = (np.isfinite(pixels).all(axis=1) & (pixels[:, 0] >= -0.5)
              & (pixels[:, 0] <= cols - 0.5) & (pixels[:, 1] >= -0.5)
              & (pixels[:, 1] <= rows - 0.5))
    keep = np.flatnonzero(inside & structure.visible)
    faint = np.flatnonzero(inside & ~structure.visible)
    return RenderedImage(raw, pixels[keep], tuple(structure.column_types[k] for k in keep),
                         tuple(structure.elements[k] for k in keep), structure, placed,
                         pixels[faint], tuple(structure.column_types[k] for k in faint))


_CLEAN: OrderedDict[tuple[str, int, ScanParameters, int, ProbeParameters], tuple[ImageFormation,
                                                                RenderedImage]] = OrderedDict()


def _clean_render(material: str, backend: ImageFormation, scan: ScanParameters, *,
                  structure_seed: int, probe: ProbeParameters) -> RenderedImage:
    """:func:`render`, remembering the last 8 results: every axis shares the clean reference.

    The cache holds the backend itself, so its ``id`` cannot be reused while cached.
    """
    key = (material, id(backend), scan, structure_seed, probe)
    if key not in _CLEAN:
        _CLEAN[key] = (backend, render(material, backend, scan, structure_seed=structure_seed,
                                       probe=probe))
        while len(_CLEAN) > 8:
            _CLEAN.popitem(last=False)
    return _CLEAN[key][1]


def image_metadata(rendered: RenderedImage, image: NDArray[np.float64], raw: NDArray[np.float64],
                   *, resolution_angstrom: float, **fields: Any) -> dict[str, Any]:
    """Metadata of one simulated image; image properties are computed from the arrays.

    Parameters
    ----------
    rendered : RenderedImage
        The rendered image (structure and scan).
    image : numpy.ndarray
        The degraded image.
    raw : numpy.ndarray
        The noise-free image.
    resolution_angstrom : float
        The image's resolution (FWHM), angstrom.
    **fields
        Further metadata fields (material, series, step, seed, ...), added as given.
    """
    pixel = rendered.scan.pixel_size_angstrom
    meta: dict[str, Any] = {
        "type": "simulated",
        "space_group": rendered.structure.space_group,
        "probe_current_pA": float("nan"),
        "peak_intensity_e": float("nan"),
        "contrast": deg.contrast(image),
        "pixel_size_pm": pixel * 100.0,
        "atoms_per_100px": pixel / rendered.structure.column_spacing_angstrom * 100.0,
        "resolution_pm": resolution_angstrom * 100.0,
        "dose_e_per_A2": float("nan"),
        "psnr_db": deg.psnr_db(image, raw),
        "drift": rendered.scan.drift_px_per_line,
        "flyback": rendered.scan.flyback_px,
        "pixel_size_angstrom": pixel,
        "source": rendered.structure.name,
        "generator_version": GENERATOR_VERSION,
        "column_elements": rendered.column_elements,
    }
    meta.update(fields)
    return meta


def _degrade(rendered: RenderedImage, axis: str, value: float, r0: float,
             rng: np.random.Generator) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                dict[str, Any]]:
    raw = rendered.raw
    pixel = rendered.scan.pixel_size_angstrom
    extra: dict[str, Any] = {"resolution_angstrom": r0}
    if axis == "resolution" and value > 0:
        raw, _ = deg.blur_to_resolution(raw, pixel_size_angstrom=pixel, probe_fwhm_angstrom=r0,
                                        resolution_angstrom=value / 100.0)
        extra["resolution_angstrom"] = value / 100.0
    if axis == "contrast" and value > 0:
        raw, _ = deg.set_contrast(raw, target_contrast=value)
    if axis == "noise" and value > 0:
        noisy, expected, peak = deg.poisson_at_dose(raw, dose_e_per_A2=value,
                                                    pixel_size_angstrom=pixel, rng=rng)
        extra.update(dose_e_per_A2=float(value), peak_intensity_e=peak,
                     probe_current_pA=PROBE_CURRENT_PA)
        return noisy, expected, extra
    return raw, raw, extra


def _axis_value(axis: str, meta: dict[str, Any]) -> float:
    key = {"pixel_size": "atoms_per_100px", "resolution": "resolution_pm",
           "contrast": "contrast", "noise": "psnr_db", "flyback": "flyback",
           "drift": "drift"}[axis]
    return float(meta[key])


def material_series(material: str, axis: str, *, steps: Sequence[float], seeds: Sequence[int],
                    backend: ImageFormation, probe: ProbeParameters,
                    shape: tuple[int, int] = (256, 256),
                    reference_pixel_size_angstrom: float | None = None,
                    group: str | None = None) -> Iterator[BenchmarkImage]:
    """Yield the images of one quality series: step 0 (clean) and one step per value.

    Parameters
    ----------
    material : str
        A structure name (e.g. ``"SrTiO3[100]"``, ``"WS2"``).
    axis : str
        One of :data:`AXES`.
    steps : sequence of float
        Axis values of steps 1..n, in the axis' units (see the module docstring).
    seeds : sequence of int
        Realisations per step.
    backend : ImageFormation
        Image-formation backend.
    probe : ProbeParameters
        Probe (its FWHM is the clean image's resolution).
    shape : tuple of int
        Image (rows, cols).
    reference_pixel_size_angstrom : float, optional
        Pixel size of the clean reference; defaults to the material's entry in MATERIALS.
    group : str, optional
        Group name; defaults to ``"<formula>-simulated"``.
    """
    if axis not in AXES:
        raise InputError(f"unknown quality axis {axis!r}; known: {list(AXES)}")
    if len(steps) == 0:
        raise InputError(f"series {material}/{axis}: no steps given (empty series)")
    if len(seeds) == 0:
        raise InputError(f"series {material}/{axis}: no seeds given (empty series)")
    if material not in list_structures():
        raise InputError(f"series {material}/{axis}: unknown structure {material!r}; known: "
                         f"{list_structures()}")
    spec = MATERIALS.get(material)
    pixel_ref = reference_pixel_size_angstrom or (spec.reference_pixel_size_angstrom
                                                  if spec else None)
    if pixel_ref is None or not pixel_ref > 0:
        raise InputError(f"series {material}/{axis}: reference pixel size must be positive "
                         f"A/px, got {pixel_ref}")
    group = group or (spec.group if spec else f"{material}-simulated")
    r0 = probe_fwhm_angstrom(probe)
    for seed in seeds:
        structure_seed = seed_for(material, seed)
        clean = _clean_render(material, backend, ScanParameters(shape, pixel_ref),
                              structure_seed=structure_seed, probe=probe)
        spacing = clean.structure.column_spacing_angstrom
        for step, value in enumerate([0.0, *(float(v) for v in steps)]):
            rng = np.random.default_rng(seed_for(material, axis, step, seed))
            rendered = clean
            if step > 0 and axis in ("pixel_size", "flyback", "drift"):
                scan = ScanParameters(
                    shape, value * spacing / 100.0 if axis == "pixel_size" else pixel_ref,
                    flyback_px=value if axis == "flyback" else 0.0,
                    drift_px_per_line=value if axis == "drift" else 0.0,
                    seed=seed_for(material, axis, step, seed))
                rendered = render(material, backend, scan, structure_seed=structure_seed,
                                  probe=probe)
            image, raw, extra = _degrade(rendered, axis, value if step else 0.0, r0, rng)
            meta = image_metadata(rendered, image, raw, material=material, group=group,
                                  series=axis, step=step, seed=int(seed), backend=backend.name,
                                  **extra)
            meta["axis_value"] = _axis_value(axis, meta)
            yield BenchmarkImage(
                image_id=f"{group}:{axis}:step{step:02d}:seed{seed}",
                image=image.astype(np.float32), coords=rendered.coords,
                pixel_size=rendered.scan.pixel_size_angstrom, raw=raw.astype(np.float32),
                column_types=rendered.column_types, faint_coords=rendered.faint_coords,
                faint_types=rendered.faint_types, metadata=meta)


def reference_image(material: str, *, axis: str = "resolution",
                    shape: tuple[int, int] = (256, 256), seed: int = 0) -> BenchmarkImage:
    """The clean reference image of ``material`` (step 0 of its ``axis`` series), fast backend.

    Parameters
    ----------
    material : str
        ``"SrTiO3[100]"`` or ``"WS2"``.
    axis : str
        The series whose step 0 it is (one of :data:`AXES`).
    shape : tuple of int
        Image (rows, cols).
    seed : int
        Realisation.
    """
    probe = ProbeParameters()
    first_step = {"resolution": 150.0, "pixel_size": 10.0}.get(axis, 1.0)
    return next(material_series(material, axis, steps=[first_step], seeds=[seed],
                                backend=FastHAADF(probe), probe=probe, shape=shape))
