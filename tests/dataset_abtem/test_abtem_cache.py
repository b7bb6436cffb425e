"""The unit-cell cache: reused across backends, keyed by every parameter, tamper-evident."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from stembench.dataset_publish.simulate.abtem_backend import AbtemHAADF, is_layer
from stembench.dataset_publish.simulate.catalogue import build_structure
from stembench.dataset_publish.simulate.columns import ColumnStructure
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.errors import IntegrityError

pytest.importorskip("abtem")

Factory = Callable[..., AbtemHAADF]


def _count_simulations(monkeypatch: pytest.MonkeyPatch, *, fake: bool) -> list[tuple[int, int]]:
    """Record every call of the simulation; with ``fake`` return a seed-dependent array."""
    calls: list[tuple[int, int]] = []
    original = AbtemHAADF._simulate

    def counting(
        self: AbtemHAADF, structure: ColumnStructure, *, field_cells: tuple[int, int]
    ) -> np.ndarray:
        calls.append(field_cells)
        if fake:
            rows, cols = (
                n * c
                for n, c in zip(
                    self._scan_gpts(self._cell(structure))[::-1], field_cells[::-1], strict=True
                )
            )
            return np.random.default_rng(self.seed).random((rows, cols))
        return original(self, structure, field_cells=field_cells)

    monkeypatch.setattr(AbtemHAADF, "_simulate", counting)
    return calls


def test_second_call_reads_the_cache(
    tmp_path: Path, srtio3: ColumnStructure, make_backend: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_simulations(monkeypatch, fake=False)
    first = make_backend(tmp_path).unit_cell_image(srtio3)
    assert calls == [(1, 1)]
    assert len(list(tmp_path.glob("*.npy"))) == 1 and len(list(tmp_path.glob("*.json"))) == 1
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind

    fresh = make_backend(tmp_path)
    second = fresh.unit_cell_image(srtio3)
    values = fresh.intensity(srtio3, [0.0, 1.0], [0.0, 2.0])
    assert calls == [(1, 1)]
    np.testing.assert_array_equal(second.array, first.array)
    assert second.sampling_angstrom == first.sampling_angstrom
    assert first.array.shape == (16, 16) and np.all(np.isfinite(values))


def test_key_covers_simulation_parameters_but_not_source_size(
    tmp_path: Path, srtio3: ColumnStructure, make_backend: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_simulations(monkeypatch, fake=True)
    variants = [
        make_backend(tmp_path),
        make_backend(tmp_path, seed=2),
        make_backend(tmp_path, frozen_phonons=2),
        make_backend(tmp_path, detector_mrad=(60.0, 200.0)),
        make_backend(tmp_path, ProbeParameters(defocus_angstrom=20.0)),
        make_backend(tmp_path, method="multislice"),
    ]
    for backend in variants:
        backend.unit_cell_image(srtio3)
    assert len(calls) == len(variants)
    assert len(list(tmp_path.glob("*.json"))) == len(variants)

    make_backend(tmp_path, ProbeParameters(source_fwhm_angstrom=1.0)).unit_cell_image(srtio3)
    assert len(calls) == len(variants)


@pytest.mark.parametrize("damage", ["flip-byte", "truncate", "edit-sidecar"])
def test_damaged_cache_is_detected(
    damage: str, tmp_path: Path, shared_cache: Path, srtio3: ColumnStructure, make_backend: Factory
) -> None:
    folder = tmp_path / "cache"
    shutil.copytree(shared_cache, folder)
    (array_file,) = folder.glob("*.npy")
    sidecar_file = array_file.with_suffix(".json")
    data = bytearray(array_file.read_bytes())
    if damage == "flip-byte":
        data[-3] ^= 0xFF
        array_file.write_bytes(bytes(data))
    elif damage == "truncate":
        array_file.write_bytes(bytes(data[: len(data) // 2]))
    else:
        sidecar = json.loads(sidecar_file.read_text())
        sidecar["parameters"]["seed"] = 99
        sidecar_file.write_text(json.dumps(sidecar))
    with pytest.raises(IntegrityError, match=re.escape(array_file.stem)):
        make_backend(folder).unit_cell_image(srtio3)


def test_without_cache_dir_one_backend_simulates_once(
    srtio3: ColumnStructure, make_backend: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_simulations(monkeypatch, fake=True)
    backend = make_backend(None)
    image = backend.unit_cell_image(srtio3)
    origin_x, origin_y = srtio3.cell_origin_angstrom
    values = backend.intensity(srtio3, origin_x + np.array([0.0, 0.25]), origin_y + 0.0)
    assert calls == [(1, 1)]
    assert make_backend(None, seed=1).intensity(srtio3, [0.0], [0.0]).shape == (1,)
    assert len(calls) == 2  # another backend object has its own memory
    assert values.shape == (2,) and image.array.shape == (16, 16)


def test_bulk_cells_are_stacked_to_the_thickness_and_layers_are_not(
    tmp_path: Path, srtio3: ColumnStructure, make_backend: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    _count_simulations(monkeypatch, fake=True)
    ws2 = build_structure("WS2", extent_angstrom=(8.0, 8.0))
    assert ws2.unit_cell is not None and srtio3.unit_cell is not None
    assert is_layer(ws2.unit_cell) and not is_layer(srtio3.unit_cell)
    backend = make_backend(tmp_path, thickness_angstrom=10.0)
    for structure in (srtio3, ws2):
        backend.unit_cell_image(structure)
    repetitions = {
        json.loads(path.read_text())["parameters"]["structure"]: json.loads(path.read_text())[
            "parameters"
        ]["repetitions"]
        for path in tmp_path.glob("*.json")
    }
    # 7 A of potential: 2 x 2 cubic cells of 3.905 A, 3 cells (11.7 A) thick;
    # WS2's 3.153 x 5.461 A cell: 3 x 2 cells, one layer.
    assert repetitions == {"SrTiO3[100]": [2, 2, 3], "WS2": [3, 2, 1]}
