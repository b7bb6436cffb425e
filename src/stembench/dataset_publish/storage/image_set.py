"""The reading interface common to both HDF5 layouts.

:class:`H5ImageSet` is what :func:`stembench.dataset_publish.storage.stembench_layout.open_dataset`
returns for any file: the stembench layout's
:class:`~stembench.dataset_publish.storage.stembench_layout.Dataset` and the published layout's
:class:`~stembench.dataset_publish.storage.published.PublishedDataset`.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.storage.manifest import Manifest
from stembench.errors import DatasetError, InputError

__all__ = ["COLUMN_ELEMENTS_KEY", "H5ImageSet", "plain", "strings"]

COLUMN_ELEMENTS_KEY = "column_elements"
"""Metadata key whose per-column values are stored as ``/column_elements/<id>``."""


def strings(array: np.ndarray) -> tuple[str, ...]:
    """The values of an HDF5 string array (UTF-8 bytes or objects) as Python strings."""
    if array.dtype.kind == "S":
        return tuple(np.char.decode(array, "utf-8").tolist())
    return tuple(str(plain(v)) for v in array)


def plain(value: Any) -> Any:
    """A value read from HDF5 as plain Python: bytes decoded, numpy scalars as Python ones."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


class H5ImageSet(ABC):
    """What every opened dataset offers, whichever HDF5 layout it was read from.

    Attributes
    ----------
    path : Path
        The file.
    name, version : str
        Dataset name and version.
    ids : list of str
        Image ids in the order the file stores them.
    verify : bool
        Whether arrays are checked against a manifest when read.
    provenance : dict
        Where :func:`stembench.load` got the file: ``origin`` (``"mdf"``, ``"built"``,
        ``"foundry-cache"``, ``"file"``) and, where MDF was asked, ``mdf_service``,
        ``mdf_api_url``, ``mdf_source_id``, ``mdf_not_used`` (why not) and
        ``mdf_refused`` (a published copy refused for integrity). Empty when opened directly.
    """

    name: str
    version: str
    verify: bool

    def __init__(self, path: Path, handle: Any) -> None:
        self.path = path
        self._handle = handle
        self.provenance: dict[str, Any] = {}
        self._metadata_cache: dict[str, dict[str, Any]] = {}
        self.ids: list[str] = list(handle["imgs"].keys())
        missing = [i for i in self.ids if i not in handle["coords"]]
        if missing:
            raise DatasetError(
                f"{path}: {len(missing)} image(s) have no /coords entry, e.g. {missing[:3]}"
            )

    @property
    def manifest(self) -> Manifest | None:
        """The manifest, or ``None`` for layouts that have none."""
        return None

    @property
    @abstractmethod
    def content_hash(self) -> str:
        """One SHA-256 identifying everything a score depends on (arrays and metadata)."""

    def _image_metadata(self, image_id: str) -> dict[str, Any]:
        return self._group_attrs(image_id)

    def _check_id(self, image_id: str) -> None:
        if image_id not in self._handle["imgs"]:
            raise KeyError(
                f"{self.path}: no image {image_id!r}; {len(self.ids)} images, e.g. {self.ids[:5]}"
            )

    def _read_array(self, image_id: str, array_path: str) -> np.ndarray:
        try:
            return np.asarray(self._handle[array_path][()])
        except (OSError, RuntimeError, KeyError) as exc:
            raise DatasetError(
                f"{self.path}: image {image_id!r}: array {array_path} cannot be read "
                f"(truncated or corrupted file?): {exc}"
            ) from exc

    def _group_attrs(self, image_id: str) -> dict[str, Any]:
        try:
            attrs = self._handle["metadata"][image_id].attrs
            return {key: plain(value) for key, value in attrs.items()}
        except (OSError, RuntimeError, KeyError) as exc:
            raise DatasetError(
                f"{self.path}: image {image_id!r}: metadata cannot be read: {exc}"
            ) from exc

    def _optional_array(self, image_id: str, group: str) -> np.ndarray | None:
        if group in self._handle and image_id in self._handle[group]:
            return self._read_array(image_id, f"/{group}/{image_id}")
        return None

    def metadata(self, image_id: str) -> dict[str, Any]:
        """Return the metadata of one image without reading its pixels.

        Raises
        ------
        KeyError
            If the id is unknown; the message lists a few valid ids.
        """
        self._check_id(image_id)
        return self._cached_metadata(image_id)

    def _cached_metadata(self, image_id: str) -> dict[str, Any]:
        if image_id not in self._metadata_cache:
            self._metadata_cache[image_id] = self._image_metadata(image_id)
        return dict(self._metadata_cache[image_id])

    def metadata_table(self) -> list[dict[str, Any]]:
        """Return every image's metadata, each with its ``image_id``, in :attr:`ids` order."""
        return [{"image_id": i, **self._cached_metadata(i)} for i in self.ids]

    def select(self, **field_equals: Any) -> list[str]:
        """Return the ids of images whose metadata equals every given field value.

        Examples
        --------
        >>> dataset.select(series="noise", material="WS2")  # doctest: +SKIP

        Raises
        ------
        InputError
            If a field is in no image's metadata.
        """
        table = self.metadata_table()
        known: set[str] = set().union(*(row.keys() for row in table)) if table else set()
        unknown = sorted(set(field_equals) - known)
        if unknown:
            raise InputError(
                f"{self.path}: unknown metadata field(s) {unknown}; known: {sorted(known)}"
            )
        wanted = field_equals.items()
        return [row["image_id"] for row in table if all(row.get(k) == v for k, v in wanted)]

    def __getitem__(self, image_id: str) -> BenchmarkImage:
        self._check_id(image_id)
        meta = self._cached_metadata(image_id)
        pixel_size = meta.get("pixel_size_angstrom", math.nan)
        if not isinstance(pixel_size, numbers.Real) or not math.isfinite(pixel_size):
            raise DatasetError(
                f"{self.path}: image {image_id!r}: metadata has no usable pixel size "
                f"(pixel_size_angstrom={pixel_size!r})"
            )
        image = self._read_array(image_id, f"/imgs/{image_id}").astype(np.float32)
        raw = self._optional_array(image_id, "raw")
        coords = self._read_array(image_id, f"/coords/{image_id}").astype(np.float64)
        types = self._optional_array(image_id, "column_types")
        elements = self._optional_array(image_id, "column_elements")
        faint = self._optional_array(image_id, "faint_coords")
        faint_types = self._optional_array(image_id, "faint_types")
        if elements is not None:
            meta[COLUMN_ELEMENTS_KEY] = strings(elements)
        return BenchmarkImage(
            image_id=image_id,
            image=image,
            coords=coords,
            pixel_size=float(pixel_size),
            raw=None if raw is None else raw.astype(np.float32),
            column_types=() if types is None else strings(types),
            faint_coords=np.zeros((0, 2)) if faint is None else faint.astype(np.float64),
            faint_types=() if faint_types is None else strings(faint_types),
            metadata=meta,
        )

    def __contains__(self, image_id: object) -> bool:
        return isinstance(image_id, str) and image_id in self._handle["imgs"]

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[BenchmarkImage]:
        for image_id in self.ids:
            yield self[image_id]

    def close(self) -> None:
        """Close the HDF5 file."""
        self._handle.close()

    def __enter__(self) -> H5ImageSet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
