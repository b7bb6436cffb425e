"""Don't-care columns (e.g. labels a person marked unsure): neither missed nor false positives."""

from __future__ import annotations

import numpy as np
import pytest

from stembench.errors import InputError
from stembench.scoring import ImageScore, dont_care_mask, score_image

TRUTH = np.array([[20.0, 20.0], [40.0, 20.0], [60.0, 20.0], [20.0, 40.0], [40.0, 40.0]])
KW = {"pixel_size": 0.1, "image_shape": (80, 80), "image_id": "img"}


@pytest.mark.parametrize("mode", ["one-to-one", "legacy"])
def test_dont_care_is_neither_miss_nor_false_positive(mode):
    unsure = np.array([False, False, True, True, False])
    # finds columns 0 and 2 (2 is don't-care), misses 1, 3 (don't-care) and 4
    predicted = TRUTH[[0, 2]] + 0.5
    plain = score_image(predicted, TRUTH, mode=mode, **KW)
    assert (plain.tp, plain.fp, plain.fn) == (2, 0, 3)
    score = score_image(predicted, TRUTH, dont_care=unsure, mode=mode, **KW)
    assert (score.n_truth, score.n_predicted, score.tp, score.fp, score.fn) == (3, 1, 1, 0, 2)
    unsure_score = score.faint_by_type["unsure"]  # scored apart, like faint columns
    assert (unsure_score.n_truth, unsure_score.tp) == (2, 1)
    assert score.recall == pytest.approx(1 / 3)
    assert score.precision == 1.0


def test_prediction_near_dont_care_column_is_not_a_false_positive():
    unsure = np.array([False, False, True, False, False])
    predicted = np.vstack([TRUTH[[0, 1, 3, 4]], TRUTH[2] + [1.0, 0.0]])
    score = score_image(predicted, TRUTH, dont_care=unsure, **KW)
    assert (score.tp, score.fp, score.fn, score.faint_by_type["unsure"].tp) == (4, 0, 0, 1)
    assert score.f1 == 1.0


def test_mask_from_column_types_and_round_trip():
    assert dont_care_mask(["A", "B"]) is None
    mask = dont_care_mask(["column", b"unsure", "column"])
    assert mask is not None and mask.tolist() == [False, True, False]
    score = score_image(TRUTH, TRUTH, dont_care=np.array([True, False, False, False, False]),
                        **KW)
    assert ImageScore.from_dict(score.to_dict()) == score
    assert score.faint_by_type["unsure"].n_truth == 1


def test_dont_care_columns_join_the_faint_ones_with_their_types():
    faint = np.array([[30.0, 30.0]])
    score = score_image(TRUTH[[0, 1, 3, 4]] + 0.3, TRUTH, column_types=["A", "A", "B", "A", "A"],
                        dont_care=np.array([False, False, True, False, False]), faint=faint,
                        faint_types=["O"], **KW)
    assert (score.tp, score.fp, score.fn) == (4, 0, 0)
    assert set(score.faint_by_type) == {"B", "O"}
    assert score.faint_by_type["B"].n_truth == 1 and score.faint_by_type["O"].tp == 0


def test_bad_mask_is_refused():
    with pytest.raises(InputError, match=r"image 'img': dont_care must hold one bool per "
                                         r"ground-truth column \(5\), got shape \(3,\)"):
        score_image(TRUTH, TRUTH, dont_care=np.array([True, False, True]), **KW)
