"""Twins of a real image: a fitted column model rendered with exact labels.

A :class:`TwinModel` is what ``stembench assess`` fits to an image (positions, per-column
Gaussian amplitude and width, a smooth background, a noise model and the scan distortion);
this module renders it, so that the images a model is scored on are made where the model
runs (the client, or a Globus Compute endpoint), from a JSON description alone.

Image formation, in pixels (x = column, y = row): the beam of pixel ``(r, c)`` sits at
``(c + dx_r, r + dy_r)`` (:func:`~stembench.dataset_publish.simulate.scan.line_offsets_px`,
fly-back and drift in pixels), and records ``B(r, c) + sum_j a_j exp(-|beam - p_j|^2 /
(2 s_j^2))`` with ``B`` the background (bilinear on a coarse grid), ``p_j`` the specimen
position, ``a_j`` and ``s_j`` the column's amplitude and width. The labels are where each
column's image is: the centroid of the column's own Gaussian as the distorted lines record it
(:func:`~stembench.dataset_publish.simulate.scan.ground_truth_pixels`), the benchmark's rule.
Noise has variance ``gain * I + read_variance`` (``I`` the noise-free intensity): the shot
noise of ``I / gain`` counts, drawn as Poisson counts times ``gain`` (not a Gaussian: at a few
counts per pixel the counts' discreteness and skew make detection harder, AtomSegNet's F1 on the
development lattices at 150 e-/A^2 0.32-0.36 on Poisson counts against 0.37-0.55 on Gaussian
noise of the same variance), plus Gaussian noise of the constant variance. Which columns are
labelled is the benchmark's own visibility rule
(:func:`~stembench.dataset_publish.simulate.visibility.columns_with_peak` at
:data:`~stembench.dataset_publish.simulate.visibility.MIN_VISIBLE_CONTRAST`), applied once per
model, as the benchmark applies it once per dataset: a column is labelled when it owns a maximum
of the model's noise-free, undistorted image (background and every column, sampled at
:data:`~stembench.dataset_publish.simulate.visibility.SAMPLING_ANGSTROM`) whose prominence is at
least that fraction of the image's range; the others are rendered but labelled faint ("don't
care" in the score).

Which images are rendered is :mod:`stembench.dataset_publish.simulate.twin_plan`'s.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stembench.datamodel import BenchmarkImage
from stembench.errors import InputError
from stembench.imaging.gaussian import FWHM_PER_SIGMA

__all__ = ["MAX_VISIBILITY_SAMPLES", "TwinModel", "TwinVariant", "plan_to_json",
           "render_twin", "scaled", "window", "write_twin_dataset"]

#: The noise-free image the visibility rule is applied to is sampled at the rule's
#: ``SAMPLING_ANGSTROM``, or more coarsely where that would exceed this many samples along a
#: side (a memory bound; the rule's prominence changes little while a column spans a few samples).
MAX_VISIBILITY_SAMPLES = 4096
#: A column's Gaussian is rendered (and weights its label's lines) out to this many widths.
_REACH_SIGMA = 4.0


@dataclass(frozen=True)
class TwinModel:
    """A column model of one image, everything in pixels and image units.

    Attributes
    ----------
    shape : tuple of int
        Image (rows, cols).
    pixel_size : float
        A/px.
    xy_px : ndarray, shape (N, 2)
        Specimen positions of the columns (x, y), pixels, without scan distortion.
    amplitude : ndarray, shape (N,)
        Peak height of each column above the background, image units.
    sigma_px : ndarray, shape (N,)
        Gaussian width of each column, pixels.
    background : ndarray, shape (gr, gc)
        Background on a coarse grid spanning the image (bilinear between nodes).
    gain : float
        Shot-noise variance per unit of intensity (image units); 0 for none.
    read_variance : float
        Constant noise variance, image units squared.
    flyback_px, drift_px_per_line : float
        Scan distortion rendered on every twin (0 where none was detected).
    uncertainty : dict of str to float
        One-sigma uncertainty the later twins sample: relative (``sigma``, ``gain``),
        absolute (``flyback``, ``drift``).
    name : str
        Name of the fitted image.
    """

    shape: tuple[int, int]
    pixel_size: float
    xy_px: NDArray[np.float64]
    amplitude: NDArray[np.float64]
    sigma_px: NDArray[np.float64]
    background: NDArray[np.float64]
    gain: float
    read_variance: float
    flyback_px: float = 0.0
    drift_px_per_line: float = 0.0
    uncertainty: dict[str, float] = field(default_factory=dict)
    name: str = "image"

    def __post_init__(self) -> None:
        n = len(self.xy_px)
        if n == 0 or np.shape(self.xy_px) != (n, 2):
            raise InputError(f"twin of {self.name}: positions must be (N >= 1, 2), got "
                             f"{np.shape(self.xy_px)}")
        if np.shape(self.amplitude) != (n,) or np.shape(self.sigma_px) != (n,):
            raise InputError(f"twin of {self.name}: one amplitude and width per column")
        if not np.all(np.asarray(self.sigma_px) > 0):
            raise InputError(f"twin of {self.name}: column widths must be positive")
        if np.ndim(self.background) != 2 or min(np.shape(self.background)) < 2:
            raise InputError(f"twin of {self.name}: background grid must be at least 2 x 2")
        if not (self.gain >= 0 and self.read_variance >= 0 and self.pixel_size > 0):
            raise InputError(f"twin of {self.name}: gain, read variance >= 0 and pixel "
                             "size > 0 needed")

    @cached_property
    def labelled(self) -> NDArray[np.bool_]:
        """Columns the benchmark's visibility rule labels (the others are faint).

        The rule (:func:`~stembench.dataset_publish.simulate.visibility.columns_with_peak`,
        threshold ``MIN_VISIBLE_CONTRAST``, attach radius ``ATTACH_RADIUS_ANGSTROM``) on the
        model's noise-free, undistorted image resampled to the rule's ``SAMPLING_ANGSTROM``
        (coarser only past :data:`MAX_VISIBILITY_SAMPLES` samples along a side).
        """
        from stembench.dataset_publish.simulate.visibility import (
            ATTACH_RADIUS_ANGSTROM,
            MIN_VISIBLE_CONTRAST,
            SAMPLING_ANGSTROM,
            columns_with_peak,
        )

        scale = min(self.pixel_size / SAMPLING_ANGSTROM, MAX_VISIBILITY_SAMPLES / max(self.shape))
        fine = scaled(self, scale)
        rows, cols = fine.shape
        clean = _background(fine, np.arange(rows, dtype=np.float64),
                            np.arange(cols, dtype=np.float64))
        none = np.zeros(rows)
        clean = clean + _columns(fine, np.asarray(fine.sigma_px, np.float64), none, none,
                                 (0, 0, rows, cols))
        return columns_with_peak(fine.xy_px, clean, fraction=MIN_VISIBLE_CONTRAST,
                                 attach_radius_px=ATTACH_RADIUS_ANGSTROM / fine.pixel_size)

    @property
    def resolution_pm(self) -> float:
        """FWHM of the median column width, pm."""
        return float(np.median(self.sigma_px) * FWHM_PER_SIGMA * self.pixel_size * 100.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (arrays as lists)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, np.ndarray):
                data[key] = value.tolist()
        data["shape"] = list(self.shape)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TwinModel:
        """Inverse of :meth:`to_dict`; :class:`InputError` for a malformed dict."""
        try:
            return cls(tuple(int(v) for v in data["shape"]),  # type: ignore[arg-type]
                       float(data["pixel_size"]), np.asarray(data["xy_px"], float),
                       np.asarray(data["amplitude"], float),
                       np.asarray(data["sigma_px"], float),
                       np.asarray(data["background"], float), float(data["gain"]),
                       float(data["read_variance"]), float(data["flyback_px"]),
                       float(data["drift_px_per_line"]),
                       {str(k): float(v) for k, v in data.get("uncertainty", {}).items()},
                       str(data.get("name", "image")))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed twin model: {type(exc).__name__}: {exc}") from exc

    def digest(self) -> str:
        """Content hash of the model (names the rendered dataset)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class TwinVariant:
    """How one rendered image departs from the model.

    ``series`` is ``"reference"`` for a twin at the estimated quality, else the axis made
    worse; ``axis_value`` is that axis' value in its units (resolution pm, dose e-/A^2,
    contrast, fly-back px, drift px per line, atoms per 100 px; for a reference twin, its
    resolution). ``scale`` resamples the specimen: pixels per length times ``scale`` (the
    same dose per area, so each pixel's counts grow by ``1 / scale**2``).
    """

    image_id: str
    series: str
    step: int
    seed: int
    sigma_scale: float = 1.0
    gain_scale: float = 1.0
    contrast: float | None = None
    flyback_px: float = 0.0
    drift_px_per_line: float = 0.0
    crop: int | None = None
    scale: float = 1.0
    axis_value: float = math.nan


