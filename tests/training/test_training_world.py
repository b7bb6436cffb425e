"""The training world is apart from the benchmark; training never opens a benchmark file."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import stembench.endpoints.training as training_package
from stembench.dataset_publish.simulate.build import GENERALITY_NAMES
from stembench.dataset_publish.simulate.catalogue import build_structure
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.simulate.series import MATERIALS
from stembench.endpoints.training.validation import make_validation_set
from stembench.endpoints.training.world import (
    EXPONENT_RANGES,
    MIXED_STRUCTURES,
    TRAINING_PROBES,
    build_training_structure,
    draw_exponent,
    structures_for,
)
from stembench.errors import InputError

TRAINING = {name for kind in ("mixed", "cubic", "hexagonal") for name in structures_for(kind)}
BENCHMARK = set(GENERALITY_NAMES) | set(MATERIALS)

#: Modules that build, read, cache or download benchmark datasets.
BENCHMARK_READERS = (
    "stembench.dataset_publish.build",
    "stembench.dataset_publish.simulate.build",
    "stembench.dataset_publish.simulate.series",
    "stembench.dataset_publish.storage.stembench_layout",
    "stembench.dataset_publish.storage.cache",
    "stembench.dataset_publish.experimental.importer",
    "stembench.dataset_publish.storage.published",
    "stembench.dataset_publish.mdf.download",
    "stembench.dataset_publish.mdf.source",
    "stembench.dataset_publish.experimental.derived_series",
    "stembench.dataset_publish.simulate.generality",
    "stembench.client",
)


def test_training_and_benchmark_structures_are_disjoint() -> None:
    assert set(MIXED_STRUCTURES) == TRAINING
    assert not TRAINING & BENCHMARK
    # not even as the base lattice of a modified generality structure (e.g. "graphene-GB")
    assert not [(t, b) for t in TRAINING for b in BENCHMARK if t in b]
    for name in TRAINING:  # and the benchmark's structure catalogue cannot build them
        with pytest.raises(InputError, match="unknown structure"):
            build_structure(name, extent_angstrom=(20.0, 20.0))
    assert "graphene" in structures_for("hexagonal")  # the published recipe kept
    assert {"SrTiO3[100]", "BaTiO3[100]", "LaAlO3[100]"} <= BENCHMARK


def test_probes_and_z_exponents_differ_from_the_benchmark() -> None:
    assert ProbeParameters() not in TRAINING_PROBES
    assert all(not low <= 1.7 <= high for low, high in EXPONENT_RANGES)
    rng = np.random.default_rng(2)
    drawn = np.array([draw_exponent(rng) for _ in range(400)])
    assert not np.any((drawn > 1.65) & (drawn < 1.75))
    assert drawn.min() >= 1.55 and drawn.max() <= 1.95


def test_training_lattices_label_their_heavy_columns() -> None:
    perovskite = build_training_structure("BaSnO3[100]", extent_angstrom=(20.0, 20.0),
                                          exponent=1.8, seed=3)
    visible = {t for t, v in zip(perovskite.column_types, perovskite.visible, strict=True) if v}
    assert visible == {"Ba", "SnO"}  # O columns stay below the visibility fraction
    assert perovskite.column_spacing_angstrom == pytest.approx(4.116 / np.sqrt(2), rel=1e-6)
    graphene = build_training_structure("graphene", extent_angstrom=(20.0, 20.0),
                                        exponent=1.6, seed=None)
    assert graphene.column_spacing_angstrom == pytest.approx(2.46 / np.sqrt(3), rel=1e-6)


def test_validation_set_is_fixed_and_hashed() -> None:
    first = make_validation_set("cubic", n=3, size=32)
    again = make_validation_set("cubic", n=3, size=32)
    assert first.manifest_sha256 == again.manifest_sha256
    assert [m["structure"] for m in first.manifest] == list(structures_for("cubic")[:3])
    assert make_validation_set("hexagonal", n=3, size=32).manifest_sha256 != first.manifest_sha256
    assert all(m["seed"] >= 1_000_000 and len(m["image_sha256"]) == 64 for m in first.manifest)


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_training_code_imports_no_benchmark_reader() -> None:
    folder = Path(training_package.__file__).parent
    modules = sorted(folder.glob("*.py"))
    assert {p.name for p in modules} >= {"data.py", "world.py", "validation.py", "cli.py"}
    for path in modules:
        bad = [m for m in _imported_modules(path) if m.startswith(BENCHMARK_READERS)]
        assert not bad, f"{path.name} imports {bad}"


@pytest.mark.slow
def test_a_training_run_opens_no_benchmark_file(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    import h5py

    from stembench.endpoints.training.torch_trainer import train_atomsegnet

    opened: list[str] = []
    real_open, real_h5 = builtins.open, h5py.File

    def spy_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def spy_h5(name: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(name))
        return real_h5(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(h5py, "File", spy_h5)
    monkeypatch.setenv("STEMBENCH_CACHE", str(tmp_path / "benchmark-cache"))
    validation = make_validation_set("mixed", n=2, size=32)
    result = train_atomsegnet(out_dir=tmp_path / "run", steps=2, batch_size=2, size=16,
                              checkpoint_every=1, progress=False, validation=validation)
    assert result.steps == 2 and (tmp_path / "run" / "validation.jsonl").is_file()
    assert opened  # the spies saw the run's own files
    assert not [p for p in opened if p.endswith((".h5", ".hdf5"))]
    assert not [p for p in opened if "benchmark-cache" in p]
