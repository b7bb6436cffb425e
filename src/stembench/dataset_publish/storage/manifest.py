"""The dataset manifest: name, version, generator parameters, a SHA-256 of every array and
of every image's metadata.

A stembench HDF5 file carries its manifest as a JSON string in the root attribute
``manifest``, and a copy beside the file as ``<file>.manifest.json``. Each array is hashed
over its dtype, its shape and its C-contiguous bytes, so the hash does not depend on how
HDF5 stores (chunks, compresses) the array. Each image's metadata (pixel size and every other
field scoring and analysis read) is hashed over a canonical JSON text of its fields
(:func:`sha256_metadata`). :meth:`Manifest.content_hash` condenses all of it into one hash:
the identity of what a score depends on.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from stembench.errors import DatasetError

__all__ = [
    "MANIFEST_ATTR",
    "Manifest",
    "manifest_sidecar_path",
    "read_manifest",
    "sha256_array",
    "sha256_metadata",
    "utc_timestamp",
    "verify_file",
]

MANIFEST_ATTR = "manifest"
"""Name of the root attribute that holds the manifest JSON."""


def utc_timestamp() -> str:
    """Return the current UTC time as an ISO 8601 string with seconds precision."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass
class Manifest:
    """What a dataset file holds, and the hash of every array in it.

    Attributes
    ----------
    name : str
        Dataset name, e.g. ``"atom-locating-benchmark"``.
    version : str
        Dataset version.
    generator_version : str
        Version of the code that generated the images.
    generator_params : dict
        JSON-safe parameters the generator ran with (preset, backend, seeds, ...).
    arrays : dict of str to str
        HDF5 path of every stored array (e.g. ``"/imgs/sto-ref-0"``) to its hex SHA-256
        from :func:`sha256_array`.
    metadata : dict of str to str
        Image id to the hex SHA-256 of its metadata from :func:`sha256_metadata` (empty in
        manifests written before dataset version 2.0.0).
    created : str
        ISO 8601 UTC time the file was written.
    """

    name: str
    version: str
    generator_version: str
    generator_params: dict[str, Any]
    arrays: dict[str, str] = field(default_factory=dict)
    created: str = field(default_factory=utc_timestamp)
    metadata: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """Return the manifest as a JSON string with sorted keys."""
        return json.dumps(asdict(self), sort_keys=True, indent=1, allow_nan=False)

    def content_hash(self) -> str:
        """One hex SHA-256 of everything a score depends on: name, version, every array's
        hash and every image's metadata hash (not the creation time).

        Two builds with equal content have equal hashes; changing any pixel, label, column
        type, faint label or metadata field (pixel size included) changes it.
        """
        content = {"name": self.name, "version": self.version, "arrays": self.arrays,
                   "metadata": self.metadata}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse a manifest written by :meth:`to_json`.

        Raises
        ------
        DatasetError
            If the text is not JSON or lacks a manifest field.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"manifest is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise DatasetError(f"manifest must be a JSON object, got {type(data).__name__}")
        expected = ("name", "version", "generator_version", "generator_params", "arrays", "created")
        missing = [key for key in expected if key not in data]
        if missing:
            raise DatasetError(f"manifest lacks field(s) {missing}")
        fields = {key: data[key] for key in expected}
        return cls(**fields, metadata=dict(data.get("metadata", {})))


def sha256_array(array: ArrayLike) -> str:
    """Return the hex SHA-256 of an array's dtype, shape and C-contiguous bytes.

    Parameters
    ----------
    array : array_like
        Any numpy-convertible array (numeric or fixed-length bytes).

    Returns
    -------
    str
        64 hex digits. Equal arrays of equal dtype and shape give equal hashes.
    """
    arr = np.ascontiguousarray(np.asarray(array))
    digest = hashlib.sha256()
    digest.update(f"{arr.dtype.str}|{arr.shape}|".encode())
    digest.update(arr.tobytes(order="C"))
    return digest.hexdigest()


def _canonical(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return repr(number) if not math.isfinite(number) else number
    return repr(value)


def sha256_metadata(metadata: Mapping[str, object]) -> str:
    """Return the hex SHA-256 of one image's metadata fields.

    The fields are written as JSON with sorted keys; numbers as numbers (NaN and infinities
    as their ``repr``), so values read back from HDF5 (numpy scalars) hash like the Python
    values that were written.
    """
    canonical = {str(k): _canonical(v) for k, v in metadata.items()}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def manifest_sidecar_path(path: str | Path) -> Path:
    """Return the path of the manifest copy beside a dataset file (``<file>.manifest.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".manifest.json")


def read_manifest(path: str | Path) -> Manifest:
    """Read the manifest stored in the root attributes of a dataset file.

    Raises
    ------
    DatasetError
        If the file cannot be read as HDF5 or holds no manifest.
    """
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as handle:
            text = handle.attrs.get(MANIFEST_ATTR)
    except (OSError, KeyError, RuntimeError) as exc:
        raise DatasetError(f"{path}: cannot be read as an HDF5 file ({exc})") from exc
    if text is None:
        raise DatasetError(f"{path}: holds no manifest (root attribute {MANIFEST_ATTR!r})")
    if isinstance(text, bytes):
        text = text.decode()
    try:
        return Manifest.from_json(str(text))
    except DatasetError as exc:
        raise DatasetError(f"{path}: {exc}") from exc


def verify_file(path: str | Path, *, manifest: Manifest | None = None) -> list[str]:
    """Hash every array of a dataset file and compare with its manifest.

    Parameters
    ----------
    path : str or Path
        The HDF5 dataset file.
    manifest : Manifest, optional
        The manifest to check against, e.g. one obtained from a trusted source. By
        default the manifest stored inside the file is used.

    Returns
    -------
    list of str
        HDF5 paths that do not match: arrays whose hash differs, arrays the manifest
        lists that the file lacks or cannot read, arrays the file holds that the
        manifest does not list, and ``/metadata/<id>`` for each image whose metadata
        differs from (or is missing in) the manifest. Empty when the file is intact.

    Raises
    ------
    DatasetError
        If the file cannot be opened as HDF5 or holds no manifest.
    """
    import h5py

    path = Path(path)
    if manifest is None:
        manifest = read_manifest(path)
    mismatches: list[str] = []
    try:
        with h5py.File(path, "r") as handle:
            stored: list[str] = []
            handle.visititems(
                lambda name, obj: stored.append("/" + name)
                if isinstance(obj, h5py.Dataset)
                else None
            )
            for array_path, expected in manifest.arrays.items():
                try:
                    actual = sha256_array(handle[array_path][()])
                except (OSError, KeyError, RuntimeError):
                    mismatches.append(array_path)
                    continue
                if actual != expected:
                    mismatches.append(array_path)
            mismatches.extend(p for p in stored if p not in manifest.arrays)
            groups = handle.get("metadata")
            if not isinstance(groups, h5py.Group):  # a Foundry array file: a record array
                groups = None
            ids = set(manifest.metadata) | (set(groups.keys()) if groups is not None else set())
            for image_id in sorted(ids):
                attrs = groups[image_id].attrs if groups is not None and image_id in groups else {}
                if manifest.metadata.get(image_id) != sha256_metadata(dict(attrs)):
                    mismatches.append(f"/metadata/{image_id}")
    except (OSError, RuntimeError) as exc:
        raise DatasetError(f"{path}: cannot be read as an HDF5 file ({exc})") from exc
    return mismatches
