"""The scores of one image and their JSON form (score records are ``ImageScore.to_dict()``).

Computed by :func:`stembench.scoring.score_image`; see :mod:`stembench.scoring` for the
definitions and units. In JSON, NaN (a rate or distance with nothing to measure) is ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any, get_type_hints

__all__ = ["ColumnTypeScore", "ImageScore"]


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _from_json_float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _dict_with_floats(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = _json_float(value) if isinstance(value, float) else value
    return out


@cache
def _float_fields(cls: type) -> frozenset[str]:
    """The fields of a score dataclass whose type is ``float`` (resolved, not as text)."""
    hints = get_type_hints(cls)
    return frozenset(f.name for f in fields(cls) if hints[f.name] is float)


def _floats_from_dict(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``cls`` that ``data`` holds (JSON ``null`` floats as NaN); the schema
    (``score-record.json``) checked that it holds every field without a default."""
    floats = _float_fields(cls)
    return {f.name: _from_json_float(data[f.name]) if f.name in floats else data[f.name]
            for f in fields(cls) if f.name in data}


@dataclass(frozen=True)
class ColumnTypeScore:
    """Scores of the ground-truth columns of one type (e.g. ``"Sr"``, ``"TiO"``, ``"W"``).

    ``tp`` counts matched pairs whose column has this type (legacy: all pairs), ``fn``
    the columns of this type left without a pair. RMS over those pairs, NaN if none.
    """

    n_truth: int
    tp: int
    fn: int
    recall: float
    rms_px: float
    rms_angstrom: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN becomes ``None``)."""
        return _dict_with_floats(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnTypeScore:
        """Inverse of :meth:`to_dict` (checked as part of :meth:`ImageScore.from_dict`)."""
        return cls(**_floats_from_dict(cls, data))


@dataclass(frozen=True)
class ImageScore:
    """The scores of one image. See the module docstring for definitions and units.

    ``by_type`` holds one :class:`ColumnTypeScore` per column type present among the
    scored (non-excluded) columns; it is empty when no column types were given.
    ``radius_px`` is the tolerance actually applied, in pixels (legacy: the square root of
    the rounded squared tolerance). ``n_predicted_faint`` counts the predictions that fell
    on faint columns (not scored); ``faint_by_type`` scores the faint columns per type.
    """

    image_id: str
    mode: str
    scorer_version: str
    pixel_size: float
    radius_angstrom: float
    radius_px: float
    border_px: float
    n_truth_total: int
    n_predicted_total: int
    n_truth: int
    n_predicted: int
    tp: int
    fp: int
    fn: int
    recall: float
    precision: float
    f1: float
    rms_px: float
    rms_angstrom: float
    mean_offset_x_px: float
    mean_offset_y_px: float
    mean_offset_x_angstrom: float
    mean_offset_y_angstrom: float
    by_type: dict[str, ColumnTypeScore] = field(default_factory=dict)
    n_predicted_faint: int = 0
    faint_by_type: dict[str, ColumnTypeScore] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: NaN becomes ``None``, ``by_type`` a dict of dicts."""
        out = _dict_with_floats(self)
        out["by_type"] = {name: s.to_dict() for name, s in self.by_type.items()}
        out["faint_by_type"] = {name: s.to_dict() for name, s in self.faint_by_type.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageScore:
        """Rebuild an :class:`ImageScore` from :meth:`to_dict` output (extra keys ignored).

        ``data`` is checked against the score record's JSON Schema
        (``stembench/schemas/score-record.json``); ``n_predicted_faint`` and
        ``faint_by_type``, absent from scorer 1.0's records, may be missing.

        Raises
        ------
        InputError
            ``"score record: field <path>: <reason>"`` (or ``missing field``), one line.
        """
        from stembench.schemas import check_message

        check_message("score-record", data, what="score record")
        kwargs = _floats_from_dict(cls, data)
        for key in ("by_type", "faint_by_type"):
            kwargs[key] = {str(name): ColumnTypeScore.from_dict(s)
                           for name, s in data.get(key, {}).items()}
        return cls(**kwargs)
