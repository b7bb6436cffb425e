"""The Foundry array file of a dataset: one stacked array per kind, as foundry-ml reads it.

foundry-ml 1.2.2 (``FoundryCache._load_data``) opens the split file of an ``hdf5`` dataset
and, for every key the Foundry block lists, returns ``f[key][0:]`` when the key is an HDF5
dataset and the live ``h5py.Group`` when it is a group. The stembench layout keeps one
array per image (``/imgs/<id>``, ...), which would give one dictionary entry per image, or
open groups. So each published dataset file ``<preset>.h5`` gets a companion
``<preset>.foundry.h5`` whose top level holds one array per kind:

================  =======  ====================================================
key               dtype    shape and meaning
================  =======  ====================================================
``image_ids``     bytes    (n,) image id, UTF-8
``imgs``          float32  (n, rows, cols) the image a model sees
``image_shapes``  int64    (n, 2) (rows, cols) of each image; ``imgs`` and ``raw``
                           are NaN beyond it when the images differ in size
``metadata``      record   (n,) one field per metadata field (text as UTF-8 bytes,
                           NaN for an unknown number)
``raw``           float32  (n, rows, cols) noise-free image (NaN where unknown)
``coords``        float64  (n, max_columns, 2) columns as (x = column, y = row) in
                           pixels; rows beyond ``n_columns`` are NaN
``n_columns``     int64    (n,) number of columns of each image
``column_types``  bytes    (n, max_columns) column type label, ``b""`` padding
``column_elements`` bytes  (n, max_columns) elements in each column, ``b""`` padding
``faint_coords``  float64  (n, max_faint, 2) faint ("don't care") columns, NaN padding
``n_faint``       int64    (n,) number of faint columns of each image
``faint_types``   bytes    (n, max_faint) type label of each faint column
================  =======  ====================================================

The file carries its own manifest (root attribute and ``.manifest.json`` sidecar, via
:mod:`stembench.dataset_publish.storage.manifest`) with the SHA-256 of every array, the same
dataset name and version, and the SHA-256 of the source file's manifest, so a download is
verified exactly like the dataset file itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from stembench.atomic import AtomicPath, atomic_write_text
from stembench.dataset_publish.storage.manifest import (
    MANIFEST_ATTR,
    Manifest,
    manifest_sidecar_path,
    read_manifest,
    sha256_array,
)
from stembench.dataset_publish.storage.stembench_layout import (
    METADATA_FIELDS,
    Dataset,
    open_dataset,
)
from stembench.errors import DatasetError

__all__ = [
    "ARRAY_KEYS",
    "FOUNDRY_ARRAYS_SUFFIX",
    "foundry_arrays_path",
    "is_current",
    "made_from",
    "source_manifest_sha256",
    "write_foundry_arrays",
]

FOUNDRY_ARRAYS_SUFFIX = ".foundry.h5"
"""Suffix of the array file beside ``<preset>.h5``: ``<preset>.foundry.h5``."""

ARRAY_KEYS: dict[str, tuple[str, str, str]] = {
    "image_ids": ("input", "id of each image, UTF-8 bytes, shape (n_images,)", "none (text)"),
    "imgs": ("input", "STEM image a model sees, float32, shape (n_images, rows, cols)",
             "counts (arbitrary)"),
    "image_shapes": ("input", "(rows, cols) of each image, int64, shape (n_images, 2); "
                     "imgs and raw are NaN beyond it", "pixels"),
    "metadata": ("input", "per-image metadata, a record array of shape (n_images,) with "
                 "one field per metadata field (text as UTF-8 bytes, NaN = unknown)",
                 "per field, see description"),
    "raw": ("target", "noise-free image of the same scan, float32, shape "
            "(n_images, rows, cols), NaN where unknown", "counts (arbitrary)"),
    "coords": ("target", "atomic column positions, float64, shape (n_images, max_columns, 2) "
               "as (x = column, y = row), centre of the top-left pixel at (0, 0); rows beyond "
               "n_columns are NaN", "pixels"),
    "n_columns": ("target", "number of atomic columns in each image, int64, shape "
                  "(n_images,)", "columns"),
    "column_types": ("target", "column type label per column, bytes, shape "
                     "(n_images, max_columns), b'' padding", "none (labels)"),
    "column_elements": ("target", "element(s) in each column, e.g. Ti+O, bytes, shape "
                        "(n_images, max_columns), b'' padding", "none (labels)"),
    "faint_coords": ("target", "columns too faint to see in the noise-free image, scored as "
                     "don't care (neither a miss nor a false positive), float64, shape "
                     "(n_images, max_faint, 2) as (x, y); rows beyond n_faint are NaN",
                     "pixels"),
    "n_faint": ("target", "number of faint columns in each image, int64, shape (n_images,)",
                "columns"),
    "faint_types": ("target", "type label per faint column, bytes, shape "
                    "(n_images, max_faint), b'' padding", "none (labels)"),
}
"""Top-level array -> (Foundry key type, description, units), in the order keys are listed."""


def foundry_arrays_path(path: str | Path) -> Path:
    """Return the array file beside a dataset file: ``mini.h5`` -> ``mini.foundry.h5``."""
    path = Path(path)
    return path.with_name(path.stem + FOUNDRY_ARRAYS_SUFFIX)


def source_manifest_sha256(manifest: Manifest) -> str:
    """Return the SHA-256 of a manifest's JSON text (ties an array file to its source)."""
    return hashlib.sha256(manifest.to_json().encode()).hexdigest()


