"""Import a user's own labelled images: an image file plus a CSV of column positions.

Images are read from TIFF with tifffile, and from microscope formats (``.dm3``, ``.dm4``,
``.emd``, ``.ser``, ``.mrc``) with rosettasciio when it is installed. Positions come from
a CSV with a header holding ``x`` and ``y`` (pixels, x = column, y = row, centre of the
top-left pixel at (0, 0)) and an optional ``column_type`` column.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from stembench._version import __version__
from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.experimental.microscope import (
    MICROSCOPE_READERS,
    read_microscope_image,
    resolve_pixel_size,
)
from stembench.dataset_publish.storage.stembench_layout import DatasetWriter
from stembench.errors import InputError
from stembench.pixel_size import check_pixel_size
from stembench.validation import validate_image

__all__ = [
    "DUPLICATE_DISTANCE_PX",
    "IMAGE_SUFFIXES",
    "MICROSCOPE_FORMATS",
    "check_imported_labels",
    "import_dataset",
    "import_labelled_image",
    "read_image_file",
    "read_positions_csv",
]

MICROSCOPE_FORMATS: dict[str, str] = {
    suffix: module for suffix, module in MICROSCOPE_READERS.items()
    if suffix not in (".tif", ".tiff")
}
"""File suffixes read through rosettasciio, and the reader module of each."""

#: Image file suffixes ``dataset import`` reads (TIFF and the microscope formats).
IMAGE_SUFFIXES = (".tif", ".tiff", *MICROSCOPE_FORMATS)


def read_image_file(path: str | Path, *, signal: str | None = None,
                    frame: int | None = None) -> NDArray[np.float32]:
    """Read a 2D image from a TIFF or a microscope file.

    Parameters
    ----------
    path : str or Path
        ``.tif``/``.tiff`` (tifffile) or one of :data:`MICROSCOPE_FORMATS` (rosettasciio,
        through :func:`stembench.dataset_publish.experimental.microscope.read_microscope_image`).
    signal, frame : optional
        Which signal and frame of a microscope file (see ``read_microscope_image``).

    Returns
    -------
    ndarray, shape (rows, cols), float32
        Singleton axes are dropped.

    Raises
    ------
    InputError
        If the file is missing, of an unknown format, not 2D, or holds non-finite values.
    MissingExtraError
        If a microscope format needs rosettasciio and it is not installed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff", *MICROSCOPE_FORMATS) and path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes); expected a {suffix} image")
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            data: Any = tifffile.imread(path)
        except (tifffile.TiffFileError, ValueError, OSError, IndexError) as exc:
            raise InputError(f"{path}: not a readable TIFF image ({exc})") from exc
    elif suffix in MICROSCOPE_FORMATS:
        data = read_microscope_image(path, signal=signal, frame=frame).image
    else:
        missing = "" if MICROSCOPE_FORMATS else (
            " (microscope formats need the io extra: pip install 'stembench[io]')")
        raise InputError(f"{path}: unknown image format {suffix!r}; expected one of "
                         f"{list(IMAGE_SUFFIXES)}{missing}")
    image = np.squeeze(np.asarray(data))
    if image.size == 0:
        raise InputError(f"{path}: holds no pixels (shape {np.shape(data)}); expected a 2D "
                         "image")
    hint = " (a stack or colour image: extract one 2D frame first)"
    return validate_image(image, name=str(path), hint=hint).astype(np.float32)


