"""The one model interface: an image and its pixel size in, column positions out."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["Model", "ModelInfo", "sha256_file"]


@dataclass(frozen=True)
class ModelInfo:
    """What identifies a model in every result it produces.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"atomsegnet"``.
    version : str
        Version of the model's code and weights.
    framework : str
        ``"pytorch"``, ``"tensorflow"``, ``"onnx"``, ``"classical"`` or ``"python"``.
    weights_sha256 : str or None
        SHA-256 of the weights file, ``None`` for models without weights.
    """

    name: str
    version: str
    framework: str
    weights_sha256: str | None = None


class Model(ABC):
    """A model maps a 2D image and its pixel size to column positions.

    Subclasses implement :meth:`locate`; frameworks that can batch override
    :meth:`locate_batch`.
    """

    @property
    @abstractmethod
    def info(self) -> ModelInfo:
        """Name, version, framework and weights hash."""

    @abstractmethod
    def locate(self, image: NDArray[np.floating], pixel_size: float) -> NDArray[np.float64]:
        """Locate atomic columns in one image.

        Parameters
        ----------
        image : ndarray, shape (rows, cols)
            The image, any real dtype and intensity scale.
        pixel_size : float
            Pixel size in angstrom per pixel.

        Returns
        -------
        ndarray, shape (N, 2)
            Column positions in pixels as (x = column, y = row).
        """

    @property
    def batch_size(self) -> int:
        """How many images one :meth:`locate_batch` call should take; 1 unless it batches."""
        return 1

    def locate_batch(
        self, images: Sequence[NDArray[np.floating]], pixel_sizes: Sequence[float]
    ) -> list[NDArray[np.float64]]:
        """Locate columns in several images; the default runs :meth:`locate` on each."""
        return [self.locate(im, px) for im, px in zip(images, pixel_sizes, strict=True)]


def sha256_file(path: str | Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
