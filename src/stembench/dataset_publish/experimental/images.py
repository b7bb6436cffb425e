"""Read any image a user hands to the command line: ``.npy``, ``.png``, TIFF or a microscope
file (rosettasciio), with its pixel size where the file carries one.

Used by ``stembench assess`` and ``stembench label``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from stembench.dataset_publish.experimental.microscope import (
    MICROSCOPE_READERS,
    read_microscope_image,
    resolve_pixel_size,
)
from stembench.errors import InputError
from stembench.validation import validate_image

__all__ = ["read_any_image", "read_image_and_pixel_size"]


def read_any_image(path: Path) -> NDArray[np.float64]:
    """Read a 2D image from ``.npy``, ``.png``, TIFF or a microscope format (rosettasciio).

    Raises
    ------
    InputError
        If the file is missing, unreadable, or not a 2D image (an RGB PNG is averaged).
    """
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise InputError(f"{path}: not a NumPy array file ({exc})") from exc
    elif suffix == ".png":
        from matplotlib.image import imread

        try:
            data = imread(path)
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for a corrupt file
            raise InputError(f"{path}: not a readable PNG image ({exc})") from exc
        if data.ndim == 3:
            data = data[..., :3].mean(axis=2)
    else:
        from stembench.dataset_publish.experimental.importer import read_image_file

        data = read_image_file(path)
    return validate_image(np.squeeze(np.asarray(data)), name=str(path))


def read_image_and_pixel_size(path: Path, pixel_size: float | None, *,
                              signal: str | None = None, frame: int | None = None
                              ) -> tuple[NDArray[np.float64], float, str | None]:
    """The image, its pixel size (A/px): ``pixel_size`` when given, else the file's, and what
    a microscope file was found to hold.

    A microscope file (and a TIFF with the ``io`` extra) is read with its calibration; an
    ``.npy`` or ``.png`` needs ``pixel_size``.

    Parameters
    ----------
    path : Path
        The image file.
    pixel_size : float or None
        A/px; overrides the file's calibration.
    signal, frame : optional
        Signal of a multi-signal microscope file, frame of a stack
        (:func:`~stembench.dataset_publish.experimental.microscope.read_microscope_image`).

    Returns
    -------
    image : ndarray, shape (rows, cols)
    pixel_size : float
    description : str or None
        :meth:`MicroscopeImage.describe` of a microscope file, ``None`` for other files.

    Raises
    ------
    InputError
        If the image cannot be read, or no pixel size is given and the file has none.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    if path.suffix.lower() in MICROSCOPE_READERS:
        found = read_microscope_image(path, signal=signal, frame=frame)
        return (found.image.astype(np.float64), resolve_pixel_size(found, pixel_size),
                found.describe())
    if pixel_size is None:
        raise InputError(f"{path}: a {path.suffix} file carries no calibration; pass "
                         "--pixel-size in A/px")
    return read_any_image(path), pixel_size, None
