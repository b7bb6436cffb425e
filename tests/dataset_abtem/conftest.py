"""Shared fixtures: one tiny, real abTEM simulation of SrTiO3 [100], reused through the cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stembench.dataset_publish.simulate.abtem_backend import AbtemHAADF
from stembench.dataset_publish.simulate.catalogue import build_structure
from stembench.dataset_publish.simulate.columns import ColumnStructure
from stembench.dataset_publish.simulate.probe import ProbeParameters

#: Settings small enough for a few seconds of abTEM on 2 cores: static lattice, one unit cell
#: thick, a 2 x 2 cell potential, 16 x 16 scan positions.
TINY_SETTINGS: dict[str, object] = {
    "frozen_phonons": 0,
    "thickness_angstrom": None,
    "scan_sampling_angstrom": 0.25,
    "slice_thickness_angstrom": 2.0,
    "min_potential_extent_angstrom": 7.0,
}


def tiny_backend(
    cache_dir: Path | None, probe: ProbeParameters | None = None, **overrides: object
) -> AbtemHAADF:
    """A backend with :data:`TINY_SETTINGS`, optionally overridden."""
    settings = {**TINY_SETTINGS, **overrides}
    return AbtemHAADF(probe or ProbeParameters(), cache_dir=cache_dir, **settings)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def make_backend() -> Callable[..., AbtemHAADF]:
    """The :func:`tiny_backend` factory, for tests."""
    return tiny_backend


@pytest.fixture(scope="session")
def srtio3() -> ColumnStructure:
    """SrTiO3 [100] over 8 x 8 A with a random (seeded) lattice origin."""
    return build_structure("SrTiO3[100]", extent_angstrom=(8.0, 8.0), seed=3)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory, srtio3: ColumnStructure) -> Path:
    """A cache folder holding the tiny SrTiO3 unit-cell image (simulated once per session)."""
    folder = tmp_path_factory.mktemp("abtem-cache")
    tiny_backend(folder).unit_cell_image(srtio3)
    return folder
