"""The one place that checks the two kinds of arrays every part exchanges: images and column
positions.

Each check returns the array in the form the caller computes with, or raises
:class:`~stembench.errors.InputError` with one line naming the array (``name``) and what is
wrong with it. Positions are ``(N, 2)`` x, y pixels; images are 2D arrays of real, finite
numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from stembench.errors import InputError

__all__ = ["coordinates_problem", "validate_coordinates", "validate_image", "validate_pixel_size"]


def coordinates_problem(arr: NDArray[np.float64]) -> str | None:
    """What keeps a float array from being ``(N, 2)`` finite x, y pixel positions, or None.

    The one check behind :func:`validate_coordinates` (which raises) and the model-output
    guard (which fails the image with the text).

    Examples
    --------
    >>> coordinates_problem(np.zeros((3, 2))) is None
    True
    >>> coordinates_problem(np.zeros((3, 3)))
    'shape (3, 3), expected (N, 2) x, y pixel positions'
    """
    if arr.size == 0:
        return None
    if arr.ndim != 2 or arr.shape[1] != 2:
        return f"shape {arr.shape}, expected (N, 2) x, y pixel positions"
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        return (f"{int(bad.sum())} NaN or infinite position(s), first at row {first}: "
                f"{arr[first].tolist()}")
    return None


def validate_coordinates(coords: Any, *, name: str, image_id: str | None = None
                         ) -> NDArray[np.float64]:
    """Return ``coords`` as a float64 ``(N, 2)`` array of finite x, y pixel positions.

    Parameters
    ----------
    coords : array_like
        Positions in pixels, ``(N, 2)`` as (x, y). An empty sequence gives ``(0, 2)``.
    name : str
        What the array is (``"predictions"``, ``"ground truth"``), used in messages.
    image_id : str, optional
        The image the array belongs to, named in messages.

    Raises
    ------
    InputError
        If the array is not ``(N, 2)`` or holds NaN or infinite values.

    Examples
    --------
    >>> validate_coordinates([[1.0, 2.0]], name="predictions").shape
    (1, 2)
    >>> validate_coordinates([1.0, 2.0], name="predictions")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stembench.errors.InputError: predictions: shape (2,), expected (N, 2) x, y pixel positions
    """
    where = f"image {image_id!r}: " if image_id is not None else ""
    arr = np.asarray(coords, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.float64)
    problem = coordinates_problem(arr)
    if problem is not None:
        raise InputError(f"{where}{name}: {problem}")
    return arr


def validate_image(image: Any, *, name: str, min_side: int = 1, hint: str = ""
                   ) -> NDArray[np.float64]:
    """Return ``image`` as a float64 2D array of real, finite values.

    Parameters
    ----------
    image : array_like
        The image, (rows, cols).
    name : str
        What the image is (its file, id or the model reading it), starting every message.
    min_side : int
        Fewest pixels on each side.
    hint : str
        Added to the message of an image that is not 2D (what to do about it).

    Raises
    ------
    InputError
        If the image is not 2D, has a side shorter than ``min_side``, is not of real numbers,
        or holds NaN or infinite values.
    """
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise InputError(f"{name}: expected a 2D image, got shape {arr.shape}{hint}")
    if min(arr.shape) < min_side:
        raise InputError(f"{name}: image {arr.shape} is too small; each side needs >= "
                         f"{min_side} px")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    bad = int(np.count_nonzero(~np.isfinite(out)))
    if bad:
        raise InputError(f"{name}: {bad} non-finite value(s) (NaN or inf) in the image")
    return out


def validate_pixel_size(pixel_size: Any, *, name: str) -> float:
    """Return ``pixel_size`` (A/px) as a float, refusing anything but a positive number.

    Raises
    ------
    InputError
        If it is not a finite number above zero.
    """
    try:
        value = float(pixel_size)
    except (TypeError, ValueError):
        value = float("nan")
    if not (np.isfinite(value) and value > 0):
        raise InputError(f"{name}: pixel size must be a positive number of A/px, got "
                         f"{pixel_size}")
    return value
