"""Quality series derived from a labelled real image, the way the published ones were made.

From one labelled image (its best frame) every step is a transformation whose effect on the
labels is known exactly:

* ``pixel_size``: binning by an integer factor ``b`` (the image is cropped to a multiple of
  ``b`` and each ``b x b`` block averaged); a label moves to ``x' = (x + 0.5) / b - 0.5``.
* ``resolution``: extra Gaussian blur to an effective resolution (pm); labels unchanged.
* ``dose``: binomial thinning of the counts to a lower dose (e-/A^2); labels unchanged.
* ``contrast``: a constant background that gives the target contrast; labels unchanged.

``raw`` of each step is the source transformed the same way but without thinning noise
(for ``dose``: the source counts scaled by the kept fraction), so PSNR measures the added
noise.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.simulate import degradations as deg
from stembench.dataset_publish.simulate.series import GENERATOR_VERSION, seed_for
from stembench.errors import InputError

__all__ = ["EXPERIMENTAL_AXES", "bin_image", "experimental_series"]

EXPERIMENTAL_AXES = ("pixel_size", "resolution", "dose", "contrast")
_AXIS_FIELD = {"pixel_size": "atoms_per_100px", "resolution": "resolution_pm",
               "dose": "dose_e_per_A2", "contrast": "contrast"}


def bin_image(image: NDArray[np.floating], coords: NDArray[np.float64], factor: int
              ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Average ``factor x factor`` blocks; map labels exactly.

    Returns the binned image, the binned (x, y) pixel positions of the labels that stay inside
    the cropped field, and the mask of kept labels.

    Parameters
    ----------
    image : numpy.ndarray
        The image, 2-D.
    coords : numpy.ndarray
        Label positions ``(N, 2)`` in pixels (x = column, y = row).
    factor : int
        Binning factor (pixels per side of a block), a positive integer.
    """
    if int(factor) != factor or factor < 1:
        raise InputError(f"binning factor must be a positive integer, got {factor}")
    b = int(factor)
    rows, cols = (s // b for s in image.shape)
    if rows < 2 or cols < 2:
        raise InputError(f"binning a {image.shape} image by {b} leaves fewer than 2x2 pixels")
    cropped = np.asarray(image, np.float64)[: rows * b, : cols * b]
    binned = cropped.reshape(rows, b, cols, b).mean(axis=(1, 3))
    mapped = (np.asarray(coords, np.float64) + 0.5) / b - 0.5
    keep = ((mapped[:, 0] >= -0.5) & (mapped[:, 0] <= cols - 0.5)
            & (mapped[:, 1] >= -0.5) & (mapped[:, 1] <= rows - 0.5))
    return binned, mapped[keep], keep


def _spacing_angstrom(coords: NDArray[np.float64], pixel: float) -> float:
    if len(coords) < 2:
        return float("nan")
    dist, _ = cKDTree(coords).query(coords, k=2)
    return float(np.median(dist[:, 1]) * pixel)


def _metadata(source: BenchmarkImage, image: NDArray[np.float64], raw: NDArray[np.float64],
              coords: NDArray[np.float64], pixel: float, spacing: float, *, axis: str, step: int,
              seed: int, group: str, resolution_angstrom: float, dose: float, peak: float,
              elements: tuple[str, ...] | None) -> dict[str, Any]:
    src = source.metadata
    meta: dict[str, Any] = {
        "material": str(src.get("material", "unknown")), "type": "experimental",
        "space_group": str(src.get("space_group", "")),
        "probe_current_pA": float(src.get("probe_current_pA", float("nan"))),
        "peak_intensity_e": peak,
        "contrast": deg.contrast(image), "pixel_size_pm": pixel * 100.0,
        "atoms_per_100px": pixel / spacing * 100.0, "resolution_pm": resolution_angstrom * 100,
        "dose_e_per_A2": dose, "psnr_db": deg.psnr_db(image, raw),
        "drift": float(src.get("drift", float("nan"))),
        "flyback": float(src.get("flyback", float("nan"))),
        "pixel_size_angstrom": pixel, "group": group, "series": axis, "step": step,
        "seed": seed, "backend": "experimental", "generator_version": GENERATOR_VERSION,
        "source": str(src.get("source", source.image_id)),
    }
    meta["axis_value"] = float(meta[_AXIS_FIELD[axis]])
    if elements is not None:
        meta["column_elements"] = elements
    return meta


def experimental_series(source: BenchmarkImage, axis: str, *, steps: Sequence[float],
                        seeds: Sequence[int] = (0,), resolution_angstrom: float = float("nan"),
                        dose_e_per_A2: float = float("nan"), counts_per_unit: float = 1.0,
                        group: str | None = None) -> Iterator[BenchmarkImage]:
    """Yield step 0 (the source) and one degraded image per step value and seed.

    Parameters
    ----------
    source : BenchmarkImage
        The labelled best image (coords in pixels, pixel size in A/px).
    axis : {"pixel_size", "resolution", "dose", "contrast"}
        Quality axis. Step values: integer binning factors, target resolutions in pm,
        target doses in e-/A^2, or target contrasts in (0, 1].
    steps : sequence of float
        Values of steps 1..n.
    seeds : sequence of int
        Realisations per step (they differ only for ``dose``).
    resolution_angstrom : float
        Effective resolution of the source (A); required for ``resolution``.
    dose_e_per_A2 : float
        Dose of the source (e-/A^2); required for ``dose``.
    counts_per_unit : float
        Electrons per image unit, to turn the source into counts for ``dose``.
    group : str, optional
        Group name; defaults to ``"<material>-experimental"``.
    """
    if axis not in EXPERIMENTAL_AXES:
        raise InputError(f"unknown experimental axis {axis!r}; known: {list(EXPERIMENTAL_AXES)}")
    if len(steps) == 0 or len(seeds) == 0:
        raise InputError(f"experimental series {source.image_id!r}/{axis}: empty series "
                         f"({len(steps)} steps, {len(seeds)} seeds)")
    if axis == "resolution" and not resolution_angstrom > 0:
        raise InputError(f"image {source.image_id!r}: a resolution series needs the source "
                         f"resolution_angstrom, got {resolution_angstrom}")
    if axis == "dose" and not (dose_e_per_A2 > 0 and counts_per_unit > 0):
        raise InputError(f"image {source.image_id!r}: a dose series needs the source "
                         f"dose_e_per_A2 and counts_per_unit > 0, got {dose_e_per_A2}, "
                         f"{counts_per_unit}")
    material = str(source.metadata.get("material", "unknown"))
    group = group or f"{material.split('[')[0]}-experimental"
    elements = source.metadata.get("column_elements")
    base = np.asarray(source.image, np.float64)
    spacing = _spacing_angstrom(source.coords, source.pixel_size)
    for seed in seeds:
        for step, value in enumerate([0.0, *(float(v) for v in steps)]):
            image, raw, coords = base, base, source.coords
            pixel, res, dose = source.pixel_size, resolution_angstrom, dose_e_per_A2
            keep = np.ones(len(coords), bool)
            peak = float(source.metadata.get("peak_intensity_e", float("nan")))
            if step and axis == "pixel_size":
                image, coords, keep = bin_image(base, source.coords, int(value))
                raw, pixel = image, source.pixel_size * int(value)
            elif step and axis == "resolution":
                image, _ = deg.blur_to_resolution(base, pixel_size_angstrom=pixel,
                                                  probe_fwhm_angstrom=resolution_angstrom,
                                                  resolution_angstrom=value / 100.0)
                raw, res = image, value / 100.0
            elif step and axis == "contrast":
                image, _ = deg.set_contrast(base, target_contrast=value)
                raw = image
            elif step and axis == "dose":
                if not 0 < value <= dose_e_per_A2:
                    raise InputError(f"image {source.image_id!r}: dose step {value} must be "
                                     f"in (0, {dose_e_per_A2}] e-/A^2 (thinning only lowers)")
                counts = np.rint(base * counts_per_unit).clip(0).astype(np.int64)
                kept = value / dose_e_per_A2
                rng = np.random.default_rng(seed_for(source.image_id, axis, step, seed))
                image = rng.binomial(counts, kept).astype(np.float64)
                raw, dose = counts.astype(np.float64) * kept, value
                peak = float(raw.max())
            kept_elements = None if elements is None else tuple(
                e for e, k in zip(elements, keep, strict=True) if k)
            types = tuple(t for t, k in zip(source.column_types, keep, strict=True) if k)
            meta = _metadata(source, image, raw, coords, pixel, spacing, axis=axis, step=step,
                             seed=int(seed), group=group, resolution_angstrom=res, dose=dose,
                             peak=peak, elements=kept_elements)
            yield BenchmarkImage(f"{group}:{source.image_id}:{axis}:step{step:02d}:seed{seed}",
                                 image.astype(np.float32), coords, pixel,
                                 raw=np.asarray(raw, np.float32), column_types=types,
                                 metadata=meta)
