"""The reading interface common to both HDF5 layouts, and the published-layout reader.

:class:`H5ImageSet` is what
:func:`stembench.dataset_publish.storage.stembench_layout.open_dataset` returns
for any file. :class:`PublishedDataset` reads the layout of the published benchmark
(Wei et al. 2023, ``wei_atom.h5``): groups ``imgs``, ``raw``, ``coords`` and ``metadata``
keyed by string ids, with the metadata either per id (attributes of ``/metadata/<id>``) or
as one table (a compound dataset, or a group of column datasets, with an id column).
Field names are mapped to stembench's (``"Pixel size (pm)"`` -> ``pixel_size_pm``). The
pixel size's unit is never guessed: the spacing of the labelled columns it implies must be a
physical projected column spacing (:data:`COLUMN_SPACING_RANGE_ANGSTROM`) in the declared unit
(pm, A or nm in the field's name), or, for a bare ``pixel_size``, in exactly one of them;
otherwise the image is refused with what was found. The published layout has no manifest:
arrays are not verified, :attr:`PublishedDataset.verify` is always ``False``, and its
``content_hash`` is the SHA-256 of the file's bytes.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.storage.manifest import Manifest
from stembench.errors import DatasetError, InputError
from stembench.pixel_size import UNIT_TO_ANGSTROM

__all__ = [
    "COLUMN_ELEMENTS_KEY",
    "COLUMN_SPACING_RANGE_ANGSTROM",
    "H5ImageSet",
    "PublishedDataset",
    "canonical_field_name",
    "is_published_layout",
    "pixel_size_angstrom",
]

COLUMN_ELEMENTS_KEY = "column_elements"
"""Metadata key whose per-column values are stored as ``/column_elements/<id>``."""

COLUMN_SPACING_RANGE_ANGSTROM = (0.8, 7.0)
"""Median nearest-neighbour spacing of labelled columns that a pixel size may imply, A."""

#: The units a published pixel size may be declared in (``pixel_size_pm``, ``_A``, ``_nm``).
_UNITS_ANGSTROM = {unit: UNIT_TO_ANGSTROM[unit.lower()] for unit in ("pm", "A", "nm")}


def _strings(array: np.ndarray) -> tuple[str, ...]:
    if array.dtype.kind == "S":
        return tuple(np.char.decode(array, "utf-8").tolist())
    return tuple(str(_plain(v)) for v in array)


def _plain(value: Any) -> Any:
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
            return {key: _plain(value) for key, value in attrs.items()}
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
            meta[COLUMN_ELEMENTS_KEY] = _strings(elements)
        return BenchmarkImage(
            image_id=image_id,
            image=image,
            coords=coords,
            pixel_size=float(pixel_size),
            raw=None if raw is None else raw.astype(np.float32),
            column_types=() if types is None else _strings(types),
            faint_coords=np.zeros((0, 2)) if faint is None else faint.astype(np.float64),
            faint_types=() if faint_types is None else _strings(faint_types),
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


_FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "material": ("material", "materialorientation", "sample", "materialandorientation"),
    "type": ("type", "datatype", "imagetype", "simulatedorexperimental"),
    "space_group": ("spacegroup", "spacegroupsymbol"),
    "probe_current_pA": ("probecurrentpa", "probecurrent", "currentpa"),
    "peak_intensity_e": ("peakintensitye", "peakintensity", "peakintensityelectrons"),
    "contrast": ("contrast",),
    "pixel_size_pm": ("pixelsizepm", "pixelsizeinpm"),
    "pixel_size_A": ("pixelsizea", "pixelsizeangstrom", "pixelsizeapx", "pixelsizeinangstrom"),
    "pixel_size_nm": ("pixelsizenm", "pixelsizeinnm"),
    "atoms_per_100px": ("atomsper100px", "atoms100px", "atomsper100pixels", "atomsper100pix"),
    "resolution_pm": ("resolutionpm", "resolution", "proberesolutionpm"),
    "dose_e_per_A2": ("doseepera2", "dosee2", "dose", "doseea2", "doseeangstrom2"),
    "psnr_db": ("psnrdb", "psnr", "poissonnoisepsnr", "poissonnoisepsnrdb", "noisepsnrdb"),
    "drift": ("drift", "randomdrift"),
    "flyback": ("flyback", "flybackerror"),
}
def _median_spacing_px(coords: np.ndarray) -> float:
    from scipy.spatial import cKDTree

    points = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    if len(points) < 2:
        return math.nan
    distances, _ = cKDTree(points).query(points, k=2)
    return float(np.median(distances[:, 1]))


def pixel_size_angstrom(value: Any, unit: str, coords: np.ndarray, *, where: str) -> float:
    """A published pixel size in A/px, its unit checked against the labelled columns.

    Parameters
    ----------
    value : number
        The stored pixel size.
    unit : {"pm", "A", "nm", "?"}
        The unit its field name declares; ``"?"`` for a bare ``pixel_size``.
    coords : ndarray, shape (N, 2)
        The image's labelled columns in pixels; their median nearest-neighbour spacing times
        the pixel size must fall in :data:`COLUMN_SPACING_RANGE_ANGSTROM`.
    where : str
        File and image, for messages.

    Raises
    ------
    DatasetError
        For a non-positive value, a declared unit the spacing contradicts, or a bare value
        that fits no unit or (with fewer than two labels) cannot be told.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) > 0:
        raise DatasetError(f"{where}: pixel size must be a positive number, got {value!r}")
    low, high = COLUMN_SPACING_RANGE_ANGSTROM
    spacing_px = _median_spacing_px(coords)
    implied = {u: spacing_px * float(value) * f for u, f in _UNITS_ANGSTROM.items()}
    fits = [u for u, d in implied.items() if low <= d <= high]
    found = ", ".join(f"{d:.3g} A as {u}" for u, d in implied.items())
    if unit != "?":
        if math.isfinite(spacing_px) and unit not in fits:
            raise DatasetError(
                f"{where}: pixel size {value} declared in {unit} gives a median column spacing "
                f"of {implied[unit]:.3g} A, outside the physical {low}-{high} A (spacing "
                f"{spacing_px:.3g} px; {found}); refusing rather than guessing"
            )
        return float(value) * _UNITS_ANGSTROM[unit]
    if not math.isfinite(spacing_px):
        raise DatasetError(
            f"{where}: bare pixel_size {value} with fewer than two labelled columns: its unit "
            "(pm, A or nm) cannot be checked; refusing rather than guessing"
        )
    if len(fits) != 1:
        what = "fits no unit" if not fits else f"is ambiguous ({' or '.join(fits)})"
        raise DatasetError(
            f"{where}: bare pixel_size {value} {what}: the labelled columns are {spacing_px:.3g} "
            f"px apart, i.e. {found}; physical spacings are {low}-{high} A"
        )
    return float(value) * _UNITS_ANGSTROM[fits[0]]


