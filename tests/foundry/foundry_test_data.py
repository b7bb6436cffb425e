"""Test data for the foundry tests: a tiny stembench dataset and MDF search records.

Imported by name (``conftest.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.build import DATASET_NAME, DATASET_VERSION
from stembench.dataset_publish.storage import DatasetWriter

PIXEL_SIZE = 0.2  # A/px
SOURCE_ID = "atom_locating_benchmark_mini_v1.1"
SEARCH_URL = ("https://search.api.globus.org/v1/index/1a57bbe5-5272-477f-9d31-343b8258b7a5/"
              "search")


def _metadata(seed: int, **overrides: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "material": "SrTiO3[100]", "type": "simulated", "space_group": "Pm-3m",
        "probe_current_pA": 18.9, "peak_intensity_e": 250.0, "contrast": 0.8,
        "pixel_size_pm": PIXEL_SIZE * 100.0, "atoms_per_100px": 6.4, "resolution_pm": 128.0,
        "dose_e_per_A2": math.nan, "psnr_db": 20.5, "drift": 0.0, "flyback": 0.0,
        "pixel_size_angstrom": PIXEL_SIZE, "group": "SrTiO3-simulated", "series": "noise",
        "step": 1, "axis_value": 20.5, "seed": seed, "backend": "fast",
        "generator_version": "0.1.0", "source": "foundry-test",
    }
    meta.update(overrides)
    return meta


def make_image(image_id: str, seed: int, **overrides: Any) -> BenchmarkImage:
    """A deterministic random 16x20 image with 5 columns inside it."""
    rng = np.random.default_rng(seed)
    coords = np.column_stack([rng.uniform(0, 19, 5), rng.uniform(0, 15, 5)])
    raw = rng.random((16, 20)).astype(np.float32)
    image = (raw + 0.1 * rng.standard_normal((16, 20))).astype(np.float32)
    meta = _metadata(seed, **overrides)
    meta["column_elements"] = ("Sr", "Ti+O", "Sr", "Ti+O", "O")
    return BenchmarkImage(image_id=image_id, image=image, coords=coords, pixel_size=PIXEL_SIZE,
                          raw=raw, column_types=("Sr", "TiO", "Sr", "TiO", "O"), metadata=meta)


def write_tiny(path: Path, *, version: str = DATASET_VERSION) -> Path:
    """Write three images as the benchmark's name and version (with its manifest)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with DatasetWriter(path, name=DATASET_NAME, version=version,
                       generator_params={"preset": "tiny"}, overwrite=True) as writer:
        writer.add(make_image("sto-noise-1", 1))
        writer.add(make_image("sto-noise-2", 2, step=2))
        writer.add(make_image("ws2-ref-0", 3, material="WS2", group="WS2-simulated",
                              series="reference", step=0))
    return path


def search_record(*, source_id: str = SOURCE_ID, version: str = DATASET_VERSION,
                  mdf_version: str = "1.1", foundry: dict[str, Any] | None = None,
                  source_name: str = "atom_locating_benchmark_mini") -> dict[str, Any]:
    """A dataset record as MDF's Globus Search index holds it."""
    return {
        "mdf": {"source_id": source_id, "source_name": source_name, "version": mdf_version,
                "resource_type": "dataset", "organizations": ["Foundry"]},
        "dc": {"version": version, "titles": [{"title": "t"}]},
        "data": {"endpoint_path": f"globus://82f1b5c6-6e9b-11e5-ba47-22000b92c6ec/foundry/"
                                  f"{source_id}/"},
        "projects": {"foundry": foundry or {
            "data_type": "hdf5", "splits": [{"type": "test", "path": "mini.h5",
                                             "label": "mini"}], "keys": []}},
    }


def search_response(*records: dict[str, Any]) -> dict[str, Any]:
    return {"gmeta": [{"subject": r["mdf"]["source_id"], "entries": [{"content": r}]}
                      for r in records], "count": len(records), "total": len(records)}
