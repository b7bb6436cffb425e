"""Write and read benchmark datasets in the stembench HDF5 layout.

Layout (a superset of the published ``wei_atom.h5``; see ``docs/architecture.md``)::

    /imgs/<id>            float32 (rows, cols)   the image a model sees
    /raw/<id>             float32 (rows, cols)   noise-free image (absent when unknown)
    /coords/<id>          float64 (N, 2)         x, y pixels of the visible columns
    /column_types/<id>    bytes   (N,)           column type per column
    /column_elements/<id> bytes   (N,)           element(s) in each column, e.g. b"Ti+O"
    /faint_coords/<id>    float64 (M, 2)         x, y pixels of the faint columns ("don't care")
    /faint_types/<id>     bytes   (M,)           column type per faint column
    /metadata/<id>        group whose attrs are the per-image metadata fields
    / (root attrs)        dataset_name, dataset_version, generator_version, manifest

The manifest hashes every array and every image's metadata. A file that carries stembench's
marks (its root attributes, its per-column groups or a sidecar manifest) but no manifest, or
whose manifest disagrees with its sidecar, is refused: it is never read as the published
layout, which is recognised by its own structure (:func:`is_published_layout`).

The per-column elements travel in ``BenchmarkImage.metadata["column_elements"]`` (a
sequence of str, one per column); they are stored as the array above, not as an attribute.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from stembench.atomic import AtomicPath, atomic_write_text
from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.storage.manifest import (
    MANIFEST_ATTR,
    Manifest,
    manifest_sidecar_path,
    sha256_array,
    sha256_metadata,
)
from stembench.dataset_publish.storage.metadata import (
    METADATA_FIELDS,
    validate_image_id,
    validate_metadata,
)
from stembench.dataset_publish.storage.published import (
    COLUMN_ELEMENTS_KEY,
    H5ImageSet,
    PublishedDataset,
    is_published_layout,
)
from stembench.errors import DatasetError, InputError, IntegrityError

__all__ = [
    "COLUMN_ELEMENTS_KEY",
    "METADATA_FIELDS",
    "Dataset",
    "DatasetWriter",
    "open_dataset",
    "validate_metadata",
]

class DatasetWriter:
    """Write benchmark images to a stembench HDF5 file, atomically.

    The file is written beside ``path`` under a temporary name and renamed to ``path``
    only when the ``with`` block ends without an exception; otherwise the temporary file
    is deleted and nothing appears under ``path``.

    Parameters
    ----------
    path : str or Path
        Target ``.h5`` file.
    name, version : str
        Dataset name and version, stored in the root attributes and the manifest.
    generator_params : dict
        JSON-safe parameters of the generator run, stored in the manifest.
    generator_version : str, optional
        Version of the generating code. By default the images' ``generator_version``
        metadata (several distinct values are joined with ``","``).
    overwrite : bool
        Replace an existing file at ``path``; otherwise an existing file is an error.

    Examples
    --------
    >>> with DatasetWriter(path, name="demo", version="1", generator_params={}) as writer:
    ...     writer.add(image)  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str,
        version: str,
        generator_params: dict[str, Any],
        generator_version: str | None = None,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise DatasetError(f"{self.path} is a folder; expected the path of a dataset file "
                               f"to write, e.g. {self.path / 'dataset.h5'}")
        if self.path.exists() and not overwrite:
            raise DatasetError(f"{self.path} already exists; use --overwrite (overwrite=True in "
                               "Python) to replace it")
        if not self.path.parent.is_dir():
            raise DatasetError(f"{self.path}: directory {self.path.parent} does not exist")
        try:
            json.dumps(generator_params, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"{self.path}: generator_params must be JSON-safe (str, numbers, lists, dicts; "
                f"no NaN): {exc}"
            ) from exc
        self._manifest = Manifest(
            name=name,
            version=version,
            generator_version=generator_version or "",
            generator_params=dict(generator_params),
        )
        self._explicit_generator_version = generator_version is not None
        self._generator_versions: list[str] = []
        self._overwrite = overwrite
        self._ids: set[str] = set()
        self._file = AtomicPath(self.path)
        self._handle: Any = None

    def __enter__(self) -> DatasetWriter:
        import h5py

        self._handle = h5py.File(self._file.temporary, "w")
        for group in ("imgs", "raw", "coords", "column_types", "column_elements", "faint_coords",
                      "faint_types", "metadata"):
            self._handle.create_group(group, track_order=True)
        return self

    def _store(self, array_path: str, array: np.ndarray) -> None:
        self._handle.create_dataset(array_path, data=array)
        self._manifest.arrays[array_path] = sha256_array(array)

    def add(self, image: BenchmarkImage) -> None:
        """Store one image, its labels and metadata.

        Raises
        ------
        InputError
            If the id is empty, contains ``/``, or was already added, or the metadata is
            incomplete or inconsistent (see :func:`validate_metadata`).
        """
        if self._handle is None:
            raise DatasetError("DatasetWriter.add called outside its 'with' block")
        validate_image_id(image.image_id)
        if image.image_id in self._ids:
            raise InputError(f"image id {image.image_id!r} was already added to {self.path}")
        meta = validate_metadata(image)
        elements = image.metadata.get(COLUMN_ELEMENTS_KEY)
        if elements is not None and len(elements) != len(image.coords):
            raise InputError(
                f"image {image.image_id!r}: {len(elements)} column elements for "
                f"{len(image.coords)} columns"
            )
        key = image.image_id
        self._store(f"/imgs/{key}", np.asarray(image.image, dtype=np.float32))
        if image.raw is not None:
            if image.raw.shape != image.image.shape:
                raise InputError(
                    f"image {key!r}: raw image shape {image.raw.shape} differs from image "
                    f"shape {image.image.shape}"
                )
            self._store(f"/raw/{key}", np.asarray(image.raw, dtype=np.float32))
        self._store(f"/coords/{key}", np.asarray(image.coords, dtype=np.float64))
        if image.column_types:
            self._store(f"/column_types/{key}", np.array(image.column_types, dtype=np.bytes_))
        if elements is not None:
            self._store(f"/column_elements/{key}", np.array(list(elements), dtype=np.bytes_))
        if len(image.faint_coords):
            self._store(f"/faint_coords/{key}", np.asarray(image.faint_coords, np.float64))
        if image.faint_types:
            self._store(f"/faint_types/{key}", np.array(image.faint_types, dtype=np.bytes_))
        group = self._handle["metadata"].create_group(key)
        for field_name, value in meta.items():
            group.attrs[field_name] = value
        self._manifest.metadata[key] = sha256_metadata(dict(group.attrs))
        self._ids.add(key)
        self._generator_versions.append(meta["generator_version"])

    def _finish(self) -> None:
        if not self._explicit_generator_version:
            versions = sorted(set(self._generator_versions))
            self._manifest.generator_version = ",".join(versions)
        manifest_json = self._manifest.to_json()
        attrs = self._handle.attrs
        attrs["dataset_name"] = self._manifest.name
        attrs["dataset_version"] = self._manifest.version
        attrs["generator_version"] = self._manifest.generator_version
        attrs[MANIFEST_ATTR] = manifest_json
        self._handle.close()
        self._handle = None
        if self.path.exists() and not self._overwrite:
            raise DatasetError(f"{self.path} appeared while writing; not replacing it")
        self._file.commit()
        atomic_write_text(manifest_sidecar_path(self.path), manifest_json + "\n")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self._finish()
        finally:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
            self._file.discard()

    @property
    def manifest(self) -> Manifest:
        """The manifest as built so far (complete after the ``with`` block)."""
        return self._manifest