def is_published_layout(handle: Any) -> bool:
    """Whether an open HDF5 file has the published layout's own structure.

    Groups ``imgs`` and ``coords`` holding the same ids, each ``coords`` entry an (N, 2)
    array, and a ``metadata`` group or table.
    """
    import h5py

    imgs, coords = handle.get("imgs"), handle.get("coords")
    if not (isinstance(imgs, h5py.Group) and isinstance(coords, h5py.Group)):
        return False
    if "metadata" not in handle or set(imgs.keys()) != set(coords.keys()) or not len(imgs):
        return False
    first = coords[next(iter(coords.keys()))]
    return isinstance(first, h5py.Dataset) and first.ndim == 2 and first.shape[1] == 2


_ALIAS_TO_FIELD = {alias: name for name, aliases in _FIELD_ALIASES.items() for alias in aliases}
_ID_COLUMNS = ("id", "imageid", "imgid", "name", "key", "image", "imagename", "index")


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def canonical_field_name(name: str) -> str:
    """Map a published metadata field name to stembench's spelling.

    Known fields map to the names in ``docs/architecture.md`` (``"Pixel size (pm)"``,
    ``"pixel_size"`` -> ``"pixel_size_pm"``); any other name becomes lower snake case.
    """
    known = _ALIAS_TO_FIELD.get(_normalise(name))
    if known is not None:
        return known
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _canonical_record(record: dict[str, Any]) -> dict[str, Any]:
    return {canonical_field_name(k): _plain(v) for k, v in record.items()}


