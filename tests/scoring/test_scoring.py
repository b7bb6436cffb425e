"""Tests of per-image scores: hand-computed cases, edge handling, legacy rule, errors."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from stembench.errors import InputError
from stembench.scoring import SCORER_VERSION, ImageScore, matched_pairs, score_image

SHAPE = (80, 80)


def _score(pred: Any, truth: Any, **kwargs: Any) -> ImageScore:
    options: dict[str, Any] = {"pixel_size": 0.5, "image_shape": SHAPE, "image_id": "img-1"}
    options.update(kwargs)
    return score_image(pred, truth, **options)


def test_one_to_one_where_greedy_fails() -> None:
    truth = np.array([[20.0, 20.0], [21.0, 20.0]])
    pred = np.array([[20.6, 20.0], [21.7, 20.0]])
    s = _score(pred, truth, radius_angstrom=0.5)  # 0.5 A / 0.5 A/px = 1 px
    assert (s.tp, s.fp, s.fn) == (2, 0, 0)
    assert (s.recall, s.precision, s.f1) == (1.0, 1.0, 1.0)
    assert s.rms_px == pytest.approx(math.sqrt((0.6**2 + 0.7**2) / 2))
    assert s.rms_angstrom == pytest.approx(0.5 * math.sqrt(0.425))
    assert s.mean_offset_x_px == pytest.approx(0.65)
    assert s.mean_offset_y_px == 0.0
    assert s.radius_px == 1.0
    assert s.scorer_version == SCORER_VERSION and s.mode == "one-to-one"


def test_legacy_counts_two_predictions_on_one_column() -> None:
    # 0.1 A/px: tolerance = round((0.5 / 0.1)**2, 1) = 25 px^2, i.e. 5 px.
    truth = np.array([[20.0, 20.0]])
    pred = np.array([[21.0, 20.0], [20.0, 22.0], [60.0, 60.0]])
    legacy = _score(pred, truth, pixel_size=0.1, mode="legacy")
    assert legacy.tp == 2 and legacy.fp == 1 and legacy.fn == 0
    assert legacy.recall == 2.0
    assert legacy.precision == pytest.approx(2 / 3)
    assert legacy.f1 == pytest.approx(2 * 2.0 * (2 / 3) / (2.0 + 2 / 3))
    assert legacy.rms_px == pytest.approx(math.sqrt((1 + 4) / 2))
    assert legacy.rms_angstrom == pytest.approx(0.1 * math.sqrt(2.5))
    assert legacy.radius_px == 5.0
    exact = _score(pred, truth, pixel_size=0.1)
    assert (exact.tp, exact.fp, exact.fn, exact.recall) == (1, 2, 0, 1.0)
    assert exact.precision == pytest.approx(1 / 3)
    assert exact.rms_px == pytest.approx(1.0)


def test_legacy_prediction_between_two_columns_counts_twice() -> None:
    truth = np.array([[20.0, 20.0], [24.0, 20.0]])
    pred = np.array([[22.0, 20.0]])
    legacy = _score(pred, truth, pixel_size=0.1, mode="legacy")
    assert (legacy.tp, legacy.fp, legacy.fn) == (2, 0, 0)
    assert (legacy.recall, legacy.precision) == (1.0, 2.0)


def test_legacy_tolerance_is_rounded_squared_and_strict() -> None:
    # WS2 pixel size 0.1547 A/px: (0.5 / 0.1547)**2 = 10.446... rounds to 10.4 px^2.
    truth = np.array([[30.0, 30.0], [50.0, 50.0]])
    pred = np.array([[33.23, 30.0], [53.0, 54.0]])
    legacy = _score(pred, truth, pixel_size=0.1547, mode="legacy")
    assert legacy.radius_px == pytest.approx(math.sqrt(10.4))
    assert legacy.tp == 0  # 3.23**2 = 10.43 is not below 10.4
    exact = _score(pred, truth, pixel_size=0.1547)
    assert exact.tp == 1  # 3.23 px <= 0.5 / 0.1547 = 3.2321 px
    # Exactly on the tolerance (3-4-5 triangle, 25 px^2 at 0.1 A/px): legacy is strict.
    legacy_edge = _score(pred, truth, pixel_size=0.1, mode="legacy")
    assert legacy_edge.tp == 1  # only (33.23, 30): 10.43 < 25; (53, 54) is at 25
    assert _score(pred, truth, pixel_size=0.1).tp == 2


def test_column_on_the_border_line_costs_nothing() -> None:
    """A row of columns just outside the margin, found just inside it, is neither missed
    nor a false positive; a column just inside found just outside is a true positive;
    an unpaired prediction inside the margin is a false positive."""
    truth = np.array([[20.0, 43.05], [20.0, 20.0], [10.0, 42.95]])
    pred = np.array([[20.0, 42.9], [20.0, 20.0], [10.0, 43.1], [25.0, 30.0]])
    s = score_image(pred, truth, pixel_size=0.1, image_shape=(50, 40), image_id="edge",
                    border_px=6)
    assert (s.n_truth, s.n_predicted) == (2, 3)
    assert (s.tp, s.fp, s.fn) == (2, 1, 0)
    assert s.rms_px == pytest.approx(math.sqrt((0.0**2 + 0.15**2) / 2))


def test_border_excludes_both_sides() -> None:
    # rows=50, cols=40, border 6: kept x in [6, 33], y in [6, 43].
    truth = np.array([[5.9, 20.0], [6.0, 20.0], [33.0, 20.0], [33.1, 20.0], [20.0, 5.9],
                      [20.0, 43.1], [20.0, 20.0], [5.5, 30.0]])  # fmt: skip
    pred = np.array([[6.0, 20.0], [33.0, 20.2], [20.0, 43.2], [20.1, 20.0], [6.2, 30.0],
                     [2.0, 2.0]])  # fmt: skip
    s = score_image(pred, truth, pixel_size=0.2, image_shape=(50, 40), image_id="b", border_px=6)
    assert (s.n_truth_total, s.n_predicted_total) == (8, 6)
    assert (s.n_truth, s.n_predicted) == (3, 3)
    # (6.2, 30) lies inside but found the excluded column (5.5, 30): not scored, and so is
    # (20, 43.2), which found (20, 43.1); (2, 2) found nothing and lies outside.
    assert (s.tp, s.fp, s.fn) == (3, 0, 0)
    pairs = matched_pairs(
        pred, truth, pixel_size=0.2, image_shape=(50, 40), image_id="b", border_px=6
    )
    np.testing.assert_array_equal(pairs.truth_kept, [0, 1, 1, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(pairs.predicted_kept, [1, 1, 0, 1, 0, 0])
    np.testing.assert_array_equal(pairs.predicted_index, [0, 1, 3])
    np.testing.assert_array_equal(pairs.truth_index, [1, 2, 6])


def test_per_type_breakdown() -> None:
    truth = np.array([[20.0, 20.0], [30.0, 20.0], [40.0, 20.0], [20.0, 30.0], [2.0, 2.0]])
    types = ["Sr", "Sr", "Ti", "Ti", "O"]  # the O column lies in the border
    pred = np.array([[20.3, 20.0], [30.0, 20.4], [40.1, 20.0]])
    s = _score(pred, truth, pixel_size=0.1, column_types=types)
    assert set(s.by_type) == {"Sr", "Ti"}
    sr, ti = s.by_type["Sr"], s.by_type["Ti"]
    assert (sr.n_truth, sr.tp, sr.fn, sr.recall) == (2, 2, 0, 1.0)
    assert sr.rms_px == pytest.approx(math.sqrt((0.09 + 0.16) / 2))
    assert sr.rms_angstrom == pytest.approx(0.1 * math.sqrt(0.125))
    assert (ti.n_truth, ti.tp, ti.fn, ti.recall) == (2, 1, 1, 0.5)
    assert ti.rms_px == pytest.approx(0.1)
    as_bytes = _score(pred, truth, pixel_size=0.1, column_types=[t.encode() for t in types])
    assert as_bytes.by_type == s.by_type


def test_uniform_shift_reported_as_mean_offset(square_lattice: Callable[..., Any]) -> None:
    truth = square_lattice(5, 10.0, 15.0)
    s = _score(truth + np.array([0.3, -0.2]), truth, pixel_size=0.2)
    assert s.tp == 25
    assert s.mean_offset_x_px == pytest.approx(0.3)
    assert s.mean_offset_y_px == pytest.approx(-0.2)
    assert s.mean_offset_x_angstrom == pytest.approx(0.06)
    assert s.mean_offset_y_angstrom == pytest.approx(-0.04)
    assert s.rms_px == pytest.approx(math.sqrt(0.13))


def test_lattice_with_shift_deletions_and_insertions(square_lattice: Callable[..., Any]) -> None:
    truth: NDArray[np.float64] = square_lattice(30, 12.0, 10.0)  # 900 columns, max 358 px
    rng = np.random.default_rng(3)
    deleted = rng.choice(900, size=27, replace=False)
    pred = np.delete(truth, deleted, axis=0) + np.array([0.3, 0.4])  # 0.5 px off every column
    interior = np.flatnonzero((truth < 350).all(axis=1))
    extra = truth[rng.choice(interior, size=27, replace=False)] + [6.0, 6.0]  # 8.5 px away
    pred = rng.permutation(np.vstack([pred, extra]))
    s = score_image(pred, truth, pixel_size=0.1, image_shape=(370, 370), image_id="lat")
    assert (s.n_truth, s.n_predicted) == (900, 900)
    assert (s.tp, s.fp, s.fn) == (873, 27, 27)
    assert s.recall == s.precision == s.f1 == pytest.approx(0.97)
    assert s.rms_px == pytest.approx(0.5)
    assert s.rms_angstrom == pytest.approx(0.05)
    assert (s.mean_offset_x_px, s.mean_offset_y_px) == pytest.approx((0.3, 0.4))


@pytest.mark.parametrize(
    ("n_pred", "n_truth", "recall", "precision", "f1"),
    [(0, 0, 1.0, 1.0, 1.0), (2, 0, 1.0, 0.0, 0.0), (0, 2, 0.0, 1.0, 0.0)],
)
@pytest.mark.parametrize("mode", ["one-to-one", "legacy"])
def test_empty_cases(
    n_pred: int, n_truth: int, recall: float, precision: float, f1: float, mode: Any
) -> None:
    points = np.array([[20.0, 20.0], [40.0, 40.0]])
    s = _score(points[:n_pred], points[:n_truth], mode=mode)
    assert (s.recall, s.precision, s.f1) == (recall, precision, f1)
    assert (s.tp, s.fp, s.fn) == (0, n_pred, n_truth)
    assert math.isnan(s.rms_px) and math.isnan(s.mean_offset_x_angstrom)
    d = s.to_dict()
    assert d["rms_px"] is None and d["rms_angstrom"] is None


def test_to_dict_is_json_safe_and_round_trips() -> None:
    truth = np.array([[20.0, 20.0], [30.0, 20.0]])
    s = _score([[20.2, 20.0]], truth, column_types=["W", "S2"])
    text = json.dumps(s.to_dict(), allow_nan=False)
    back = ImageScore.from_dict(json.loads(text))
    assert back.to_dict() == s.to_dict()
    assert back.by_type["W"] == s.by_type["W"] and back.tp == s.tp == 1
    assert back.by_type["S2"].to_dict()["rms_px"] is None
    empty = _score([], truth)
    assert math.isnan(ImageScore.from_dict(json.loads(json.dumps(empty.to_dict()))).rms_px)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"predicted": [[20.0, math.nan]]}, "predictions: 1 NaN or infinite position"),
        ({"truth": [[math.inf, 20.0]]}, "ground truth: 1 NaN or infinite position"),
        ({"predicted": [[1.0, 2.0, 3.0]]}, r"predictions: shape \(1, 3\), expected \(N, 2\)"),
        ({"truth": [1.0, 2.0]}, r"ground truth: shape \(2,\), expected \(N, 2\)"),
        ({"pixel_size": 0.0}, "pixel size"),
        ({"pixel_size": -0.1}, "pixel size"),
        ({"pixel_size": math.nan}, "pixel size"),
        ({"pixel_size": math.inf}, "pixel size"),
        ({"pixel_size": "fast"}, "pixel size"),
        ({"radius_angstrom": 0.0}, "radius_angstrom"),
        ({"radius_angstrom": math.nan}, "radius_angstrom"),
        ({"border_px": -1.0}, "border_px"),
        ({"border_px": math.nan}, "border_px"),
        ({"border_px": 40.0}, "leaves no scored region"),
        ({"image_shape": (0, 80)}, "image_shape"),
        ({"image_shape": (80,)}, "image_shape"),
        ({"image_shape": (80.5, 80)}, "image_shape"),
        ({"image_shape": None}, "image_shape"),
        ({"mode": "greedy"}, "mode must be one of"),
        ({"column_types": ["Sr"]}, "column_types must hold one string"),
        (
            {"predicted": np.ones((10, 2)), "image_shape": (3, 3), "border_px": 0.0},
            "10 predictions for an image of 3x3 = 9 pixels",
        ),
    ],
)
def test_bad_input_names_the_image(kwargs: dict[str, Any], message: str) -> None:
    options: dict[str, Any] = {
        "predicted": [[20.0, 20.0]],
        "truth": [[20.0, 20.0], [30.0, 30.0]],
        "pixel_size": 0.5,
        "image_shape": SHAPE,
        "image_id": "bad-image-7",
    }
    options.update(kwargs)
    pred, truth = options.pop("predicted"), options.pop("truth")
    with pytest.raises(InputError, match=message) as info:
        score_image(pred, truth, **options)
    assert "bad-image-7" in str(info.value)
