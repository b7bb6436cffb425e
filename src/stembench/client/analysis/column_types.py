"""Scores per column type: the visible columns and, apart, the faint (don't-care) ones.

Each score record carries ``by_type`` (visible columns: the ground truth) and
``faint_by_type`` (faint columns and labels marked unsure, which the primary score ignores;
there ``tp`` counts faint columns that a prediction left over by the visible ones fell on).
This module sums them per data group, model and column type, so a reader sees which kinds of
column a model finds, and how often it marks columns the benchmark does not ask for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["column_type_summary"]


def _add(totals: dict[tuple[str, str, str, str], list[float]], key: tuple[str, str, str, str],
         entry: Mapping[str, Any]) -> None:
    total = totals.setdefault(key, [0, 0, 0.0, 0])  # columns, found, sum of squares, pairs
    n_truth, tp = int(entry.get("n_truth", 0)), int(entry.get("tp", 0))
    total[0] += n_truth
    total[1] += tp
    rms = entry.get("rms_angstrom")
    if tp and rms is not None and math.isfinite(rms):
        total[2] += tp * rms**2
        total[3] += tp


def column_type_summary(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (group, model, column kind, type): columns, found, fraction found, RMS.

    Parameters
    ----------
    records : iterable of mapping
        Score records (failed images included: their columns count as not found).

    Returns
    -------
    list of dict
        ``group``, ``model``, ``kind`` (``"visible"`` or ``"faint"``), ``type``,
        ``n_columns``, ``n_found``, ``fraction_found`` (NaN without columns) and
        ``rms_angstrom`` over the found ones (NaN if none), sorted by group, model, kind, type.
    """
    totals: dict[tuple[str, str, str, str], list[float]] = {}
    for record in records:
        for kind, field in (("visible", "by_type"), ("faint", "faint_by_type")):
            for column_type, entry in (record.get(field) or {}).items():
                _add(totals, (record["group"], record["model"], kind, column_type), entry)
    rows = []
    for (group, model, kind, column_type), (n, found, squares, pairs) in sorted(totals.items()):
        rows.append({"group": group, "model": model, "kind": kind, "type": column_type,
                     "n_columns": int(n), "n_found": int(found),
                     "fraction_found": found / n if n else math.nan,
                     "rms_angstrom": math.sqrt(squares / pairs) if pairs else math.nan})
    return rows
