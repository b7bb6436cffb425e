"""The published-layout reader.

:class:`PublishedDataset` (an :class:`~stembench.dataset_publish.storage.image_set.H5ImageSet`,
the reading interface common to both HDF5 layouts) reads the layout of the published benchmark
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
from pathlib import Path
from typing import Any

import numpy as np

from stembench.dataset_publish.storage.image_set import (
    COLUMN_ELEMENTS_KEY,
    H5ImageSet,
    plain,
)
from stembench.errors import DatasetError
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

COLUMN_SPACING_RANGE_ANGSTROM = (0.8, 7.0)
"""Median nearest-neighbour spacing of labelled columns that a pixel size may imply, A."""

#: The units a published pixel size may be declared in (``pixel_size_pm``, ``_A``, ``_nm``).
_UNITS_ANGSTROM = {unit: UNIT_TO_ANGSTROM[unit.lower()] for unit in ("pm", "A", "nm")}


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
    return {canonical_field_name(k): plain(v) for k, v in record.items()}


def _records_from_columns(columns: dict[str, np.ndarray], where: str) -> dict[str, dict]:
    id_key = next((k for k in columns if _normalise(k) in _ID_COLUMNS), None)
    if id_key is None:
        raise DatasetError(
            f"{where}: the metadata table has no id column (one of {list(_ID_COLUMNS)}); "
            f"columns: {sorted(columns)}"
        )
    ids = [str(plain(v)) for v in columns[id_key]]
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
        attrs = {k: plain(v) for k, v in handle.attrs.items()}
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
