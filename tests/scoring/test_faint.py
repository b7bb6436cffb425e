"""Faint columns are "don't care" in the primary score and scored apart per type."""

from __future__ import annotations

import numpy as np
import pytest

from stembench.scoring import ImageScore, score_image

VISIBLE = np.array([[20.0, 20.0], [40.0, 20.0], [20.0, 40.0], [40.0, 40.0]])
FAINT = np.array([[30.0, 30.0], [30.0, 20.0]])


def _score(predicted, **kwargs):
    return score_image(predicted, VISIBLE, pixel_size=0.1, image_shape=(64, 64),
                       image_id="t", radius_angstrom=0.5, **kwargs)


@pytest.mark.parametrize("mode", ["one-to-one", "legacy"])
def test_prediction_on_a_faint_column_is_neither_true_nor_false(mode):
    predicted = np.vstack([VISIBLE, FAINT[:1] + 0.3])
    without = _score(predicted, mode=mode)
    assert (without.tp, without.fp, without.precision) == (4, 1, 0.8)
    with_faint = _score(predicted, faint=FAINT, faint_types=["O", "O2"], mode=mode)
    assert (with_faint.tp, with_faint.fp, with_faint.fn) == (4, 0, 0)
    assert with_faint.precision == 1.0 and with_faint.n_predicted_faint == 1
    assert with_faint.faint_by_type["O"].tp == 1 and with_faint.faint_by_type["O2"].fn == 1


def test_missing_a_faint_column_is_not_a_miss_and_round_trips():
    score = _score(VISIBLE, faint=FAINT)
    assert (score.recall, score.fn) == (1.0, 0)
    assert score.faint_by_type["faint"].n_truth == 2
    assert score.faint_by_type["faint"].recall == 0.0
    assert ImageScore.from_dict(score.to_dict()).to_dict() == score.to_dict()


def test_a_visible_column_keeps_its_prediction_before_a_faint_one():
    # one prediction between a visible and a faint column, nearer the faint one: the visible
    # column is matched first, so it is a true positive, not a don't-care
    predicted = np.array([[20.0, 24.0]])
    score = score_image(predicted, np.array([[20.0, 20.0]]), pixel_size=0.1,
                        image_shape=(64, 64), image_id="t", faint=np.array([[20.0, 26.0]]))
    assert (score.tp, score.fp, score.n_predicted_faint) == (1, 0, 0)


def test_old_score_dicts_without_faint_fields_still_read():
    old = _score(VISIBLE).to_dict()
    del old["faint_by_type"], old["n_predicted_faint"]
    assert ImageScore.from_dict(old).faint_by_type == {}