def _record_dtype(table: list[dict[str, Any]]) -> np.dtype:
    fields: list[tuple[str, Any]] = []
    for name, kind in METADATA_FIELDS.items():
        if kind is str:
            width = max([len(str(row.get(name, "")).encode()) for row in table] + [1])
            fields.append((name, f"S{width}"))
        else:
            fields.append((name, "<i8" if kind is int else "<f8"))
    return np.dtype(fields)


def _records(table: list[dict[str, Any]]) -> np.ndarray:
    dtype = _record_dtype(table)
    out = np.zeros(len(table), dtype=dtype)
    for index, row in enumerate(table):
        for name, kind in METADATA_FIELDS.items():
            value = row.get(name)
            if kind is str:
                out[name][index] = str("" if value is None else value).encode()
            elif value is None:
                out[name][index] = -1 if kind is int else np.nan
            else:
                out[name][index] = value
    return out


def _padded(images: list[np.ndarray | None], rows: int, cols: int) -> np.ndarray:
    out = np.full((len(images), rows, cols), np.nan, dtype=np.float32)
    for index, image in enumerate(images):
        if image is not None:
            out[index, : image.shape[0], : image.shape[1]] = image
    return out


def _padded_positions(per_image: list[np.ndarray], width: int) -> np.ndarray:
    out = np.full((len(per_image), width, 2), np.nan, dtype=np.float64)
    for index, positions in enumerate(per_image):
        out[index, : len(positions)] = positions
    return out


def _labels(per_image: list[tuple[str, ...]], width: int) -> np.ndarray:
    size = max([len(label.encode()) for labels in per_image for label in labels] + [1])
    out = np.zeros((len(per_image), width), dtype=f"S{size}")
    for index, labels in enumerate(per_image):
        out[index, : len(labels)] = [label.encode() for label in labels]
    return out


def _arrays(dataset: Dataset) -> dict[str, np.ndarray]:
    images = list(dataset)
    if not images:
        raise DatasetError(f"{dataset.path}: holds no images")
    shapes = np.array([image.image.shape for image in images], dtype=np.int64)
    rows, cols = (int(v) for v in shapes.max(axis=0))
    counts = np.array([len(image.coords) for image in images], dtype=np.int64)
    width = max(int(counts.max()), 1)
    coords = _padded_positions([image.coords for image in images], width)
    n_faint = np.array([len(image.faint_coords) for image in images], dtype=np.int64)
    faint_width = max(int(n_faint.max()), 1)
    elements = [tuple(str(e) for e in image.metadata.get("column_elements", ()))
                for image in images]
    return {
        "image_ids": np.array([image.image_id.encode() for image in images]),
        "imgs": _padded([image.image for image in images], rows, cols),
        "image_shapes": shapes,
        "metadata": _records([dataset.metadata(image.image_id) for image in images]),
        "raw": _padded([image.raw for image in images], rows, cols),
        "coords": coords,
        "n_columns": counts,
        "column_types": _labels([tuple(image.column_types) for image in images], width),
        "column_elements": _labels(elements, width),
        "faint_coords": _padded_positions([image.faint_coords for image in images],
                                          faint_width),
        "n_faint": n_faint,
        "faint_types": _labels([tuple(image.faint_types) for image in images], faint_width),
    }


def made_from(arrays: str | Path, source: str | Path) -> bool:
    """Return whether an array file and its sidecar exist and were made from ``source``."""
    arrays = Path(arrays)
    if not arrays.is_file() or not manifest_sidecar_path(arrays).is_file():
        return False
    try:
        params = read_manifest(arrays).generator_params
    except DatasetError:
        return False
    return bool(params.get("source_manifest_sha256")
                == source_manifest_sha256(read_manifest(source)))


def is_current(path: str | Path) -> bool:
    """Return whether the array file beside ``path`` exists and was made from this file."""
    return made_from(foundry_arrays_path(path), path)


def write_foundry_arrays(path: str | Path, *, destination: str | Path | None = None) -> Path:
    """Write the Foundry array file of a stembench dataset file, with its manifest.

    Parameters
    ----------
    path : str or Path
        A stembench dataset file (with a manifest); every array read is verified.
    destination : str or Path, optional
        Where to write; by default :func:`foundry_arrays_path` of ``path``. Written to a
        temporary file first, then renamed, with its ``.manifest.json`` beside it.

    Returns
    -------
    Path
        The array file.

    Raises
    ------
    DatasetError
        If ``path`` is not a stembench dataset (no manifest), is empty, or does not match
        its manifest.
    """
    import h5py

    path = Path(path)
    target = Path(destination) if destination is not None else foundry_arrays_path(path)
    dataset = open_dataset(path, verify=True)
    try:
        if not isinstance(dataset, Dataset):
            raise DatasetError(f"{path}: has no manifest; only stembench dataset files get a "
                               "Foundry array file")
        arrays = _arrays(dataset)
        source = dataset.manifest
    finally:
        dataset.close()
    manifest = Manifest(
        name=source.name, version=source.version, generator_version=source.generator_version,
        generator_params={"foundry_arrays_of": path.name,
                          "source_manifest_sha256": source_manifest_sha256(source)},
        arrays={f"/{key}": sha256_array(value) for key, value in arrays.items()},
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with AtomicPath(target) as tmp:
        with h5py.File(tmp, "w") as handle:
            for key, value in arrays.items():
                handle.create_dataset(key, data=value)
            handle.attrs[MANIFEST_ATTR] = manifest.to_json()
        atomic_write_text(manifest_sidecar_path(target), manifest.to_json() + "\n")
    return target
