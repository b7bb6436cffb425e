"""Shared fixtures: a tiny deterministic BenchmarkImage factory and a small written dataset."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.storage.stembench_layout import DatasetWriter

PIXEL_SIZE = 0.125  # A/px


def full_metadata(pixel_size: float = PIXEL_SIZE, **overrides: Any) -> dict[str, Any]:
    """Every required metadata field, with plausible values."""
    meta: dict[str, Any] = {
        "material": "SrTiO3[100]",
        "type": "simulated",
        "space_group": "Pm-3m",
        "probe_current_pA": 18.9,
        "peak_intensity_e": 250.0,
        "contrast": 0.8,
        "pixel_size_pm": pixel_size * 100.0,
        "atoms_per_100px": 6.4,
        "resolution_pm": 128.0,
        "dose_e_per_A2": math.nan,
        "psnr_db": 20.5,
        "drift": 0.0,
        "flyback": 0.0,
        "pixel_size_angstrom": pixel_size,
        "group": "SrTiO3-simulated",
        "series": "noise",
        "step": 1,
        "axis_value": 20.5,
        "seed": 7,
        "backend": "fast",
        "generator_version": "0.1.0",
        "source": "test-factory",
    }
    meta.update(overrides)
    return meta


def make_image(
    image_id: str, *, seed: int = 0, n_columns: int = 6, shape: tuple[int, int] = (24, 32),
    with_raw: bool = True, **meta_overrides: Any,
) -> BenchmarkImage:
    """A deterministic random image with random labels inside it."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    coords = np.column_stack(
        [rng.uniform(0, cols - 1, n_columns), rng.uniform(0, rows - 1, n_columns)]
    )
    raw = rng.random(shape).astype(np.float32)
    image = (raw + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    types = tuple("Sr" if k % 2 else "TiO" for k in range(n_columns))
    meta = full_metadata(seed=seed, **meta_overrides)
    meta.setdefault("column_elements", tuple("Sr" if k % 2 else "Ti+O" for k in range(n_columns)))
    return BenchmarkImage(
        image_id=image_id, image=image, coords=coords, pixel_size=PIXEL_SIZE,
        raw=raw if with_raw else None, column_types=types, metadata=meta,
    )


@pytest.fixture
def image_factory() -> Callable[..., BenchmarkImage]:
    return make_image


def write_dataset(path: Path, images: list[BenchmarkImage], **kwargs: Any) -> Path:
    """Write images with DatasetWriter under a test name and version."""
    with DatasetWriter(
        path, name="test-set", version="9.9", generator_params={"preset": "tiny"}, **kwargs
    ) as writer:
        for image in images:
            writer.add(image)
    return path


@pytest.fixture
def small_images() -> list[BenchmarkImage]:
    """Three images; the second has no raw image, the third is WS2 with other series."""
    return [
        make_image("sto-noise-1", seed=1),
        make_image("sto-noise-2", seed=2, with_raw=False, step=2),
        make_image("ws2-ref-0", seed=3, material="WS2", group="WS2-simulated",
                   series="reference", step=0),
    ]


@pytest.fixture
def small_dataset(tmp_path: Path, small_images: list[BenchmarkImage]) -> Path:
    return write_dataset(tmp_path / "small.h5", small_images)


@pytest.fixture
def write_images() -> Callable[..., Path]:
    return write_dataset
