"""Shared fixtures of the scorer tests: a square lattice of ground-truth columns."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

LatticeFactory = Callable[..., NDArray[np.float64]]


@pytest.fixture
def square_lattice() -> LatticeFactory:
    """Return ``make(n_side, spacing_px, origin_px)``: an (n_side**2, 2) x, y grid in px."""

    def make(n_side: int, spacing_px: float, origin_px: float) -> NDArray[np.float64]:
        steps = origin_px + spacing_px * np.arange(n_side, dtype=np.float64)
        xx, yy = np.meshgrid(steps, steps)
        return np.column_stack([xx.ravel(), yy.ravel()])

    return make
