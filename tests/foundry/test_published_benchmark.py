"""The original published benchmark (wei_atom.h5) is read through stembench's reader."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from stembench.dataset_publish.loading import load
from stembench.dataset_publish.mdf.source import load_published_benchmark
from stembench.errors import DatasetError


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