def _background(model: TwinModel, rows: NDArray[np.float64], cols: NDArray[np.float64]
                ) -> NDArray[np.float64]:
    from scipy.ndimage import map_coordinates

    grid = np.asarray(model.background, np.float64)
    gy = rows / max(model.shape[0] - 1, 1) * (grid.shape[0] - 1)
    gx = cols / max(model.shape[1] - 1, 1) * (grid.shape[1] - 1)
    yy, xx = np.meshgrid(gy, gx, indexing="ij")
    return np.asarray(map_coordinates(grid, [yy, xx], order=1, mode="nearest"))


def _columns(model: TwinModel, sigma: NDArray[np.float64], dx: NDArray[np.float64],
             dy: NDArray[np.float64], window: tuple[int, int, int, int]
             ) -> NDArray[np.float64]:
    """Sum of the column Gaussians seen by the beam of each pixel of ``window``."""
    r0, c0, rows, cols = window
    shift = float(max(np.abs(dx).max(initial=0.0), np.abs(dy).max(initial=0.0)))
    half = math.ceil(_REACH_SIGMA * float(sigma.max()) + shift) + 1
    x, y = model.xy_px[:, 0] - c0, model.xy_px[:, 1] - r0
    near = (x > -half) & (x < cols + half) & (y > -half) & (y < rows + half)
    x, y, amp, sig = x[near], y[near], model.amplitude[near], sigma[near]
    out = np.zeros(rows * cols)
    offsets = np.arange(-half, half + 1)
    for start in range(0, len(x), 512):
        part = slice(start, start + 512)
        rr = np.rint(y[part]).astype(np.int64)[:, None, None] + offsets[None, :, None]
        cc = np.rint(x[part]).astype(np.int64)[:, None, None] + offsets[None, None, :]
        inside = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
        rows_in = np.clip(rr, 0, rows - 1)
        bx = cc + dx[rows_in] - x[part][:, None, None]
        by = rr + dy[rows_in] - y[part][:, None, None]
        value = amp[part][:, None, None] * np.exp(
            -(bx * bx + by * by) / (2.0 * sig[part][:, None, None] ** 2))
        flat = (rows_in * cols + np.clip(cc, 0, cols - 1))[np.broadcast_to(inside, value.shape)]
        out += np.bincount(flat, weights=value[np.broadcast_to(inside, value.shape)],
                           minlength=rows * cols)
    return out.reshape(rows, cols)


