"""Integrity covers everything a score depends on: one test per tampering case."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import h5py
import numpy as np
import pytest

from stembench.dataset_publish.experimental.importer import check_imported_labels, import_dataset
from stembench.dataset_publish.storage.manifest import (
    manifest_sidecar_path,
    read_manifest,
    verify_file,
)
from stembench.dataset_publish.storage.stembench_layout import Dataset, open_dataset
from stembench.errors import InputError, IntegrityError


def test_changed_pixel_size_is_refused_and_a_rewrite_changes_the_content_hash(
        small_dataset, small_images, write_images, tmp_path):
    with open_dataset(small_dataset) as ds:
        assert isinstance(ds, Dataset)
        before = ds.content_hash
    with h5py.File(small_dataset, "r+") as f:
        attrs = f["metadata/sto-noise-1"].attrs
        attrs["pixel_size_angstrom"] = 0.0625  # 0.125 -> 0.0625 would halve the RMS in A
        attrs["pixel_size_pm"] = 6.25
    assert verify_file(small_dataset) == ["/metadata/sto-noise-1"]
    with open_dataset(small_dataset) as ds:
        with pytest.raises(IntegrityError, match=r"sto-noise-1.*metadata does not match"):
            ds["sto-noise-1"]
        with pytest.raises(IntegrityError, match="metadata does not match"):
            ds.metadata("sto-noise-1")
        ds["ws2-ref-0"]  # untouched image reads fine
    with open_dataset(small_dataset, verify=False) as ds:
        assert ds["sto-noise-1"].pixel_size == 0.0625
        # the manifest (and so the content hash) is unchanged: reading verified is what
        # refuses the file ...
        assert ds.content_hash == before
    # ... and the same images written with the new pixel size hash differently
    changed = [replace(small_images[0], pixel_size=0.0625,
                       metadata={**small_images[0].metadata, "pixel_size_angstrom": 0.0625,
                                 "pixel_size_pm": 6.25}), *small_images[1:]]
    with open_dataset(write_images(tmp_path / "rewritten.h5", changed)) as rewritten:
        assert rewritten.content_hash != before
    with open_dataset(write_images(tmp_path / "same.h5", small_images)) as same:
        assert same.content_hash == before  # the hash is of the content, not the writing


def test_content_hash_covers_metadata_and_labels(tmp_path, small_images, write_images):
    first = write_images(tmp_path / "a.h5", small_images)
    again = write_images(tmp_path / "b.h5", small_images)
    changed = [small_images[0], small_images[1],
               type(small_images[2])(**{**small_images[2].__dict__,
                                        "faint_coords": np.array([[3.0, 4.0]])})]
    faint = write_images(tmp_path / "c.h5", changed)
    hashes = [read_manifest(p).content_hash() for p in (first, again, faint)]
    assert hashes[0] == hashes[1]  # created time differs, content does not
    assert hashes[2] != hashes[0]
    assert len(read_manifest(first).metadata) == 3


def test_deleted_manifest_attribute_is_refused_not_read_as_published(small_dataset):
    with h5py.File(small_dataset, "r+") as f:
        del f.attrs["manifest"]
    with pytest.raises(IntegrityError, match=r"stembench file .*without its root attribute"):
        open_dataset(small_dataset)


def test_deleted_manifest_and_stembench_marks_is_still_refused_by_its_sidecar(small_dataset):
    with h5py.File(small_dataset, "r+") as f:
        for key in ("manifest", "dataset_name", "dataset_version", "generator_version"):
            del f.attrs[key]
        for group in ("column_types", "column_elements", "faint_coords", "faint_types"):
            del f[group]
    with pytest.raises(IntegrityError, match=r"sidecar small\.h5\.manifest\.json"):
        open_dataset(small_dataset)


def test_manifest_disagreeing_with_its_sidecar_is_refused(small_dataset):
    sidecar = manifest_sidecar_path(small_dataset)
    data = json.loads(sidecar.read_text())
    data["metadata"]["sto-noise-1"] = "0" * 64
    sidecar.write_text(json.dumps(data))
    with pytest.raises(IntegrityError, match="disagrees with its sidecar"):
        open_dataset(small_dataset)


def test_file_without_sidecar_still_opens(small_dataset, tmp_path):
    alone = tmp_path / "alone" / "small.h5"
    alone.parent.mkdir()
    shutil.copy(small_dataset, alone)
    with open_dataset(alone) as ds:
        assert len(ds) == 3


def test_duplicated_imported_labels_are_refused(small_images, tmp_path):
    image = small_images[0]
    doubled = np.vstack([image.coords, image.coords[2] + [0.2, -0.1]])
    with pytest.raises(InputError, match=r"closer than 0\.5 px.*rows 3 and 7"):
        check_imported_labels(doubled, shape=image.shape, where="x")
    bad = type(image)(**{**image.__dict__, "coords": doubled,
                         "column_types": (*image.column_types, "Sr")})
    bad.metadata.pop("column_elements", None)
    with pytest.raises(InputError, match="sto-noise-1"):
        import_dataset([bad], tmp_path / "imported.h5", name="mine")
    assert not (tmp_path / "imported.h5").exists()


def test_imported_labels_outside_the_image_are_refused(small_images, tmp_path):
    image = small_images[0]
    outside = image.coords + np.array([100.0, 0.0])
    bad = type(image)(**{**image.__dict__, "coords": outside})
    with pytest.raises(InputError, match=r"6 position\(s\) outside the 32 x 24 px image"):
        import_dataset([bad], tmp_path / "imported.h5", name="mine")


def test_published_layout_is_recognised_by_its_own_structure(tmp_path):
    from stembench.errors import DatasetError

    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:  # imgs and coords, but coords are not (N, 2) positions
        f["imgs/a"] = np.zeros((8, 8))
        f["coords/a"] = np.zeros((4, 3))
        f.create_group("metadata/a").attrs["Pixel size (pm)"] = 12.5
    with pytest.raises(DatasetError, match="nor the published layout"):
        open_dataset(path)