def _parse_float(text: str, *, where: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {column}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {column}={text!r} is not finite")
    return value


def _confidence(text: str | None, *, where: str) -> str:
    value = (text or "").strip().lower()
    if value not in ("sure", "unsure"):
        raise InputError(f"{where}: confidence={text!r}; expected 'sure' or 'unsure'")
    return value


def read_positions_csv(
    path: str | Path, *, shape: tuple[int, int]
) -> tuple[NDArray[np.float64], tuple[str, ...]]:
    """Read labelled column positions from a CSV file.

    Parameters
    ----------
    path : str or Path
        CSV with a header holding ``x`` and ``y`` (pixels) and optionally ``column_type``
        and ``confidence`` (``sure``/``unsure``, as ``stembench label`` writes it); other
        columns are ignored. An ``unsure`` column gets the column type ``"unsure"``, which
        scoring treats as don't-care (:data:`stembench.scoring.DONT_CARE_TYPES`); without a
        ``column_type`` column the sure ones get ``"column"``.
    shape : tuple of int
        ``(rows, cols)`` of the image; every position must lie inside it, i.e.
        ``-0.5 <= x <= cols - 0.5`` and ``-0.5 <= y <= rows - 0.5``.

    Returns
    -------
    coords : ndarray, shape (N, 2)
        x, y in pixels.
    column_types : tuple of str
        One per position, or empty when the CSV has no ``column_type`` column.

    Raises
    ------
    InputError
        Naming the file and line: missing columns, no rows, a value that is not a
        finite number, a position outside the image, or two positions closer than
        :data:`DUPLICATE_DISTANCE_PX` (see :func:`check_imported_labels`).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such positions file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start});"
            " save the CSV as UTF-8") from None
    with io.StringIO(text, newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            return _read_rows(reader, path, shape)
        except csv.Error as exc:  # a field over the csv module's limit, a stray NUL byte
            raise InputError(f"{path}: not a readable CSV ({exc}); "
                             "expected rows of x,y pixel positions") from None


def _read_rows(reader: csv.DictReader[str], path: Path,
               shape: tuple[int, int]) -> tuple[NDArray[np.float64], tuple[str, ...]]:
    """The positions and column types of the rows of ``reader`` (see read_positions_csv)."""
    header = {name.strip().lower(): name for name in reader.fieldnames or []}
    missing = [name for name in ("x", "y") if name not in header]
    if missing:
        raise InputError(
            f"{path}: CSV lacks column(s) {missing}; header must hold x,y "
            f"(pixels) and optionally column_type; got {reader.fieldnames}"
        )
    type_key = header.get("column_type")
    confidence_key = header.get("confidence")
    positions: list[tuple[float, float]] = []
    types: list[str] = []
    for row in reader:
        where = f"{path}, line {reader.line_num}"
        positions.append((
            _parse_float(row[header["x"]] or "", where=where, column="x"),
            _parse_float(row[header["y"]] or "", where=where, column="y"),
        ))
        kind = (row[type_key] or "").strip() if type_key is not None else "column"
        if confidence_key is not None:
            if _confidence(row[confidence_key], where=where) == "unsure":
                kind = "unsure"
            types.append(kind)
        elif type_key is not None:
            types.append(kind)
    if not positions:
        raise InputError(f"{path}: CSV holds a header but no positions")
    coords = np.array(positions, dtype=np.float64)
    check_imported_labels(coords, shape=shape, where=str(path))
    return coords, tuple(types)


DUPLICATE_DISTANCE_PX = 0.5
"""Two imported labels closer than this (pixels) are one column labelled twice."""


def check_imported_labels(coords: NDArray[np.float64], *, shape: tuple[int, int],
                          where: str) -> None:
    """Refuse labels outside the image or duplicated within :data:`DUPLICATE_DISTANCE_PX`.

    A duplicated label halves a perfect detector's recall, and labels outside the image are
    never scored, so either would make a score silently wrong.

    Parameters
    ----------
    coords : ndarray, shape (N, 2)
        Labels, (x, y) pixels.
    shape : tuple of int
        ``(rows, cols)``; inside means ``-0.5 <= x <= cols - 0.5`` and the same for y.
    where : str
        File or image, for messages.

    Raises
    ------
    InputError
        Naming the first offending row (1-based) and how many there are.
    """
    rows, cols = shape
    outside = (
        (coords[:, 0] < -0.5) | (coords[:, 0] > cols - 0.5)
        | (coords[:, 1] < -0.5) | (coords[:, 1] > rows - 0.5)
    )
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise InputError(
            f"{where}: {int(outside.sum())} position(s) outside the {cols} x {rows} px image, "
            f"first at data row {first + 1}: x={coords[first, 0]}, y={coords[first, 1]}"
        )
    pairs = cKDTree(coords).query_pairs(DUPLICATE_DISTANCE_PX, output_type="ndarray")
    if len(pairs):
        i, j = (int(k) for k in pairs[np.lexsort(pairs.T[::-1])][0])
        raise InputError(
            f"{where}: {len(pairs)} pair(s) of labels closer than {DUPLICATE_DISTANCE_PX} px "
            f"(one column labelled twice?), first data rows {i + 1} and {j + 1}: "
            f"x,y={coords[i].tolist()} and {coords[j].tolist()}"
        )


def _atoms_per_100px(coords: NDArray[np.float64]) -> float:
    if len(coords) < 2:
        return math.nan
    distances, _ = cKDTree(coords).query(coords, k=2)
    spacing = float(np.median(distances[:, 1]))
    return 100.0 / spacing if spacing > 0 else math.nan


def import_labelled_image(
    image_path: str | Path,
    positions_csv: str | Path,
    *,
    pixel_size: float | None = None,
    signal: str | None = None,
    frame: int | None = None,
    image_id: str | None = None,
    material: str = "unknown",
    space_group: str = "",
    group: str = "generality",
    dose_e_per_A2: float = math.nan,
    probe_current_pA: float = math.nan,
    allow_unusual_pixel_size: bool = False,
) -> BenchmarkImage:
    """Build an experimental :class:`BenchmarkImage` from an image file and a positions CSV.

    Parameters
    ----------
    image_path : str or Path
        TIFF or microscope file (see :func:`read_image_file`).
    positions_csv : str or Path
        Column positions in pixels (see :func:`read_positions_csv`).
    pixel_size : float, optional
        Pixel size in angstrom per pixel; default: the file's own calibration (an error
        asks for it when the file has none).
    signal, frame : optional
        Which signal and frame of a microscope file to take (default: HAADF, frame 0).
    image_id : str, optional
        Defaults to the image file's stem.
    material, space_group, group : str
        Recorded in the metadata; ``group`` is the analysis group, e.g.
        ``"SrTiO3-experimental"``.
    dose_e_per_A2, probe_current_pA : float
        Acquisition conditions when known (NaN otherwise).
    allow_unusual_pixel_size : bool
        Accept a pixel size outside the physical range (see
        :func:`stembench.pixel_size.check_pixel_size`).

    Returns
    -------
    BenchmarkImage
        ``type`` and ``backend`` are ``"experimental"``, series ``"reference"``, step 0.
        ``raw`` is the image itself (the best image of its one-image series).
        ``contrast`` is (max - min) / max of the image; ``atoms_per_100px`` is 100 over the
        median nearest-neighbour distance of the labels in pixels; conditions that cannot
        be known from the files (resolution, PSNR, drift, fly-back) are NaN.

    Raises
    ------
    InputError
        For a bad or implausible pixel size, image or CSV (see the readers).
    """
    if pixel_size is None:
        found = read_microscope_image(image_path, signal=signal, frame=frame)
        image, pixel_size = found.image, resolve_pixel_size(found, None)
    else:
        image = read_image_file(image_path, signal=signal, frame=frame)
    pixel_size = check_pixel_size(pixel_size, where=str(image_path),
                                  allow_unusual=allow_unusual_pixel_size)
    coords, column_types = read_positions_csv(positions_csv, shape=image.shape)
    peak = float(image.max())
    metadata: dict[str, Any] = {
        "material": material,
        "type": "experimental",
        "space_group": space_group,
        "probe_current_pA": float(probe_current_pA),
        "peak_intensity_e": math.nan,
        "contrast": (peak - float(image.min())) / peak if peak > 0 else math.nan,
        "pixel_size_pm": float(pixel_size) * 100.0,
        "atoms_per_100px": _atoms_per_100px(coords),
        "resolution_pm": math.nan,
        "dose_e_per_A2": float(dose_e_per_A2),
        "psnr_db": math.nan,
        "drift": math.nan,
        "flyback": math.nan,
        "pixel_size_angstrom": float(pixel_size),
        "group": group,
        "series": "reference",
        "step": 0,
        "axis_value": math.nan,
        "seed": 0,
        "backend": "experimental",
        "generator_version": __version__,
        "source": f"{Path(image_path).name} + {Path(positions_csv).name}",
    }
    return BenchmarkImage(
        image_id=image_id or Path(image_path).stem,
        image=image,
        coords=coords,
        pixel_size=float(pixel_size),
        raw=image.copy(),
        column_types=column_types,
        metadata=metadata,
    )


def import_dataset(
    images: Iterable[BenchmarkImage],
    output: str | Path,
    *,
    name: str,
    version: str = "1",
    overwrite: bool = False,
) -> Path:
    """Write imported images to a stembench HDF5 dataset.

    Parameters
    ----------
    images : iterable of BenchmarkImage
        E.g. from :func:`import_labelled_image`.
    output : str or Path
        Target ``.h5`` file (written atomically, with its manifest).
    name, version : str
        Dataset name and version.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        ``output``.
    """
    output = Path(output)
    with DatasetWriter(
        output,
        name=name,
        version=version,
        generator_params={"importer": "stembench.dataset_publish.experimental.importer"},
        overwrite=overwrite,
    ) as writer:
        for image in images:
            check_imported_labels(image.coords, shape=image.shape,
                                  where=f"image {image.image_id!r}")
            writer.add(image)
    return output
