"""DatasetWriter and open_dataset: round trip, atomic write, manifest, errors."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import h5py
import numpy as np
import pytest

from stembench.dataset_publish.storage.manifest import (
    Manifest,
    manifest_sidecar_path,
    sha256_array,
    verify_file,
)
from stembench.dataset_publish.storage.stembench_layout import Dataset, DatasetWriter, open_dataset
from stembench.errors import DatasetError, InputError, IntegrityError


def test_round_trip_equal_arrays_and_metadata(small_dataset, small_images):
    with open_dataset(small_dataset) as ds:
        assert isinstance(ds, Dataset)
        assert (ds.name, ds.version, len(ds)) == ("test-set", "9.9", 3)
        assert ds.ids == [im.image_id for im in small_images]  # insertion order kept
        for original, read in zip(small_images, ds, strict=True):
            assert read.image_id == original.image_id
            np.testing.assert_array_equal(read.image, original.image)
            assert read.image.dtype == np.float32
            np.testing.assert_array_equal(read.coords, original.coords)
            assert read.pixel_size == original.pixel_size
            assert read.column_types == original.column_types
            if original.raw is None:
                assert read.raw is None
            else:
                np.testing.assert_array_equal(read.raw, original.raw)
            for key, value in original.metadata.items():
                if isinstance(value, float) and math.isnan(value):
                    assert math.isnan(read.metadata[key])
                else:
                    assert read.metadata[key] == value, key


def test_metadata_table_select_and_key_error(small_dataset):
    with open_dataset(small_dataset) as ds:
        table = ds.metadata_table()
        assert [row["image_id"] for row in table] == ds.ids
        assert [row["step"] for row in table] == [1, 2, 0]
        assert "column_elements" not in table[0]
        assert ds.metadata("ws2-ref-0")["material"] == "WS2"
        assert ds.select(material="SrTiO3[100]") == ["sto-noise-1", "sto-noise-2"]
        assert ds.select(material="SrTiO3[100]", step=2) == ["sto-noise-2"]
        assert ds.select(series="drift") == []
        with pytest.raises(InputError, match="unknown metadata field"):
            ds.select(colour="red")
        with pytest.raises(KeyError, match="sto-noise-1"):
            ds["no-such-image"]


def test_manifest_in_attrs_and_sidecar(small_dataset, small_images):
    sidecar = json.loads(manifest_sidecar_path(small_dataset).read_text())
    with h5py.File(small_dataset, "r") as f:
        embedded = json.loads(f.attrs["manifest"])
        assert f.attrs["dataset_name"] == "test-set"
        assert f.attrs["generator_version"] == "0.1.0"
    assert sidecar == embedded
    manifest = Manifest.from_json(json.dumps(embedded))
    assert manifest.generator_params == {"preset": "tiny"}
    first = small_images[0]
    assert manifest.arrays["/imgs/sto-noise-1"] == sha256_array(first.image)
    assert manifest.arrays["/coords/sto-noise-1"] == sha256_array(first.coords)
    # 3 imgs + 2 raw + 3 coords + 3 column_types + 3 column_elements (no faint columns)
    assert len(manifest.arrays) == 14
    assert verify_file(small_dataset) == []


def test_sha256_array_covers_dtype_shape_and_values():
    a = np.arange(6, dtype=np.float32)
    assert sha256_array(a) == sha256_array(a.copy())
    assert sha256_array(a) != sha256_array(a.astype(np.float64))
    assert sha256_array(a) != sha256_array(a.reshape(2, 3))
    b = a.copy()
    b[3] += 1e-3
    assert sha256_array(a) != sha256_array(b)
    # a non-contiguous view hashes like its contiguous copy
    m = np.arange(12.0).reshape(3, 4)
    assert sha256_array(m.T) == sha256_array(np.ascontiguousarray(m.T))


def test_modified_pixel_raises_integrity_error(small_dataset):
    with h5py.File(small_dataset, "r+") as f:
        f["imgs/sto-noise-2"][3, 4] += 1.0
    assert verify_file(small_dataset) == ["/imgs/sto-noise-2"]
    with open_dataset(small_dataset) as ds:
        ds["sto-noise-1"]  # untouched image reads fine
        with pytest.raises(IntegrityError, match=r"sto-noise-2.*/imgs/sto-noise-2") as info:
            ds["sto-noise-2"]
        assert str(small_dataset) in str(info.value)
    with open_dataset(small_dataset, verify=False) as ds:
        assert ds["sto-noise-2"].image[3, 4] > 1.0


def test_added_array_is_reported(small_dataset):
    with h5py.File(small_dataset, "r+") as f:
        f["imgs/intruder"] = np.zeros((2, 2), np.float32)
    assert verify_file(small_dataset) == ["/imgs/intruder"]


def test_truncated_file_raises_dataset_error(small_dataset, tmp_path):
    data = small_dataset.read_bytes()
    for keep in (len(data) // 2, 100):
        cut = tmp_path / f"cut{keep}.h5"
        cut.write_bytes(data[:keep])
        with pytest.raises(DatasetError, match=re.escape(str(cut))), open_dataset(cut) as ds:
            for _ in ds:
                pass
        with pytest.raises(DatasetError, match=re.escape(str(cut))):
            mismatches = verify_file(cut)
            assert mismatches == []  # unreachable when the error is raised


def test_non_hdf5_and_missing_file(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not an hdf5 file")
    with pytest.raises(DatasetError, match=r"notes\.h5"):
        open_dataset(text)
    with pytest.raises(DatasetError, match="no such dataset file"):
        open_dataset(tmp_path / "absent.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["something"] = np.zeros(3)
    with pytest.raises(DatasetError, match="neither a stembench dataset"):
        open_dataset(other)


def test_exception_inside_with_leaves_no_file(tmp_path, image_factory):
    target = tmp_path / "atomic.h5"
    writer = DatasetWriter(target, name="x", version="1", generator_params={})
    with pytest.raises(RuntimeError, match="boom"), writer:
        writer.add(image_factory("a"))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_guard(small_dataset, image_factory, write_images):
    with pytest.raises(DatasetError, match="already exists"):
        DatasetWriter(small_dataset, name="x", version="1", generator_params={})
    write_images(small_dataset, [image_factory("only")], overwrite=True)
    with open_dataset(small_dataset) as ds:
        assert ds.ids == ["only"]
    assert len(json.loads(manifest_sidecar_path(small_dataset).read_text())["arrays"]) == 5


def test_duplicate_id_rejected_and_nothing_written(tmp_path, image_factory, write_images):
    target = tmp_path / "dup.h5"
    with pytest.raises(InputError, match="'a' was already added"):
        write_images(target, [image_factory("a"), image_factory("a", seed=5)])
    assert not target.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"drop": "series"}, r"lacks required field\(s\) \['series'\]"),
        ({"step": 1.5}, "'step' must be an int"),
        ({"contrast": "high"}, "'contrast' must be a number"),
        ({"type": "simulation"}, "'type' must be one of"),
        ({"pixel_size_pm": 20.0}, "pixel_size_pm=20.0 disagrees"),
        ({"extra": [1, 2]}, "extra metadata field 'extra'"),
        ({"column_elements": ("Sr",)}, "1 column elements for 6 columns"),
    ],
)
def test_bad_metadata_rejected(tmp_path, image_factory, write_images, change, message):
    image = image_factory("img-7", seed=7)
    meta = dict(image.metadata)
    drop = change.pop("drop", None)
    if drop:
        del meta[drop]
    meta.update(change)
    bad = type(image)(image.image_id, image.image, image.coords, image.pixel_size,
                      image.raw, image.column_types, meta)
    with pytest.raises(InputError, match=message) as info:
        write_images(tmp_path / "bad.h5", [bad])
    assert "img-7" in str(info.value)
    assert not (tmp_path / "bad.h5").exists()


def test_bad_image_id_rejected(tmp_path, image_factory, write_images):
    with pytest.raises(InputError, match="without '/'"):
        write_images(tmp_path / "bad.h5", [image_factory("a/b")])


@pytest.mark.parametrize(("pixels", "message"), [
    (np.full((4, 4), np.nan, np.float32), r"image 'a': 16 non-finite value\(s\)"),
    (np.zeros((2, 4, 4), np.float32), r"image 'a': expected a 2D image, got shape \(2, 4, 4\)"),
])
def test_an_unusable_benchmark_image_is_refused_in_one_line(image_factory, pixels, message):
    image = image_factory("a")
    with pytest.raises(InputError, match=message):
        dataclasses.replace(image, image=pixels)


def test_manifest_from_json_errors():
    with pytest.raises(DatasetError, match="not valid JSON"):
        Manifest.from_json("{")
    with pytest.raises(DatasetError, match="lacks field"):
        Manifest.from_json('{"name": "x"}')


def test_extra_scalar_metadata_round_trips(tmp_path, image_factory, write_images):
    path = write_images(tmp_path / "x.h5", [image_factory("e", note="hello", flag=True)])
    with open_dataset(path) as ds:
        meta = ds.metadata("e")
    assert meta["note"] == "hello"
    assert meta["flag"] is True or meta["flag"] == 1


def test_generator_params_must_be_json_safe(tmp_path):
    with pytest.raises(InputError, match="generator_params must be JSON-safe"):
        DatasetWriter(tmp_path / "x.h5", name="x", version="1",
                      generator_params={"sigma": float("nan")})
    with pytest.raises(InputError, match="generator_params must be JSON-safe"):
        DatasetWriter(tmp_path / "x.h5", name="x", version="1",
                      generator_params={"array": np.zeros(2)})
