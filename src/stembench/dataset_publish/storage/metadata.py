"""The per-image metadata of the stembench layout: its fields, their types and allowed values,
and the check every written image goes through (``docs/architecture.md`` lists the fields).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.storage.published import COLUMN_ELEMENTS_KEY
from stembench.errors import InputError

__all__ = ["METADATA_FIELDS", "validate_image_id", "validate_metadata"]


METADATA_FIELDS: dict[str, type] = {
    "material": str,
    "type": str,
    "space_group": str,
    "probe_current_pA": float,
    "peak_intensity_e": float,
    "contrast": float,
    "pixel_size_pm": float,
    "atoms_per_100px": float,
    "resolution_pm": float,
    "dose_e_per_A2": float,
    "psnr_db": float,
    "drift": float,
    "flyback": float,
    "pixel_size_angstrom": float,
    "group": str,
    "series": str,
    "step": int,
    "axis_value": float,
    "seed": int,
    "backend": str,
    "generator_version": str,
    "source": str,
}
"""Every required per-image metadata field and its kind (float fields may be NaN)."""

_ALLOWED_VALUES: dict[str, tuple[str, ...]] = {
    "type": ("simulated", "experimental"),
    "backend": ("fast", "abtem", "experimental"),
    "series": (
        "reference", "pixel_size", "resolution", "contrast", "noise", "dose", "flyback",
        "drift", "generality",
    ),
}


def _check_field(image_id: str, key: str, kind: type, value: Any) -> Any:
    where = f"image {image_id!r}: metadata field {key!r}"
    if kind is str:
        if not isinstance(value, str):
            raise InputError(f"{where} must be a str, got {type(value).__name__} {value!r}")
        allowed = _ALLOWED_VALUES.get(key)
        if allowed is not None and value not in allowed:
            raise InputError(f"{where} must be one of {list(allowed)}, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InputError(f"{where} must be an int, got {type(value).__name__} {value!r}")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(
            f"{where} must be a number (NaN if unknown), got {type(value).__name__} {value!r}"
        )
    return float(value)


def validate_metadata(image: BenchmarkImage) -> dict[str, Any]:
    """Check an image's metadata and return it as attribute-ready Python values.

    Every field of :data:`METADATA_FIELDS` must be present with the right kind; the pixel
    size fields must agree with ``image.pixel_size``. Extra fields must be str, int,
    float or bool. The ``column_elements`` entry is left out of the result.

    Raises
    ------
    InputError
        Naming the image id, the field, and expected against received value.
    """
    meta = dict(image.metadata)
    missing = [key for key in METADATA_FIELDS if key not in meta]
    if missing:
        raise InputError(f"image {image.image_id!r}: metadata lacks required field(s) {missing}")
    meta.pop(COLUMN_ELEMENTS_KEY, None)
    clean: dict[str, Any] = {}
    for key, value in meta.items():
        if key in METADATA_FIELDS:
            clean[key] = _check_field(image.image_id, key, METADATA_FIELDS[key], value)
        elif isinstance(value, str | bool | numbers.Real):
            clean[key] = value.item() if isinstance(value, np.generic) else value
        else:
            raise InputError(
                f"image {image.image_id!r}: extra metadata field {key!r} must be a str, int, "
                f"float or bool, got {type(value).__name__}"
            )
    for key, scale in (("pixel_size_angstrom", 1.0), ("pixel_size_pm", 100.0)):
        expected = image.pixel_size * scale
        if not math.isclose(clean[key], expected, rel_tol=1e-6):
            raise InputError(
                f"image {image.image_id!r}: metadata {key}={clean[key]} disagrees with the "
                f"image's pixel size {image.pixel_size} A/px (expected {expected})"
            )
    return clean


def validate_image_id(image_id: str) -> None:
    """Refuse an image id that cannot name an HDF5 group: empty, ``"."``, or holding ``/``.

    Raises
    ------
    InputError
        Naming the id.
    """
    if not isinstance(image_id, str) or not image_id or "/" in image_id or image_id == ".":
        raise InputError(
            f"image id must be a non-empty str without '/', got {image_id!r}"
        )
