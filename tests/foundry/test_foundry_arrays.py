"""The Foundry array file: one stacked array per kind, equal to the dataset, verified."""

from __future__ import annotations

import dataclasses
import math

import h5py
import numpy as np
import pytest
from foundry_test_data import make_image

from stembench.dataset_publish.mdf.foundry_arrays import (
    ARRAY_KEYS,
    foundry_arrays_path,
    is_current,
    source_manifest_sha256,
    write_foundry_arrays,
)
from stembench.dataset_publish.simulate.build import DATASET_NAME
from stembench.dataset_publish.storage.manifest import (
    manifest_sidecar_path,
    read_manifest,
    verify_file,
)
from stembench.dataset_publish.storage.stembench_layout import (
    METADATA_FIELDS,
    DatasetWriter,
    open_dataset,
)
from stembench.errors import DatasetError


def _read(path):
    with h5py.File(path) as handle:
        return {key: handle[key][()] for key in handle}


def test_arrays_equal_the_dataset(tiny_dataset):
    arrays_path = foundry_arrays_path(tiny_dataset)
    assert arrays_path.name == "mini.foundry.h5"
    arrays = _read(arrays_path)
    assert sorted(arrays) == sorted(ARRAY_KEYS)
    with open_dataset(tiny_dataset) as dataset:
        assert [i.decode() for i in arrays["image_ids"]] == dataset.ids
        for index, image in enumerate(dataset):
            np.testing.assert_array_equal(arrays["imgs"][index], image.image)
            np.testing.assert_array_equal(arrays["raw"][index], image.raw)
            count = arrays["n_columns"][index]
            np.testing.assert_array_equal(arrays["coords"][index, :count], image.coords)
            assert [t.decode() for t in arrays["column_types"][index, :count]] == list(
                image.column_types)
            n_faint = arrays["n_faint"][index]
            np.testing.assert_array_equal(arrays["faint_coords"][index, :n_faint],
                                          image.faint_coords)
            assert [t.decode() for t in arrays["faint_types"][index, :n_faint]] == list(
                image.faint_types)
            expected_elements = list(image.metadata["column_elements"])
            assert [e.decode() for e in arrays["column_elements"][index, :count]] == (
                expected_elements)
            record = arrays["metadata"][index]
            for field, kind in METADATA_FIELDS.items():
                value = image.metadata[field]
                if kind is str:
                    assert record[field].decode() == value
                elif isinstance(value, float) and math.isnan(value):
                    assert math.isnan(record[field])
                else:
                    assert record[field] == value
    assert arrays["imgs"].shape == (3, 16, 20) and arrays["imgs"].dtype == np.float32
    assert arrays["coords"].shape == (3, 5, 2)
    assert arrays["image_shapes"].tolist() == [[16, 20]] * 3


def test_manifest_ties_the_array_file_to_its_source(tiny_dataset):
    arrays_path = foundry_arrays_path(tiny_dataset)
    manifest = read_manifest(arrays_path)
    source = read_manifest(tiny_dataset)
    assert (manifest.name, manifest.version) == (DATASET_NAME, source.version)
    assert manifest.generator_params == {"foundry_arrays_of": "mini.h5",
                                         "source_manifest_sha256": source_manifest_sha256(source)}
    assert sorted(manifest.arrays) == sorted(f"/{k}" for k in ARRAY_KEYS)
    assert verify_file(arrays_path) == []
    assert manifest_sidecar_path(arrays_path).read_text().strip() == manifest.to_json()
    assert is_current(tiny_dataset)
    with h5py.File(arrays_path, "r+") as handle:
        handle["coords"][0, 0, 0] += 1.0
    assert verify_file(arrays_path) == ["/coords"]


def test_images_of_different_sizes_are_padded(tmp_path):
    path = tmp_path / "mixed.h5"
    with DatasetWriter(path, name=DATASET_NAME, version="1", generator_params={}) as writer:
        writer.add(make_image("a", 1, shape=(8, 12), n_columns=2))
        writer.add(make_image("b", 2, shape=(10, 6), n_columns=4))
    arrays = _read(write_foundry_arrays(path))
    assert arrays["imgs"].shape == (2, 10, 12)
    assert arrays["image_shapes"].tolist() == [[8, 12], [10, 6]]
    assert np.isnan(arrays["imgs"][0, 8:, :]).all() and np.isnan(arrays["imgs"][1, :, 6:]).all()
    assert not np.isnan(arrays["imgs"][0, :8, :12]).any()
    assert arrays["n_columns"].tolist() == [2, 4]
    assert np.isnan(arrays["coords"][0, 2:]).all() and not np.isnan(arrays["coords"][1]).any()
    assert arrays["column_types"][0, 2:].tolist() == [b"", b""]


def test_faint_columns_travel_to_foundry_users(tmp_path):
    """Faint (don't care) columns are exported, so Foundry users can score them as such."""
    path = tmp_path / "faint.h5"
    plain = make_image("a", 1, n_columns=3)
    faint = dataclasses.replace(make_image("b", 2, n_columns=2),
                                faint_coords=np.array([[4.0, 5.0], [9.5, 3.25]]),
                                faint_types=("O", "O"))
    with DatasetWriter(path, name=DATASET_NAME, version="1", generator_params={}) as writer:
        writer.add(plain)
        writer.add(faint)
    arrays = _read(write_foundry_arrays(path))
    assert arrays["n_faint"].tolist() == [0, 2]
    assert np.isnan(arrays["faint_coords"][0]).all()
    np.testing.assert_array_equal(arrays["faint_coords"][1], [[4.0, 5.0], [9.5, 3.25]])
    assert arrays["faint_types"][1].tolist() == [b"O", b"O"]


def test_refuses_a_file_without_manifest(published_layout_file, tmp_path):
    with pytest.raises(DatasetError, match="has no manifest"):
        write_foundry_arrays(published_layout_file, destination=tmp_path / "x.foundry.h5")
    assert not (tmp_path / "x.foundry.h5").exists()