def _records_from_columns(columns: dict[str, np.ndarray], where: str) -> dict[str, dict]:
    id_key = next((k for k in columns if _normalise(k) in _ID_COLUMNS), None)
    if id_key is None:
        raise DatasetError(
            f"{where}: the metadata table has no id column (one of {list(_ID_COLUMNS)}); "
            f"columns: {sorted(columns)}"
        )
    ids = [str(_plain(v)) for v in columns[id_key]]
    return {
        image_id: {k: col[row] for k, col in columns.items() if k != id_key}
        for row, image_id in enumerate(ids)
    }


class PublishedDataset(H5ImageSet):
    """A file in the published ``wei_atom.h5`` layout; use ``open_dataset``.

    There is no manifest, so nothing is verified: :attr:`manifest` is ``None`` and
    :attr:`verify` is ``False``. Metadata fields get stembench's names, plus
    ``pixel_size_angstrom`` (from ``pixel_size_pm``), ``group`` (from material and type
    where the material is SrTiO3 or WS2, else ``"generality"``) and ``source`` (the file
    name). Numeric fields the file lacks are absent rather than invented.
    """

    def __init__(self, path: Path, handle: Any) -> None:
        super().__init__(path, handle)
        self.verify = False
        attrs = {k: _plain(v) for k, v in handle.attrs.items()}
        self.name = str(attrs.get("dataset_name", path.stem))
        self.version = str(attrs.get("dataset_version", "published"))
        self._table = self._read_table()
        self._content_hash: str | None = None

    def _read_table(self) -> dict[str, dict[str, Any]] | None:
        import h5py

        node = self._handle.get("metadata")
        where = f"{self.path}: /metadata"
        if node is None:
            return {}
        if isinstance(node, h5py.Dataset):
            data = node[()]
            if data.dtype.names is None:
                raise DatasetError(f"{where} is a dataset but not a table (dtype {data.dtype})")
            return _records_from_columns({n: data[n] for n in data.dtype.names}, where)
        if self.ids and self.ids[0] in node:
            return None
        columns = {k: v[()] for k, v in node.items() if isinstance(v, h5py.Dataset)}
        return _records_from_columns(columns, where) if columns else {}

    def _image_metadata(self, image_id: str) -> dict[str, Any]:
        if self._table is None:
            entry = self._handle["metadata"].get(image_id)
            record = self._group_attrs(image_id) if entry is not None else {}
            if entry is not None and hasattr(entry, "dtype") and entry.dtype.names:
                row = np.atleast_1d(entry[()])[0]
                record.update({n: row[n] for n in entry.dtype.names})
        else:
            record = dict(self._table.get(image_id, {}))
        meta = _canonical_record(record)
        declared = [(unit, meta.pop(f"pixel_size_{unit}")) for unit in ("pm", "A", "nm")
                    if f"pixel_size_{unit}" in meta]
        if "pixel_size" in meta:
            declared.append(("?", meta.pop("pixel_size")))
        if declared:
            coords = self._read_array(image_id, f"/coords/{image_id}")
            where = f"{self.path}: image {image_id!r}"
            unit, value = declared[0]
            meta["pixel_size_angstrom"] = pixel_size_angstrom(value, unit, coords, where=where)
            meta["pixel_size_pm"] = meta["pixel_size_angstrom"] * 100.0
        material = str(meta.get("material", ""))
        kind = str(meta.get("type", "")).lower()
        known = next((m for m in ("SrTiO3", "WS2") if m.lower() in material.lower()), None)
        meta["group"] = f"{known}-{kind}" if known and kind else "generality"
        meta["source"] = self.path.name
        return meta

    @property
    def content_hash(self) -> str:
        """SHA-256 of the file's bytes (the published layout has no manifest)."""
        if self._content_hash is None:
            digest = hashlib.sha256()
            with self.path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            self._content_hash = digest.hexdigest()
        return self._content_hash

    def __repr__(self) -> str:
        return (
            f"<stembench PublishedDataset {self.name!r}: {len(self)} images, published layout, "
            f"no manifest (arrays not verified), {self.path}>"
        )