def scaled(model: TwinModel, scale: float) -> TwinModel:
    """``model`` sampled with ``scale`` times as many pixels per length (same dose per area:
    the shot-noise gain, relative to the intensity, falls as ``scale**2``)."""
    if not scale > 0:
        raise InputError(f"twin sampling scale must be positive, got {scale}")
    rows, cols = model.shape
    return replace(model, shape=(max(2, round(rows * scale)), max(2, round(cols * scale))),
                   pixel_size=model.pixel_size / scale, xy_px=model.xy_px * scale,
                   sigma_px=model.sigma_px * scale, gain=model.gain * scale**2,
                   read_variance=model.read_variance * scale**4)


def window(model: TwinModel, crop: int | None) -> tuple[int, int, int, int]:
    """``(first row, first column, rows, columns)`` of the ``crop``-pixel centre that a
    variant with that crop renders (the whole image for ``None`` or a crop not smaller).

    Parameters
    ----------
    model : TwinModel
        The model rendered.
    crop : int or None
        Side of the centred square crop, pixels.
    """
    rows, cols = model.shape
    if crop is None or crop >= min(rows, cols):
        return 0, 0, rows, cols
    return (rows - crop) // 2, (cols - crop) // 2, crop, crop


def render_twin(model: TwinModel, variant: TwinVariant) -> BenchmarkImage:
    """Render one image of ``model`` as ``variant`` says, with its labels.

    Returns
    -------
    BenchmarkImage
        ``coords`` the labelled columns, ``faint_coords`` the faint ones, ``raw`` the
        noise-free image; metadata as the benchmark's (group ``"twin"``).
    """
    from stembench.dataset_publish.simulate.scan import (
        ScanParameters,
        ground_truth_pixels,
        line_offsets_px,
    )

    labelled = model.labelled  # judged once per model, at its own sampling
    if variant.scale != 1.0:
        model = scaled(model, variant.scale)
    r0, c0, rows, cols = window(model, variant.crop)
    scan = ScanParameters((rows, cols), 1.0, (float(c0), float(r0)),
                          drift_px_per_line=variant.drift_px_per_line,
                          flyback_px=variant.flyback_px, seed=variant.seed)
    dx, dy = line_offsets_px(scan)
    sigma = np.asarray(model.sigma_px, np.float64) * variant.sigma_scale
    clean = _background(model, np.arange(r0, r0 + rows, dtype=np.float64),
                        np.arange(c0, c0 + cols, dtype=np.float64))
    clean = clean + _columns(model, sigma, dx, dy, (r0, c0, rows, cols))
    if variant.contrast is not None:
        from stembench.dataset_publish.simulate.degradations import set_contrast

        clean, _ = set_contrast(clean, target_contrast=variant.contrast)
    noisy = _noisy(clean, model.gain * variant.gain_scale, model.read_variance, variant.seed)
    truth = ground_truth_pixels(
        model.xy_px, scan, reach_angstrom=_REACH_SIGMA * float(sigma.max()),
        line_weight=lambda d: np.exp(-0.5 * (d / sigma[:, None]) ** 2))
    ok = np.isfinite(truth).all(axis=1) & (truth[:, 0] >= -0.5) & (truth[:, 1] >= -0.5) \
        & (truth[:, 0] <= cols - 0.5) & (truth[:, 1] <= rows - 0.5)
    return BenchmarkImage(variant.image_id, noisy.astype(np.float32), truth[ok & labelled],
                          model.pixel_size, raw=clean.astype(np.float32),
                          faint_coords=truth[ok & ~labelled],
                          metadata=_metadata(model, variant, clean, noisy, sigma))


