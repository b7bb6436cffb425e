"""Fixtures: an image of round blobs at known pixel centres, and importable plug-in modules."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

#: Blob centres as (x, y) pixels, on pixel centres so that a thresholded blob is symmetric.
BLOB_XY = np.array([[12.0, 10.0], [30.0, 14.0], [20.0, 33.0], [41.0, 40.0], [9.0, 44.0]])

PLUGIN_SOURCE = '''
import numpy as np

from stembench.endpoints.models.base import Model, ModelInfo


class ToyModel(Model):
    """Returns fixed positions scaled by ``factor``."""

    def __init__(self, factor=1.0):
        self.factor = factor

    @property
    def info(self):
        return ModelInfo("toy", "0.1", "python", None)

    def locate(self, image, pixel_size):
        return np.array([[1.0, 2.0], [3.0, 4.0]]) * self.factor


def brightest_pixel(image, pixel_size):
    row, col = np.unravel_index(np.argmax(image), np.shape(image))
    return np.array([[float(col), float(row)]])


def not_a_model(**options):
    return "nope"
'''

TORCH_NET_SOURCE = '''
import torch


class ScaledSigmoid(torch.nn.Module):
    """A 1x1 convolution and a sigmoid: maps [0, 1] intensity to a sharp blob map."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 1)

    def forward(self, x):
        return torch.sigmoid(self.conv(x))


class TwoLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.first = torch.nn.Conv2d(1, 4, 3)
        self.second = torch.nn.Conv2d(4, 1, 1)

    def forward(self, x):
        return self.second(self.first(x))
'''


@pytest.fixture
def blob_image() -> NDArray[np.float64]:
    """A 52x56 image of Gaussian blobs (sigma 2 px) centred on ``BLOB_XY``, with an offset."""
    rows, cols = np.mgrid[0:52, 0:56].astype(np.float64)
    image = np.zeros((52, 56))
    for x, y in BLOB_XY:
        image += np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / 8.0)
    return 7.0 + 3.0 * image


@pytest.fixture
def blob_xy() -> NDArray[np.float64]:
    """The blob centres, sorted by x, as (N, 2) x, y pixels."""
    return BLOB_XY[np.argsort(BLOB_XY[:, 0])]


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path holding ``toy_plugin.py`` and ``toy_torch_nets.py``."""
    (tmp_path / "toy_plugin.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    (tmp_path / "toy_torch_nets.py").write_text(textwrap.dedent(TORCH_NET_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path
