"""Verify a dataset file before it is used, once per content: what evaluate, run, the service
and the endpoint call before a single image is read.

:func:`verify_dataset_file` makes the check ``stembench dataset check`` and
:func:`~stembench.dataset_publish.storage.manifest.verify_file` make (every array and every
image's metadata hashed and compared with the manifest, the manifest compared with its
sidecar) and checks that every image's pixel size lies in
:data:`~stembench.pixel_size.PIXEL_SIZE_RANGE_ANGSTROM`. A file that passes is recorded in
``<cache>/verified/`` under its content hash together with the file's device, inode, size,
modification and change times; the next call finds the record and does not hash the file
again. Any write to the file changes its change time (which no user can set back), so a
modified file is always hashed again.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
from pathlib import Path

from stembench.atomic import atomic_write_text
from stembench.dataset_publish.storage.cache_dir import default_cache_dir
from stembench.dataset_publish.storage.manifest import verify_file
from stembench.dataset_publish.storage.published import H5ImageSet
from stembench.dataset_publish.storage.stembench_layout import Dataset, open_dataset
from stembench.errors import DatasetError, IntegrityError
from stembench.pixel_size import PIXEL_SIZE_RANGE_ANGSTROM

__all__ = ["check_dataset_pixel_sizes", "verify_dataset_file"]

#: Mismatching paths named in a refusal (the count says how many there are in all).
_SHOWN = 3


def _stamp(path: Path) -> list[int]:
    stat = os.stat(path)
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def _record_path(cache_dir: Path, content_hash: str, path: Path) -> Path:
    key = hashlib.sha256(f"{content_hash}|{path.resolve()}".encode()).hexdigest()
    return cache_dir / "verified" / f"{key}.json"


def _recorded(record: Path, stamp: list[int]) -> bool:
    try:
        return bool(json.loads(record.read_text(encoding="utf-8")).get("stamp") == stamp)
    except (OSError, ValueError, AttributeError):
        return False


def _record(record: Path, stamp: list[int], content_hash: str) -> None:
    """Write the record atomically; a cache that cannot be written only costs a re-hash."""
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(record, json.dumps({"stamp": stamp, "content_hash": content_hash}))
    except OSError:
        pass


def check_dataset_pixel_sizes(dataset: H5ImageSet) -> None:
    """Refuse a dataset with an image whose pixel size is not a number in the documented range.

    Raises
    ------
    DatasetError
        Naming the file, the first such image, its value and the range (A/px).
    """
    low, high = PIXEL_SIZE_RANGE_ANGSTROM
    for row in dataset.metadata_table():
        value = row.get("pixel_size_angstrom")
        number = float(value) if isinstance(value, numbers.Real) and \
            not isinstance(value, bool) else math.nan
        usable = math.isfinite(number) and low <= number <= high
        if not usable:
            raise DatasetError(
                f"{dataset.path}: image {row['image_id']!r}: pixel size "
                f"(pixel_size_angstrom) {value!r} A/px is outside the documented range "
                f"{low:g}-{high:g} A/px; refused")


def _mismatch_line(path: Path, mismatches: list[str]) -> str:
    shown = ", ".join(mismatches[:_SHOWN])
    more = f" and {len(mismatches) - _SHOWN} more" if len(mismatches) > _SHOWN else ""
    return (f"{path}: does not match its manifest: {len(mismatches)} array(s) or metadata "
            f"differ ({shown}{more}); refused (the file was modified or corrupted: rebuild or "
            "download it again)")


def verify_dataset_file(path: str | os.PathLike[str], *, cache_dir: Path | None = None) -> str:
    """Verify a dataset file against its manifest and its pixel sizes; return its content hash.

    Parameters
    ----------
    path : path-like
        A stembench dataset file (or one in the published layout, which has no manifest:
        only its pixel sizes are checked).
    cache_dir : Path, optional
        Where verification records are kept (``<cache_dir>/verified/``); by default the
        dataset cache (:func:`~stembench.dataset_publish.storage.cache_dir.default_cache_dir`).

    Returns
    -------
    str
        The dataset's content hash (``Dataset.content_hash``).

    Raises
    ------
    IntegrityError
        In one line naming the differing arrays or metadata (and how many there are), when
        the file does not match its manifest, or its manifest disagrees with its sidecar.
    DatasetError
        If the file cannot be read as a dataset, or an image's pixel size is not a number in
        :data:`~stembench.pixel_size.PIXEL_SIZE_RANGE_ANGSTROM`.
    """
    path = Path(path)
    with open_dataset(path, verify=False) as dataset:
        content_hash = dataset.content_hash
        if not isinstance(dataset, Dataset):  # the published layout: nothing to compare with
            check_dataset_pixel_sizes(dataset)
            return content_hash
        try:
            stamp = _stamp(path)
        except OSError as exc:
            raise DatasetError(f"{path}: cannot be read: {exc}") from exc
        record = _record_path(cache_dir or default_cache_dir(), content_hash, path)
        if _recorded(record, stamp):
            return content_hash
        mismatches = verify_file(path, manifest=dataset.manifest)
        if mismatches:
            raise IntegrityError(_mismatch_line(path, mismatches))
        check_dataset_pixel_sizes(dataset)
    if _stamp(path) == stamp:  # unchanged while it was hashed
        _record(record, stamp, content_hash)
    return content_hash
