"""Read what microscopes write: one 2D image and its pixel size from a microscope file.

Formats are read through rosettasciio (the ``io`` extra), with the suffixes and reader
modules of its own plugin table (``rsciio.IO_PLUGINS``) for the plugins of
:data:`MICROSCOPE_PLUGINS`: Gatan ``.dm3``/``.dm4``, ``.emd`` (Thermo Fisher Velox and
Berkeley/NCEM), TIA ``.ser``/``.emi``, HyperSpy ``.hspy`` (and its older ``.hdf5``),
``.mrc`` and TIFF (``.tif``/``.tiff``, whose DM, ImageJ and vendor calibrations rosettasciio
understands). Without rosettasciio a TIFF is still read, with tifffile, but carries no
calibration.

The pixel size comes from the scale of the two signal axes, converted to angstrom from
their unit (``m``, ``mm``, ``um``/``µm``, ``nm``, ``pm``, ``A``/``Å``). An axis without a
spatial unit (``1/nm``, ``mrad``, ``<undefined>``, none), a non-positive scale, or two axes
that disagree leave the image uncalibrated: :func:`resolve_pixel_size` then asks for
``--pixel-size``, which always wins when given.

A file holding several signals (a Velox file with HAADF, DF4 and iDPC, a DM file with an
image and a plot) gives its HAADF image unless ``signal`` names another; a stack gives
``frame`` (default the first). :meth:`MicroscopeImage.describe` says what was found and
what was used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stembench._optional import require
from stembench.errors import InputError
from stembench.pixel_size import UNIT_TO_ANGSTROM
from stembench.validation import validate_image

__all__ = [
    "MICROSCOPE_PLUGINS",
    "MICROSCOPE_READERS",
    "UNIT_TO_ANGSTROM",
    "MicroscopeImage",
    "pixel_size_from_axes",
    "read_microscope_image",
    "resolve_pixel_size",
]

MICROSCOPE_PLUGINS: tuple[str, ...] = ("DigitalMicrograph", "EMD", "TIA", "HSPY", "MRC", "TIFF")
"""The rosettasciio plugins (their names in ``rsciio.IO_PLUGINS``) of microscope images."""


def _readers_from_plugin_table() -> dict[str, str]:
    """Suffix -> reader module of :data:`MICROSCOPE_PLUGINS`, from rosettasciio's own table.

    Without rosettasciio only TIFF is known (read with tifffile, without calibration).
    """
    try:
        from rsciio import IO_PLUGINS
    except ImportError:
        return {".tif": "rsciio.tiff", ".tiff": "rsciio.tiff"}
    return {f".{extension.lower()}": plugin["api"] for plugin in IO_PLUGINS
            if plugin["name"] in MICROSCOPE_PLUGINS for extension in plugin["file_extensions"]}


MICROSCOPE_READERS: dict[str, str] = _readers_from_plugin_table()
"""File suffixes and the rosettasciio reader module of each (from ``rsciio.IO_PLUGINS``)."""


_PREFERRED_SIGNALS = ("haadf", "adf", "df")


@dataclass(frozen=True)
class MicroscopeImage:
    """One 2D image read from a microscope file.

    Attributes
    ----------
    path : Path
        The file.
    image : ndarray, shape (rows, cols), float32
        The chosen signal and frame.
    pixel_size_angstrom : float or None
        From the file's calibration, A/px; ``None`` when the file has no spatial one.
    calibration : str
        What the file's axes said (scale and unit) and how it was read.
    signal : str
        Title of the chosen signal.
    frame : int or None
        Index of the chosen frame of a stack (``None`` for a single image).
    found : tuple of str
        One line per signal in the file (title, shape, dtype).
    n_frames : int
        Frames of the chosen signal.
    """

    path: Path
    image: NDArray[np.float32]
    pixel_size_angstrom: float | None
    calibration: str
    signal: str
    frame: int | None
    found: tuple[str, ...]
    n_frames: int

    def describe(self) -> str:
        """What the file holds and what was taken from it, in a few lines."""
        lines = [f"{self.path.name}: {len(self.found)} signal(s): " + "; ".join(self.found)]
        used = f"using signal {self.signal!r}"
        if self.frame is not None:
            used += f", frame {self.frame} of {self.n_frames} (choose with --frame)"
        if len(self.found) > 1:
            used += " (choose with --signal)"
        lines.append(used)
        lines.append(f"calibration: {self.calibration}")
        return "\n".join(lines)


def _title(signal: dict[str, Any], index: int) -> str:
    title = signal.get("metadata", {}).get("General", {}).get("title")
    return str(title) if title not in (None, "", "__unnamed__") else f"signal {index}"


def _signal_axes(signal: dict[str, Any]) -> list[dict[str, Any]]:
    return [axis for axis in signal.get("axes", []) if not axis.get("navigate", False)]


def _is_image(signal: dict[str, Any]) -> bool:
    data = signal["data"]
    axes = _signal_axes(signal)
    return (len(axes) == 2 and np.ndim(data) >= 2 and np.issubdtype(data.dtype, np.number)
            and not np.issubdtype(data.dtype, np.complexfloating))


def pixel_size_from_axes(axes: list[dict[str, Any]]) -> tuple[float | None, str]:
    """Pixel size in A/px from the two signal axes of a rosettasciio signal.

    Returns
    -------
    pixel_size : float or None
        ``None`` when the axes carry no usable spatial calibration.
    note : str
        What the axes said, and why they were not used when they were not.
    """
    said = ", ".join(f"{a.get('name') or '?'}: {float(a.get('scale', 1.0)):.6g} "
                     f"{a.get('units') or '<no unit>'}" for a in axes)
    sizes = []
    for axis in axes:
        unit = str(axis.get("units") or "").strip()
        factor = UNIT_TO_ANGSTROM.get(unit.lower(), UNIT_TO_ANGSTROM.get(unit))
        scale = float(axis.get("scale", 1.0))
        if factor is None:
            return None, f"{said} (unit {unit or '<none>'!r} is not a length)"
        if not (math.isfinite(scale) and scale > 0):
            return None, f"{said} (scale {scale} is not a positive length)"
        sizes.append(scale * factor)
    if len(sizes) != 2:
        return None, f"{said} (expected two image axes, got {len(sizes)})"
    if abs(sizes[0] - sizes[1]) > 0.01 * max(sizes):
        return None, f"{said} (non-square pixels: {sizes[0]:.6g} vs {sizes[1]:.6g} A)"
    return float(sizes[1]), f"{said} -> {sizes[1]:.6g} A/px"


def _choose_signal(images: list[tuple[int, dict[str, Any]]], titles: list[str],
                   signal: str | None, path: Path) -> int:
    names = [titles[i] for i, _ in images]
    if signal is not None:
        wanted = signal.strip().lower()
        for rule in (lambda t: t.lower() == wanted, lambda t: wanted in t.lower()):
            hits = [i for i, _ in images if rule(titles[i])]
            if hits:
                return hits[0]
        raise InputError(f"{path}: no image signal named {signal!r}; the file holds {names}")
    for prefix in _PREFERRED_SIGNALS:
        hits = [i for i, _ in images if titles[i].lower().startswith(prefix)]
        if hits:
            return hits[0]
    return images[0][0]


def _read_tiff_without_calibration(path: Path) -> list[dict[str, Any]]:
    import tifffile

    try:
        data = tifffile.imread(path)
    except (ValueError, OSError, tifffile.TiffFileError) as exc:
        raise InputError(f"{path}: not a readable TIFF ({exc})") from exc
    axes = [{"name": name, "scale": 1.0, "units": None, "navigate": False}
            for name in ("y", "x")]
    nav = [{"name": f"frame{k}", "navigate": True} for k in range(max(np.ndim(data) - 2, 0))]
    return [{"data": data, "axes": nav + axes, "metadata": {"General": {"title": path.stem}}}]


def _read_signals(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        try:
            reader = require(MICROSCOPE_READERS[suffix], extra="io", purpose="TIFF calibration")
        except ImportError:
            return _read_tiff_without_calibration(path)
    else:
        reader = require(MICROSCOPE_READERS[suffix], extra="io",
                         purpose=f"Reading {suffix} files")
    options = {"select_type": "images"} if suffix == ".emd" else {}  # no spectra (Velox SI)
    try:
        signals = reader.file_reader(str(path), **options)
    except ImportError as exc:
        raise InputError(f"{path}: rosettasciio needs a missing library to read it: "
                         f"{exc}") from exc
    except Exception as exc:  # any failure of a reader on a file it cannot parse
        detail = " ".join(str(exc).split())[:200]
        raise InputError(f"{path}: rosettasciio could not read it as {suffix} "
                         f"({type(exc).__name__}: {detail}); is it really a {suffix} "
                         "file?") from exc
    return list(signals)


def read_microscope_image(path: str | Path, *, signal: str | None = None,
                          frame: int | None = None) -> MicroscopeImage:
    """Read one 2D image and its calibration from a microscope file.

    Parameters
    ----------
    path : str or Path
        A file with one of the suffixes of :data:`MICROSCOPE_READERS`.
    signal : str, optional
        Title (or part of it, case-insensitive) of the signal to take; default the HAADF
        image when the file has one, else its first image.
    frame : int, optional
        Frame of a stack (index over the flattened navigation axes); default 0.

    Returns
    -------
    MicroscopeImage

    Raises
    ------
    InputError
        Missing file, unknown suffix, unreadable file, no 2D image, no such signal, a frame
        out of range, or non-finite pixels; the message names the file.
    MissingExtraError
        If rosettasciio is needed and not installed.

    Examples
    --------
    A TIFF that carries no calibration (a microscope file gives its pixel size too):

    >>> import tempfile
    >>> import numpy as np
    >>> import tifffile
    >>> path = Path(tempfile.mkdtemp()) / "scan.tif"
    >>> tifffile.imwrite(path, np.ones((64, 48), dtype=np.float32))
    >>> found = read_microscope_image(path)
    >>> found.image.shape, found.pixel_size_angstrom
    ((64, 48), None)
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    suffix = path.suffix.lower()
    if suffix not in MICROSCOPE_READERS:
        raise InputError(f"{path}: unknown microscope format {suffix!r}; expected one of "
                         f"{sorted(MICROSCOPE_READERS)}")
    signals = _read_signals(path)
    titles = [_title(s, i) for i, s in enumerate(signals)]
    found = tuple(f"{t} {tuple(np.shape(s['data']))} {np.asarray(s['data']).dtype}"
                  for t, s in zip(titles, signals, strict=True))
    images = [(i, s) for i, s in enumerate(signals) if _is_image(s)]
    if not images:
        raise InputError(f"{path}: no 2D real-valued image among its signals: {list(found)}")
    index = _choose_signal(images, titles, signal, path)
    chosen = signals[index]
    data = np.asarray(chosen["data"])
    stack = data.reshape(-1, *data.shape[-2:])
    n_frames = stack.shape[0]
    if frame is not None and not 0 <= frame < n_frames:
        raise InputError(f"{path}: frame {frame} out of range; signal {titles[index]!r} "
                         f"holds {n_frames} frame(s) (0..{n_frames - 1})")
    image = validate_image(stack[frame or 0], name=str(path)).astype(np.float32)
    pixel, note = pixel_size_from_axes(_signal_axes(chosen))
    return MicroscopeImage(path, image, pixel, note, titles[index],
                           (frame or 0) if n_frames > 1 else None, found, n_frames)


def resolve_pixel_size(image: MicroscopeImage, override: float | None) -> float:
    """The pixel size to use, A/px: ``override`` when given, else the file's calibration.

    Raises
    ------
    InputError
        If ``override`` is given but not a positive finite number, or is not given and the
        file carries no spatial calibration (the message asks for ``--pixel-size``).
    """
    if override is not None:
        if not (math.isfinite(override) and override > 0):
            raise InputError(f"{image.path}: --pixel-size must be a positive number of A/px, "
                             f"got {override}")
        return float(override)
    if image.pixel_size_angstrom is None:
        raise InputError(f"{image.path}: no spatial calibration in the file "
                         f"({image.calibration}); pass --pixel-size in A/px")
    return image.pixel_size_angstrom
