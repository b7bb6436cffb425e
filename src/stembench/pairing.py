"""Which predictions pair with which ground-truth columns under the scorer's rules.

:func:`matched_pairs` validates the inputs, excludes the image edge and pairs predictions
with visible columns (one-to-one or legacy), then the predictions left over with faint
columns. :func:`stembench.scoring.score_image` scores the pairs; the rules (edge, faint
columns, modes) are in :mod:`stembench.scoring`'s docstring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stembench.errors import InputError
from stembench.matching import match_positions, pairs_below
from stembench.validation import validate_coordinates

__all__ = ["MatchedPairs", "ScoringMode", "matched_pairs"]

ScoringMode = Literal["one-to-one", "legacy"]
_MODES = ("one-to-one", "legacy")


@dataclass(frozen=True)
class MatchedPairs:
    """Which predictions and columns were scored and how they pair up.

    Attributes
    ----------
    predicted_kept, truth_kept : ndarray of bool
        Per input row: inside the scored region (not within ``border_px`` of the edge).
    predicted_index, truth_index : ndarray of intp
        Rows (into the input arrays) of each true-positive pair.
    distance_px : ndarray of float64
        Distance of each pair in pixels.
    radius_px : float
        The tolerance applied, in pixels.
    faint_kept : ndarray of bool
        Per faint column: inside the scored region.
    faint_predicted_index, faint_index : ndarray of intp
        Predictions left over by the visible columns that fell on a scored faint column, and
        that column (don't care: such predictions are not in ``predicted_kept``).
    faint_distance_px : ndarray of float64
        Distance of each of those pairs in pixels.
    """

    predicted_kept: NDArray[np.bool_]
    truth_kept: NDArray[np.bool_]
    predicted_index: NDArray[np.intp]
    truth_index: NDArray[np.intp]
    distance_px: NDArray[np.float64]
    radius_px: float
    faint_kept: NDArray[np.bool_]
    faint_predicted_index: NDArray[np.intp]
    faint_index: NDArray[np.intp]
    faint_distance_px: NDArray[np.float64]


def _positive(value: float, name: str, image_id: str, *, allow_zero: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        need = "a non-negative" if allow_zero else "a positive"
        raise InputError(f"image {image_id!r}: {name} must be {need} finite number, got {value!r}")
    return number


def _image_shape(image_shape: Sequence[int], image_id: str) -> tuple[int, int]:
    try:
        dims = tuple(float(d) for d in image_shape)
    except (TypeError, ValueError):
        dims = ()
    if len(dims) != 2 or not all(d.is_integer() and d >= 1 for d in dims):
        raise InputError(
            f"image {image_id!r}: image_shape must be (rows, cols) positive integers, "
            f"got {image_shape!r}"
        )
    return int(dims[0]), int(dims[1])


def _inside(
    points: NDArray[np.float64], shape: tuple[int, int], border: float
) -> NDArray[np.bool_]:
    rows, cols = shape
    x, y = points[:, 0], points[:, 1]
    return (x >= border) & (x <= cols - 1 - border) & (y >= border) & (y <= rows - 1 - border)


def matched_pairs(
    predicted: ArrayLike,
    truth: ArrayLike,
    *,
    pixel_size: float,
    image_shape: Sequence[int],
    image_id: str,
    radius_angstrom: float = 0.5,
    border_px: float = 6.0,
    mode: ScoringMode = "one-to-one",
    faint: ArrayLike | None = None,
) -> MatchedPairs:
    """Validate the inputs, exclude the edge and pair predictions with columns.

    The parameters are those of :func:`~stembench.scoring.score_image`. Use it to draw failure
    pictures: true positives are ``predicted_index``, false positives the kept predictions not
    in it, missed columns the kept columns not in ``truth_index``.

    Parameters
    ----------
    predicted : array_like, shape (P, 2)
        Predicted positions in pixels (x = column, y = row).
    truth : array_like, shape (T, 2)
        Ground-truth positions in pixels (x = column, y = row).
    pixel_size : float
        Pixel size in angstrom per pixel.
    image_shape : (int, int)
        Image shape as (rows, cols), for the edge margin and the pixel count.
    image_id : str
        Image id, named in error messages.
    radius_angstrom : float, optional
        Match radius in angstrom; default 0.5.
    border_px : float, optional
        Edge margin in pixels; default 6.
    mode : {"one-to-one", "legacy"}, optional
        Matching rule (see :mod:`stembench.scoring`); default ``"one-to-one"``.
    faint : array_like, shape (M, 2), optional
        Faint columns in pixels, "don't care"; default none.

    Raises
    ------
    InputError
        On bad coordinates, pixel size, radius, border, image shape or mode, or more
        predictions than pixels; the message names the image.
    """
    if mode not in _MODES:
        raise InputError(f"image {image_id!r}: mode must be one of {_MODES}, got {mode!r}")
    pixel = _positive(pixel_size, "pixel size (A/px)", image_id)
    radius = _positive(radius_angstrom, "radius_angstrom", image_id)
    border = _positive(border_px, "border_px", image_id, allow_zero=True)
    shape = _image_shape(image_shape, image_id)
    if 2 * border > min(shape) - 1:
        raise InputError(
            f"image {image_id!r}: border_px={border} leaves no scored region in an image "
            f"of shape {shape}"
        )
    pred = validate_coordinates(predicted, name="predictions", image_id=image_id)
    true = validate_coordinates(truth, name="ground truth", image_id=image_id)
    if pred.shape[0] > shape[0] * shape[1]:
        raise InputError(
            f"image {image_id!r}: {pred.shape[0]} predictions for an image of "
            f"{shape[0]}x{shape[1]} = {shape[0] * shape[1]} pixels"
        )
    faint_px = validate_coordinates([] if faint is None else faint, name="faint columns",
                                    image_id=image_id)
    truth_kept = _inside(true, shape, border)
    faint_kept = _inside(faint_px, shape, border)
    p_idx, t_idx, radius_px = _pair(pred, true, mode, radius / pixel)
    pred_kept = _prediction_scope(pred, shape, border, p_idx, truth_kept[t_idx])
    in_scope = truth_kept[t_idx]
    p_idx, t_idx = p_idx[in_scope], t_idx[in_scope]
    left = np.setdiff1d(np.arange(len(pred)), p_idx)
    fp_idx, f_idx, _ = _pair(pred[left], faint_px, mode, radius / pixel)
    fp_idx = left[fp_idx]
    pred_kept[fp_idx] = False  # on a faint column: neither a true nor a false positive
    on_kept = faint_kept[f_idx]
    return MatchedPairs(pred_kept, truth_kept, p_idx, t_idx, _distance(pred, true, p_idx, t_idx),
                        radius_px, faint_kept, fp_idx[on_kept], f_idx[on_kept],
                        _distance(pred, faint_px, fp_idx[on_kept], f_idx[on_kept]))


def _pair(pred: NDArray[np.float64], true: NDArray[np.float64], mode: str,
          radius_px: float) -> tuple[NDArray[np.intp], NDArray[np.intp], float]:
    """Pairs (prediction, column) by the mode's rule, and the tolerance applied in px."""
    if mode == "legacy":
        tolerance_px2 = float(np.round(radius_px**2, 1))
        p_idx, t_idx = pairs_below(pred, true, squared_distance_px2=tolerance_px2)
        return p_idx, t_idx, math.sqrt(tolerance_px2)
    m = match_positions(pred, true, max_distance_px=radius_px)
    return m.predicted_index, m.truth_index, radius_px


def _distance(pred: NDArray[np.float64], true: NDArray[np.float64], p_idx: NDArray[np.intp],
              t_idx: NDArray[np.intp]) -> NDArray[np.float64]:
    delta = pred[p_idx] - true[t_idx]
    return np.asarray(np.hypot(delta[:, 0], delta[:, 1]), dtype=np.float64)


def _prediction_scope(
    pred: NDArray[np.float64], shape: tuple[int, int], border: float,
    paired_prediction: NDArray[np.intp], pair_truth_kept: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """Which predictions are scored: those paired with a scored column, and unpaired ones
    inside the border; a prediction paired only with an excluded column is not scored."""
    kept = _inside(pred, shape, border)
    kept[paired_prediction] = False
    kept[paired_prediction[pair_truth_kept]] = True
    return kept