def _noisy(clean: NDArray[np.float64], gain: float, read_variance: float, seed: int
           ) -> NDArray[np.float64]:
    """``gain`` times Poisson counts of ``clean / gain`` plus Gaussian read noise."""
    rng = np.random.default_rng(seed)
    shot = gain * rng.poisson(np.maximum(clean, 0.0) / gain) if gain > 0 else clean
    return shot + rng.normal(0.0, 1.0, clean.shape) * math.sqrt(read_variance)


def _metadata(model: TwinModel, variant: TwinVariant, clean: NDArray[np.float64],
              noisy: NDArray[np.float64], sigma: NDArray[np.float64]) -> dict[str, Any]:
    from stembench.dataset_publish.simulate.degradations import psnr_db
    from stembench.dataset_publish.simulate.series import GENERATOR_VERSION

    peak = float(clean.max() - np.percentile(clean, 1))
    gain = model.gain * variant.gain_scale
    dose = peak / gain / model.pixel_size**2 if gain > 0 else math.inf
    top = float(clean.max())
    return {
        "material": model.name, "type": "simulated", "space_group": "unknown",
        "probe_current_pA": math.nan, "peak_intensity_e": peak / gain if gain > 0 else math.nan,
        "contrast": float((top - clean.min()) / top) if top > 0 else math.nan,
        "pixel_size_pm": model.pixel_size * 100.0,
        "atoms_per_100px": math.nan,
        "resolution_pm": float(np.median(sigma) * FWHM_PER_SIGMA * model.pixel_size * 100),
        "dose_e_per_A2": dose if math.isfinite(dose) else math.nan,
        "psnr_db": psnr_db(noisy, clean), "drift": variant.drift_px_per_line,
        "flyback": variant.flyback_px, "pixel_size_angstrom": model.pixel_size,
        "group": "twin", "series": variant.series, "step": variant.step,
        "axis_value": float(variant.axis_value), "seed": variant.seed, "backend": "fast",
        "generator_version": GENERATOR_VERSION, "source": f"twin of {model.name}",
    }


def plan_to_json(plan: list[TwinVariant]) -> list[dict[str, Any]]:
    """The plan's variants as JSON dicts (non-finite numbers as ``None``)."""
    return [{key: (None if isinstance(value, float) and not math.isfinite(value) else value)
             for key, value in asdict(variant).items()} for variant in plan]


def write_twin_dataset(model: TwinModel, plan: list[TwinVariant], path: str | Path
                       ) -> Path:
    """Render ``plan`` and write it as a stembench dataset file (replacing ``path``).

    Parameters
    ----------
    model : TwinModel
        The fitted column model of the real image.
    plan : list of TwinVariant
        The images to render (:func:`~stembench.dataset_publish.simulate.twin_plan.twin_plan`).
    path : str or pathlib.Path
        The dataset file to write (replaced if it exists).
    """
    from stembench.dataset_publish.storage.stembench_layout import DatasetWriter

    out = Path(path)
    with DatasetWriter(out, name=f"twin-{model.digest()}", version="1",
                       generator_params={"twin_of": model.name, "plan": plan_to_json(plan)},
                       overwrite=True) as writer:
        for variant in plan:
            writer.add(render_twin(model, variant))
    return out