class Dataset(H5ImageSet):
    """A stembench HDF5 dataset opened for reading; use :func:`open_dataset`.

    Reading an image with ``verify=True`` hashes its arrays and its metadata and compares
    them with the manifest, raising :class:`~stembench.errors.IntegrityError` on a mismatch.
    """

    def __init__(self, path: Path, handle: Any, manifest: Manifest, *, verify: bool) -> None:
        super().__init__(path, handle)
        self._manifest = manifest
        self.verify = verify
        self.name = manifest.name
        self.version = manifest.version

    @property
    def manifest(self) -> Manifest:
        """The manifest stored in the file."""
        return self._manifest

    def _read_array(self, image_id: str, array_path: str) -> np.ndarray:
        array = super()._read_array(image_id, array_path)
        if self.verify:
            expected = self._manifest.arrays.get(array_path)
            if expected is None:
                raise IntegrityError(
                    f"{self.path}: image {image_id!r}: array {array_path} is not listed in "
                    "the manifest"
                )
            if sha256_array(array) != expected:
                raise IntegrityError(
                    f"{self.path}: image {image_id!r}: array {array_path} does not match "
                    "its SHA-256 in the manifest (the file was modified or corrupted)"
                )
        return array

    @property
    def content_hash(self) -> str:
        """The manifest's :meth:`~stembench.dataset_publish.storage.manifest.Manifest.content_hash`:
        one SHA-256 over every array's and every image's metadata hash."""
        return self._manifest.content_hash()

    def _image_metadata(self, image_id: str) -> dict[str, Any]:
        meta = self._group_attrs(image_id)
        if self.verify:
            expected = self._manifest.metadata.get(image_id)
            if expected is None:
                raise IntegrityError(
                    f"{self.path}: image {image_id!r}: its metadata is not hashed in the "
                    f"manifest (a file written before dataset version 2.0.0?); rebuild it, or "
                    "open it with verify=False to read it unverified"
                )
            if sha256_metadata(meta) != expected:
                raise IntegrityError(
                    f"{self.path}: image {image_id!r}: metadata does not match its SHA-256 in "
                    "the manifest (pixel size or another field was modified)"
                )
        return meta

    def __repr__(self) -> str:
        check = "verified on read" if self.verify else "not verified"
        return (
            f"<stembench Dataset {self.name!r} version {self.version!r}: {len(self)} images, "
            f"{check}, {self.path}>"
        )


