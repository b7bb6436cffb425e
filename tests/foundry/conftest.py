"""Fixtures of the foundry tests.

Every test runs inside an active ``responses`` mock with nothing registered by default, so a
request the test did not expect fails instead of reaching the network.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import responses

sys.path.insert(0, str(Path(__file__).parent))

from foundry_test_data import write_tiny

from stembench.dataset_publish.mdf import source


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """``<tmp>/published/mini.h5`` with ``mini.h5.manifest.json`` beside it."""
    return write_tiny(tmp_path / "published" / "mini.h5")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FOUNDRY_LOCAL_CACHE_DIR", str(tmp_path / "foundry-cache"))
    monkeypatch.setenv("STEMBENCH_CACHE", str(tmp_path / "stembench-cache"))
    monkeypatch.delenv("STEMBENCH_OFFLINE", raising=False)
    for name in ("MDF_SERVICE", "MDF_API_URL", "MDF_CONNECT_TOKEN", "MDF_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.config/mdf/config.json
    monkeypatch.setattr(source, "_FAILED", {})
    responses.start()
    try:
        yield
    finally:
        responses.stop()
        responses.reset()


@pytest.fixture
def published_layout_file(tmp_path: Path) -> Path:
    """A file in the published ``wei_atom.h5`` layout (per-id metadata attributes)."""
    path = tmp_path / "wei" / "wei_atom.h5"
    path.parent.mkdir()
    rng = np.random.default_rng(5)
    with h5py.File(path, "w") as handle:
        for index in range(2):
            key = f"img{index}"
            handle.create_dataset(f"imgs/{key}", data=rng.random((8, 8)).astype(np.float32))
            handle.create_dataset(f"raw/{key}", data=rng.random((8, 8)).astype(np.float32))
            # columns 6.6-7.4 px apart: 0.8-0.9 A at 12.5 pm/px, a physical spacing
            corners = np.array([[0.0, 0.0], [7.0, 0.0], [0.0, 7.0]])
            handle.create_dataset(f"coords/{key}", data=corners + rng.uniform(0, 0.4, (3, 2)))
            group = handle.create_group(f"metadata/{key}")
            group.attrs["Material"] = "WS2"
            group.attrs["Type"] = "simulated"
            group.attrs["Pixel size (pm)"] = 12.5
    return path
