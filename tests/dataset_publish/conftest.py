"""Shared fixtures: one mini dataset build per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from stembench.dataset_publish.build import build_dataset


@pytest.fixture(scope="session")
def mini_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mini-preset build (2 seeds, 3 steps per axis, 128x128, 6 generality images)."""
    return build_dataset(tmp_path_factory.mktemp("mini") / "mini.h5", preset="mini",
                         progress=False)
