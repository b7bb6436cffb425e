"""The data model shared by every part of stembench: one labelled benchmark image.

Conventions
-----------
* Positions are in pixels as ``(x, y)`` = ``(column, row)``; pixel ``(0, 0)`` is the
  centre of the top-left pixel.
* Pixel size is in angstrom per pixel (A/px).
* ``coords`` are the *visible* columns, the ground truth; ``faint_coords`` are columns too
  faint to see (:mod:`stembench.dataset_publish.simulate.visibility`), "don't care" in the score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stembench.errors import InputError
from stembench.validation import validate_coordinates, validate_image, validate_pixel_size

__all__ = ["EXPERIMENTAL_SUFFIX", "BenchmarkImage", "validate_coordinates"]

#: Suffix of the names of the experimental data groups (``"SrTiO3-experimental"``): the
#: dataset builder gives every experimental image such a group, the report its own section.
EXPERIMENTAL_SUFFIX = "-experimental"


@dataclass(frozen=True)
class BenchmarkImage:
    """One benchmark image with its ground-truth column positions and conditions.

    Attributes
    ----------
    image_id : str
        Unique id within its dataset.
    image : ndarray, shape (rows, cols)
        The image a model sees (float32).
    coords : ndarray, shape (N, 2)
        Ground-truth column positions in pixels, (x = column, y = row).
    pixel_size : float
        Pixel size in angstrom per pixel.
    raw : ndarray or None
        The noise-free image, where one exists.
    column_types : tuple of str
        Per-column type label (e.g. ``"Sr"``, ``"TiO"``, ``"W"``, ``"S2"``); empty if unknown.
    metadata : mapping
        Per-image conditions (material, series, axis value, seed, ...).
    faint_coords : ndarray, shape (M, 2)
        Columns present but too faint to see, in pixels (x, y); "don't care" when scoring.
    faint_types : tuple of str
        Type label per faint column; empty if unknown.
    """

    image_id: str
    image: NDArray[np.float32]
    coords: NDArray[np.float64]
    pixel_size: float
    raw: NDArray[np.float32] | None = None
    column_types: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    faint_coords: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 2)))
    faint_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        validate_image(self.image, name=f"image {self.image_id!r}")
        validate_pixel_size(self.pixel_size, name=f"image {self.image_id!r}")
        coords = validate_coordinates(self.coords, name="ground truth", image_id=self.image_id)
        object.__setattr__(self, "coords", coords)
        if self.column_types and len(self.column_types) != len(coords):
            raise InputError(
                f"image {self.image_id!r}: {len(self.column_types)} column types for "
                f"{len(coords)} columns"
            )
        faint = validate_coordinates(self.faint_coords, name="faint columns",
                                     image_id=self.image_id)
        object.__setattr__(self, "faint_coords", faint)
        if self.faint_types and len(self.faint_types) != len(faint):
            raise InputError(
                f"image {self.image_id!r}: {len(self.faint_types)} faint column types for "
                f"{len(faint)} faint columns"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape as (rows, cols)."""
        return (int(self.image.shape[0]), int(self.image.shape[1]))
