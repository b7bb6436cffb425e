"""Simulated training images and masks for the segmentation networks, from the training world.

Images are rendered with the project's fast incoherent HAADF simulator on the structures,
probes and Z exponents of the training world (:mod:`stembench.endpoints.training.world`), which
share nothing with the benchmark's generator configuration, under conditions drawn at random
within broad ranges:

- structure: one of the training lattices of the requested kind, with a random lattice offset;
- pixel size: from a column spacing of ``1 / atoms_per_100px`` drawn log-uniformly;
- scan: random rotation (0-360 deg), origin, random-walk drift and fly-back error;
- probe: one of the training probes, then an extra Gaussian blur to a random effective
  resolution;
- Z exponent (outside the benchmark's 1.7), contrast (a constant background), Poisson dose.

Every structure and scan seed is drawn from ``[TRAINING_SEED_MIN, 2**31)``.

Masks are built from the labels (the centroid of each visible column's image on the
distorted scan, the benchmark's rule,
:func:`~stembench.dataset_publish.simulate.scan.ground_truth_pixels`), either
Gaussian (peak 1, standard deviation ``max(1 px, width / pixel size)``) or discs (value 1
within a radius of half the probe FWHM, or of ``width / 2``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from stembench.dataset_publish.simulate.degradations import blur_to_resolution, poisson_at_dose
from stembench.dataset_publish.simulate.fast_backend import FastHAADF
from stembench.dataset_publish.simulate.scan import (
    ScanParameters,
    beam_positions,
    ground_truth_pixels,
)
from stembench.dataset_publish.simulate.structures import ColumnStructure
from stembench.endpoints.training.world import (
    TRAINING_PROBES,
    Kind,
    build_training_structure,
    draw_exponent,
    structures_for,
)
from stembench.errors import InputError

__all__ = [
    "TRAINING_SEED_MIN",
    "TrainingDataConfig",
    "TrainingSample",
    "make_training_batch",
    "make_training_sample",
]

#: Every seed used for training data is at least this; the benchmark's series seeds are smaller.
TRAINING_SEED_MIN = 1_000_000
_SEED_MAX = 2**31 - 1

@dataclass(frozen=True)
class TrainingDataConfig:
    """Ranges of the simulated conditions (all ranges are inclusive lower, upper bounds).

    Attributes
    ----------
    atoms_per_100px : tuple of float
        Pixel size over column spacing, x 100; drawn log-uniformly.
    min_pixel_size_angstrom : float
        Lower bound of the pixel size, A/px.
    extra_blur_probability : float
        Chance of blurring to a coarser effective resolution.
    resolution_over_spacing : float
        Upper bound of that resolution (FWHM) as a fraction of the column spacing.
    contrast : tuple of float
        Target contrast ``(max - min) / max`` after adding a background; log-uniform.
    dose_e_per_angstrom2 : tuple of float
        Electron dose of the Poisson noise, e-/A^2; log-uniform.
    noiseless_probability : float
        Chance of an image without Poisson noise.
    drift_px_per_line : tuple of float
        Random-walk drift step, pixels per line.
    flyback_px : tuple of float
        Fly-back error, pixels.
    """

    atoms_per_100px: tuple[float, float] = (3.0, 22.0)
    min_pixel_size_angstrom: float = 0.04
    extra_blur_probability: float = 0.5
    resolution_over_spacing: float = 0.8
    contrast: tuple[float, float] = (0.15, 1.0)
    dose_e_per_angstrom2: tuple[float, float] = (2e3, 1e6)
    noiseless_probability: float = 0.2
    drift_px_per_line: tuple[float, float] = (0.0, 0.3)
    flyback_px: tuple[float, float] = (0.0, 2.5)


@dataclass(frozen=True)
class TrainingSample:
    """One simulated training image with its labels.

    Attributes
    ----------
    image : ndarray, shape (size, size), float32
        The image, min-max scaled to [0, 1].
    labels_xy : ndarray, shape (N, 2)
        Visible column positions in pixels (x = column, y = row), inside the image.
    pixel_size_angstrom : float
        Pixel size, A/px.
    resolution_angstrom : float
        Effective resolution (probe FWHM, widened by any extra blur), angstrom.
    structure : str
        The structure's name.
    seed : int
        The structure and scan seed (>= TRAINING_SEED_MIN).
    """

    image: NDArray[np.float32]
    labels_xy: NDArray[np.float64]
    pixel_size_angstrom: float
    resolution_angstrom: float
    structure: str
    seed: int


@functools.cache
def _backend(index: int) -> FastHAADF:
    return FastHAADF(TRAINING_PROBES[index])


@functools.cache
def _spacing_angstrom(name: str) -> float:
    return build_training_structure(name, extent_angstrom=(30.0, 30.0), exponent=1.8,
                                    seed=None).column_spacing_angstrom


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def _scan_over(structure_extent: float, size: int, pixel: float, rng: np.random.Generator,
               config: TrainingDataConfig, seed: int) -> ScanParameters:
    rotation = float(rng.uniform(0.0, 360.0))
    t = np.deg2rad(rotation)
    half = size * pixel / 2
    centre = np.full(2, structure_extent / 2)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    origin = centre - rot @ np.array([half, half])
    flyback = float(rng.uniform(*config.flyback_px)) if rng.random() < 0.5 else 0.0
    return ScanParameters(
        shape=(size, size), pixel_size_angstrom=pixel,
        origin_angstrom=(float(origin[0]), float(origin[1])), rotation_deg=rotation,
        drift_px_per_line=float(rng.uniform(*config.drift_px_per_line)), flyback_px=flyback,
        seed=seed,
    )  # fmt: skip


def make_training_sample(
    structure_name: str, *, size: int, rng: np.random.Generator,
    config: TrainingDataConfig | None = None,
) -> TrainingSample:
    """Simulate one training image of ``structure_name`` under random conditions.

    Parameters
    ----------
    structure_name : str
        A training structure (:func:`stembench.endpoints.training.world.structures_for`).
    size : int
        Side of the square image, pixels.
    rng : numpy.random.Generator
        Source of every random choice.
    config : TrainingDataConfig, optional
        Ranges of the conditions; default :class:`TrainingDataConfig` ().

    Returns
    -------
    TrainingSample
    """
    cfg = config or TrainingDataConfig()
    seed = int(rng.integers(TRAINING_SEED_MIN, _SEED_MAX))
    spacing = _spacing_angstrom(structure_name)
    pixel = max(_log_uniform(rng, cfg.atoms_per_100px) / 100 * spacing,
                cfg.min_pixel_size_angstrom)
    extent = size * pixel * np.sqrt(2) * 1.15 + 8 * spacing
    structure: ColumnStructure = build_training_structure(
        structure_name, extent_angstrom=(extent, extent), exponent=draw_exponent(rng), seed=seed,
    )
    scan = _scan_over(extent, size, pixel, rng, cfg, seed)
    backend = _backend(int(rng.integers(len(TRAINING_PROBES))))
    x, y = beam_positions(scan)
    image = backend.intensity(structure, x, y)
    resolution = backend.fwhm_angstrom
    ceiling = cfg.resolution_over_spacing * spacing
    if rng.random() < cfg.extra_blur_probability and ceiling > resolution:
        target = float(rng.uniform(resolution, ceiling))
        image, _ = blur_to_resolution(image, pixel_size_angstrom=pixel,
                                      probe_fwhm_angstrom=resolution, resolution_angstrom=target)
        resolution = target
    image = np.clip(image, 0.0, None)
    contrast = _log_uniform(rng, cfg.contrast)
    image = image + float(image.max()) * (1 / contrast - 1)
    if rng.random() >= cfg.noiseless_probability:
        dose = _log_uniform(rng, cfg.dose_e_per_angstrom2)
        image, _, _ = poisson_at_dose(image, dose_e_per_A2=dose, pixel_size_angstrom=pixel,
                                      rng=rng)
    low, high = float(image.min()), float(image.max())
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    labels = ground_truth_pixels(structure.positions_angstrom[structure.visible], scan,
                                 line_weight=backend.line_weight,
                                 reach_angstrom=backend.cutoff_angstrom)
    inside = np.all(np.isfinite(labels), axis=1) & np.all(
        (labels > -0.5) & (labels < size - 0.5), axis=1)
    return TrainingSample(scaled.astype(np.float32), labels[inside], pixel, resolution,
                          structure_name, seed)


def _gaussian_mask(labels: NDArray[np.float64], size: int, sigma_px: float) -> NDArray[np.float32]:
    mask = np.zeros((size, size), dtype=np.float32)
    reach = int(np.ceil(4 * sigma_px))
    for x, y in labels:
        r0, r1 = max(int(y) - reach, 0), min(int(y) + reach + 2, size)
        c0, c1 = max(int(x) - reach, 0), min(int(x) + reach + 2, size)
        rows = np.arange(r0, r1)[:, None]
        cols = np.arange(c0, c1)[None, :]
        blob = np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma_px**2))
        mask[r0:r1, c0:c1] = np.maximum(mask[r0:r1, c0:c1], blob)
    return mask


def _disc_mask(labels: NDArray[np.float64], size: int, radius_px: float) -> NDArray[np.float32]:
    rows, cols = np.mgrid[0:size, 0:size]
    mask = np.zeros((size, size), dtype=bool)
    for x, y in labels:
        mask |= (cols - x) ** 2 + (rows - y) ** 2 <= radius_px**2
    return mask.astype(np.float32)


def make_training_batch(
    kind: Kind, *, n: int, size: int,
    rng: np.random.Generator, mask: Literal["gaussian", "disc"],
    mask_width_angstrom: float | None = None, config: TrainingDataConfig | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Simulate ``n`` training images and their masks.

    Parameters
    ----------
    kind : {"mixed", "cubic", "hexagonal"}
        Which training lattices to draw from
        (:func:`stembench.endpoints.training.world.structures_for`).
    n : int
        Number of images.
    size : int
        Side of the square images, pixels.
    rng : numpy.random.Generator
        Source of every random choice (structures, conditions, noise).
    mask : {"gaussian", "disc"}
        Gaussian masks (peak 1 at each visible column) or disc masks (1 inside).
    mask_width_angstrom : float, optional
        Gaussian: standard deviation in angstrom, default 0.25 A, never below 1 px (the
        published 0.2 A is below a pixel at most pixel sizes; 0.25 A gives the watershed a
        region of several pixels per column at the reference pixel size while keeping
        neighbouring columns apart). Disc: diameter in angstrom, default the effective probe
        FWHM (as published), radius never below 1 px.
    config : TrainingDataConfig, optional
        Ranges of the conditions.

    Returns
    -------
    images : ndarray, shape (n, size, size), float32
        Images scaled to [0, 1].
    masks : ndarray, shape (n, size, size), float32
        Masks in [0, 1].

    Raises
    ------
    InputError
        For an unknown kind or mask, ``n < 1``, ``size < 8`` or a non-positive width.
    """
    names = structures_for(kind)
    if mask not in ("gaussian", "disc"):
        raise InputError(f"mask must be 'gaussian' or 'disc', got {mask!r}")
    if n < 1 or size < 8:
        raise InputError(f"training batch needs n >= 1 and size >= 8 px, got n={n}, size={size}")
    if mask_width_angstrom is not None and not mask_width_angstrom > 0:
        raise InputError(f"mask_width_angstrom must be positive, got {mask_width_angstrom}")
    images = np.empty((n, size, size), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=np.float32)
    for i in range(n):
        sample = make_training_sample(names[int(rng.integers(len(names)))], size=size, rng=rng,
                                      config=config)
        images[i] = sample.image
        pixel = sample.pixel_size_angstrom
        if mask == "gaussian":
            sigma = max(1.0, (mask_width_angstrom or 0.25) / pixel)
            masks[i] = _gaussian_mask(sample.labels_xy, size, sigma)
        else:
            diameter = mask_width_angstrom or sample.resolution_angstrom
            masks[i] = _disc_mask(sample.labels_xy, size, max(1.0, diameter / 2 / pixel))
    return images, masks
