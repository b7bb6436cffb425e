"""Score records: validation and JSON-lines input/output.

A score record is one image scored for one model: the scorer's per-image dict merged with
the image's metadata (``group``, ``series``, ``step``, ``axis_value``, ``seed``) and the
model's identity (``model``, ``model_version``, ``weights_sha256``). See
``docs/architecture.md``, "Score records". The analysis reads nothing else.

Metric fields may be NaN (or ``None`` in JSON): ``rms_angstrom`` is undefined when an image
has no matched pair, and ratios are undefined on empty inputs.

An image the model failed on is a record too, scored as finding nothing (recall 0 on its
columns), with ``failed`` true and the ``error`` kept: every aggregate counts it. ``failed``
is optional (false when absent).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from stembench.errors import InputError

__all__ = [
    "FLOAT_FIELDS",
    "REQUIRED_FIELDS",
    "json_safe",
    "read_records",
    "validate_records",
    "write_records",
]

REQUIRED_FIELDS: tuple[str, ...] = (
    "model",
    "model_version",
    "weights_sha256",
    "group",
    "series",
    "step",
    "axis_value",
    "seed",
    "image_id",
    "recall",
    "precision",
    "f1",
    "rms_angstrom",
    "tp",
    "fp",
    "fn",
)
"""Fields every score record must have."""

_STRING_FIELDS = ("model", "model_version", "weights_sha256", "group", "series", "image_id")
_INT_FIELDS = ("step", "seed", "tp", "fp", "fn")
FLOAT_FIELDS: tuple[str, ...] = ("axis_value", "recall", "precision", "f1", "rms_angstrom")
"""Fields that are floats and may be NaN (``None`` in JSON)."""


def _as_float(value: Any, *, index: int, field: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"score record {index}: field {field!r} must be a number, got {value!r}")
    return float(value)


def _as_int(value: Any, *, index: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise InputError(f"score record {index}: field {field!r} must be an integer, got {value!r}")
    return int(value)


def validate_records(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Check score records and return normalised copies.

    Parameters
    ----------
    records : iterable of mapping
        Score records (see the module docstring). Extra fields are kept unchanged.

    Returns
    -------
    list of dict
        Copies with integer fields as ``int``, float fields as ``float`` (``None`` becomes
        NaN) and ``failed`` as ``bool`` (false when absent).

    Raises
    ------
    InputError
        If a record lacks a required field or holds a value of the wrong type (the message
        names the record index and the field), if a model name appears with two different
        versions or weights hashes, or if there are no records.
    """
    checked: list[dict[str, Any]] = []
    identity: dict[str, tuple[str, str]] = {}
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InputError(f"score record {index} must be a mapping, got {type(record).__name__}")
        missing = [field for field in REQUIRED_FIELDS if field not in record]
        if missing:
            raise InputError(
                f"score record {index} (image {record.get('image_id', '?')!r}) lacks "
                f"field {missing[0]!r}" + (f" (and {missing[1:]})" if len(missing) > 1 else "")
            )
        clean = dict(record)
        for field in _STRING_FIELDS:
            if not isinstance(record[field], str):
                raise InputError(
                    f"score record {index}: field {field!r} must be a string, got {record[field]!r}"
                )
        for field in _INT_FIELDS:
            clean[field] = _as_int(record[field], index=index, field=field)
        for field in FLOAT_FIELDS:
            clean[field] = _as_float(record[field], index=index, field=field)
        failed = record.get("failed", False)
        if not isinstance(failed, bool):
            raise InputError(f"score record {index}: field 'failed' must be true or false, "
                             f"got {failed!r}")
        clean["failed"] = failed
        model_id = (clean["model_version"], clean["weights_sha256"])
        known = identity.setdefault(clean["model"], model_id)
        if known != model_id:
            raise InputError(
                f"score record {index}: model {clean['model']!r} appears with version/weights "
                f"{model_id} but earlier records have {known}; give each variant its own name"
            )
        checked.append(clean)
    if not checked:
        raise InputError("no score records given")
    return checked


def json_safe(value: Any) -> Any:
    """Return ``value`` with NaN and infinite floats replaced by ``None`` (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return json_safe(value.item())
    return value


def write_records(records: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Validate score records and write them as JSON lines (one record per line).

    NaN values are written as ``null``. Returns the path written.
    """
    checked = validate_records(records)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for record in checked:
            handle.write(json.dumps(json_safe(record), allow_nan=False) + "\n")
    return out


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate score records from a JSON-lines file.

    Raises
    ------
    InputError
        If a line is not valid JSON (the message names the file and line) or a record is
        invalid.
    """
    source = Path(path)
    records = []
    with source.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{source}: line {line_number} is not JSON ({exc.msg})") from exc
    return validate_records(records)
