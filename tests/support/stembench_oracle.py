"""An oracle model for the scoring tests: it returns every column of the image it is given,
visible, faint and don't care (``unsure``), read from the dataset file named by its option."""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.typing import NDArray

from stembench.endpoints.models.base import Model, ModelInfo, sha256_file


def _key(image: NDArray[np.floating]) -> str:
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.float32).tobytes()).hexdigest()


class Oracle(Model):
    """Finds every labelled column (visible, faint and unsure) of the images of ``dataset``."""

    def __init__(self, *, dataset: str) -> None:
        from stembench.dataset_publish.storage.stembench_layout import open_dataset

        self._columns: dict[str, NDArray[np.float64]] = {}
        with open_dataset(dataset) as opened:
            for image_id in opened.ids:
                image = opened[image_id]
                self._columns[_key(image.image)] = np.concatenate(
                    [image.coords, np.reshape(image.faint_coords, (-1, 2))])
        self._info = ModelInfo("oracle", "1", "python", sha256_file(dataset))

    @property
    def info(self) -> ModelInfo:
        return self._info

    def locate(self, image: NDArray[np.floating], pixel_size: float) -> NDArray[np.float64]:
        return self._columns[_key(image)]