def _open_h5(path: Path) -> Any:
    import h5py

    if path.is_dir():
        raise DatasetError(f"{path}: is a folder; expected a dataset file (.h5)")
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    try:
        return h5py.File(path, "r")
    except (OSError, RuntimeError) as exc:
        raise DatasetError(
            f"{path}: not a readable HDF5 file (truncated or not HDF5?): {exc}"
        ) from exc


_STEMBENCH_ROOT_ATTRS = ("dataset_name", "dataset_version", "generator_version")
_STEMBENCH_GROUPS = ("column_types", "column_elements", "faint_coords", "faint_types")


def _stembench_marks(path: Path, handle: Any) -> list[str]:
    """What in a file without a manifest says it was written by stembench."""
    marks = [f"root attribute {a!r}" for a in _STEMBENCH_ROOT_ATTRS if a in handle.attrs]
    marks += [f"group {g!r}" for g in _STEMBENCH_GROUPS if g in handle]
    if manifest_sidecar_path(path).exists():
        marks.append(f"sidecar {manifest_sidecar_path(path).name}")
    return marks


def _manifest_of(path: Path, text: Any) -> Manifest:
    """The manifest in the file, checked against its sidecar when there is one."""
    manifest = Manifest.from_json(text.decode() if isinstance(text, bytes) else str(text))
    sidecar = manifest_sidecar_path(path)
    if sidecar.exists():
        try:
            beside = Manifest.from_json(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, DatasetError) as exc:
            raise IntegrityError(f"{path}: sidecar {sidecar.name} cannot be read: {exc}") from exc
        if beside != manifest:
            raise IntegrityError(
                f"{path}: the manifest in the file disagrees with its sidecar {sidecar.name} "
                f"(content hash {manifest.content_hash()[:12]} vs "
                f"{beside.content_hash()[:12]}); one of them was modified"
            )
    return manifest


def open_dataset(path: str | Path, *, verify: bool = True) -> H5ImageSet:
    """Open a dataset file in the stembench layout or the published ``wei_atom.h5`` layout.

    Parameters
    ----------
    path : str or Path
        The HDF5 file.
    verify : bool
        Check every array and every image's metadata read against the manifest's SHA-256
        (stembench layout only; the published layout has no manifest).

    Returns
    -------
    Dataset or PublishedDataset
        Both offer ``ids``, ``len``, iteration, ``[image_id]``, ``metadata``,
        ``metadata_table``, ``select``, ``content_hash`` and ``close``.

    Raises
    ------
    DatasetError
        If the file is missing, not HDF5, truncated, or in neither layout.
    IntegrityError
        If a stembench file lacks its manifest, or its manifest disagrees with its sidecar.
    """
    path = Path(path)
    handle = _open_h5(path)
    try:
        text = handle.attrs.get(MANIFEST_ATTR)
        if text is not None:
            return Dataset(path, handle, _manifest_of(path, text), verify=verify)
        marks = _stembench_marks(path, handle)
        if marks:
            raise IntegrityError(
                f"{path}: a stembench file (it has {', '.join(marks)}) without its root "
                f"attribute {MANIFEST_ATTR!r}: refused, since nothing in it can be verified"
            )
        if is_published_layout(handle):
            return PublishedDataset(path, handle)
        raise DatasetError(
            f"{path}: neither a stembench dataset (no root attribute {MANIFEST_ATTR!r}) nor "
            f"the published layout (groups 'imgs' and 'coords' of (N, 2) arrays, and "
            f"'metadata' with a pixel size); top-level keys: {sorted(handle.keys())}"
        )
    except DatasetError as exc:
        handle.close()
        if str(path) not in str(exc):
            raise type(exc)(f"{path}: {exc}") from exc
        raise
    except (OSError, RuntimeError, KeyError) as exc:
        handle.close()
        raise DatasetError(f"{path}: cannot be read (truncated or corrupted?): {exc}") from exc
