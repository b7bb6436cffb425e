"""foundry-ml's own FoundryDataset reads the published layout offline, equal to stembench.load."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import responses
from foundry_test_data import SOURCE_ID

from stembench.dataset_publish.cache import load
from stembench.dataset_publish.foundry_metadata import dataset_metadata
from stembench.dataset_publish.foundry_source import as_foundry_dataset, load_published_benchmark
from stembench.errors import DatasetError


def test_foundry_dataset_equals_stembench_load(tiny_dataset, tmp_path):
    pytest.importorskip("foundry")
    meta = dataset_metadata(tiny_dataset)
    cache_dir = tmp_path / "foundry-data"
    for file in meta.files:  # the layout MDF publishes: <cache>/<source_id>/<files>
        (cache_dir / SOURCE_ID).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, cache_dir / SOURCE_ID / file.name)
    dataset = as_foundry_dataset(SOURCE_ID, meta.dc, meta.foundry, local_cache_dir=cache_dir)
    data = dataset.get_as_dict()
    assert list(data) == ["mini"]
    inputs, targets = data["mini"]["input"], data["mini"]["target"]
    with load(str(cache_dir / SOURCE_ID / "mini.h5")) as ours:
        assert len(ours) == 3
        for image in ours:
            key = image.image_id
            np.testing.assert_array_equal(inputs[f"imgs/{key}"], image.image)
            np.testing.assert_array_equal(targets[f"raw/{key}"], image.raw)
            np.testing.assert_array_equal(targets[f"coords/{key}"], image.coords)
            assert [t.decode() for t in targets[f"column_types/{key}"]] == list(
                image.column_types)
            attrs = dict(inputs[f"metadata/{key}"].attrs)
            assert attrs["pixel_size_angstrom"] == image.pixel_size
    assert len(responses.calls) == 0


def test_published_benchmark_read_through_same_reader(published_layout_file, tmp_path):
    with pytest.raises(DatasetError, match="not present"):
        load_published_benchmark(cache_dir=tmp_path / "empty")
    cached = tmp_path / "c" / "wei-atom-locating-benchmark-v1.1" / "wei_atom.h5"
    cached.parent.mkdir(parents=True)
    shutil.copyfile(published_layout_file, cached)
    with load_published_benchmark(cache_dir=tmp_path / "c") as from_cache, \
            load(str(published_layout_file)) as from_path:
        assert from_cache.ids == from_path.ids == ["img0", "img1"]
        image = from_cache["img1"]
        np.testing.assert_array_equal(image.coords, from_path["img1"].coords)
        assert image.pixel_size == pytest.approx(0.125)
        assert image.metadata["material"] == "WS2"
        assert from_cache.verify is False
    with load_published_benchmark(published_layout_file.parent) as from_folder:
        assert len(from_folder) == 2
