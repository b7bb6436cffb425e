"""Per-column-type scores: visible and faint columns summed apart, failures counted."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stembench.client.analysis.column_types import column_type_summary
from stembench.scoring import score_image

TRUTH = np.array([[20.0, 20.0], [40.0, 20.0], [20.0, 40.0], [40.0, 40.0]])
FAINT = np.array([[30.0, 30.0], [50.0, 30.0]])
KW = {"pixel_size": 0.1, "image_shape": (70, 70), "image_id": "img",
      "column_types": ["Sr", "Sr", "Ti", "Ti"], "faint": FAINT, "faint_types": ["O", "O"]}


def _record(predicted: np.ndarray, model: str) -> dict:
    score = score_image(predicted, TRUTH, **KW).to_dict()
    return {**score, "group": "g", "model": model}


def test_visible_and_faint_columns_are_summed_apart() -> None:
    found_all = np.vstack([TRUTH + np.array([0.3, 0.0]), FAINT[:1] + np.array([0.0, 0.4])])
    records = [_record(found_all, "m"), _record(TRUTH[:1], "m")]  # second: finds one Sr only
    rows = {(r["kind"], r["type"]): r for r in column_type_summary(records) if r["model"] == "m"}
    assert set(rows) == {("visible", "Sr"), ("visible", "Ti"), ("faint", "O")}
    assert (rows["visible", "Sr"]["n_columns"], rows["visible", "Sr"]["n_found"]) == (4, 3)
    assert rows["visible", "Ti"]["fraction_found"] == pytest.approx(0.5)
    assert rows["visible", "Sr"]["rms_angstrom"] == pytest.approx(math.sqrt(2 * 0.03**2 / 3))
    assert (rows["faint", "O"]["n_columns"], rows["faint", "O"]["n_found"]) == (4, 1)
    assert rows["faint", "O"]["rms_angstrom"] == pytest.approx(0.04)


def test_a_failed_image_counts_its_columns_as_not_found() -> None:
    rows = column_type_summary([_record(np.zeros((0, 2)), "broken")])
    assert {(r["type"], r["n_columns"], r["n_found"]) for r in rows} == {
        ("Sr", 2, 0), ("Ti", 2, 0), ("O", 2, 0)}
    assert all(math.isnan(r["rms_angstrom"]) for r in rows)
