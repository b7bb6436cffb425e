"""The physical range of pixel sizes, and the check every user-given pixel size goes through.

Atomic-resolution STEM images have pixels of a few hundredths to a few tenths of an
angstrom. A value far outside :data:`PIXEL_SIZE_RANGE_ANGSTROM` is almost always a unit
mistake (pm or nm taken for angstrom), which would scale every distance and score silently.
"""

from __future__ import annotations

import math
from typing import Any

from stembench.errors import InputError

__all__ = ["PIXEL_SIZE_RANGE_ANGSTROM", "UNIT_TO_ANGSTROM", "check_pixel_size"]

#: Pixel sizes (A/px) accepted without ``--allow-unusual-pixel-size``.
PIXEL_SIZE_RANGE_ANGSTROM = (0.005, 5.0)

#: Length units (lower case, as files spell them) and their size in angstrom: the one table
#: that microscope calibrations and declared pixel-size units are converted with.
UNIT_TO_ANGSTROM: dict[str, float] = {
    "m": 1e10, "mm": 1e7, "um": 1e4, "µm": 1e4, "μm": 1e4, "micron": 1e4, "nm": 10.0,
    "pm": 0.01, "a": 1.0, "å": 1.0, "Å": 1.0, "angstrom": 1.0, "ang": 1.0,
}


def check_pixel_size(value: Any, *, where: str, allow_unusual: bool = False) -> float:
    """Return ``value`` as a float if it is a plausible pixel size in A/px.

    Parameters
    ----------
    value : float
        The pixel size, A/px.
    where : str
        What the value belongs to (a file, an image), named in the message.
    allow_unusual : bool
        Accept any positive finite value (``--allow-unusual-pixel-size``).

    Raises
    ------
    InputError
        If ``value`` is not a positive finite number, or lies outside
        :data:`PIXEL_SIZE_RANGE_ANGSTROM` and ``allow_unusual`` is false.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value > 0):
        raise InputError(f"{where}: pixel size (--pixel-size) must be a positive number of "
                         f"A/px, got {value!r}")
    low, high = PIXEL_SIZE_RANGE_ANGSTROM
    if not allow_unusual and not low <= value <= high:
        raise InputError(
            f"{where}: pixel size (--pixel-size) {value:g} A/px is outside the physical range "
            f"{low:g}-{high:g} A/px of atomic-resolution images (a value in pm or nm?); pass "
            "--allow-unusual-pixel-size if it is right")
    return float(value)
