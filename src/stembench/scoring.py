"""Per-image scores of predicted column positions against ground truth.

Units: positions in pixels as ``(x, y)`` = ``(column, row)``; pixel size in angstrom per
pixel; the match radius in angstrom. Offsets and RMS distances are reported in both.

Edge handling
-------------
Ground-truth columns closer than ``border_px`` to the image edge, i.e. with
``x < border_px`` or ``x > cols - 1 - border_px`` (same for ``y`` with ``rows``), are not
scored. Predictions and columns are paired over the whole image first, so that the edge
treats both sides alike: a prediction paired with an excluded column is not scored
either (finding a column on the border line is never a false positive), a prediction
paired with a scored column counts as a true positive wherever it lies, and an unpaired
prediction is scored only inside the same margin. Columns cut by the edge are thus
neither counted as missed nor can a prediction be penalised for finding one. The raw
counts are kept as ``n_truth_total`` and ``n_predicted_total``.

Faint and don't-care columns
----------------------------
Columns present but too faint to see (``faint``, see
:mod:`stembench.dataset_publish.simulate.visibility`) are "don't care": after the predictions are
paired with the visible columns, the predictions left over are paired, by the same rule, with
the faint columns; such a prediction is neither a true nor a false positive, and a faint
column without one is not a miss. Faint columns are scored apart, per type, in
``faint_by_type`` (recall there: the fraction of faint columns a left-over prediction found).
Ground-truth columns flagged ``dont_care`` (from a dataset: those whose column type is in
:data:`DONT_CARE_TYPES`, e.g. a label a person marked ``unsure`` in ``stembench label``) are
moved to the faint set before scoring, keeping their type, so one rule covers both.

Modes
-----
``"one-to-one"`` (default)
    A maximum one-to-one matching within ``radius_angstrom`` (inclusive) with the
    smallest total distance (:func:`stembench.matching.match_positions`). TP is the number
    of pairs, FP the unmatched predictions, FN the unmatched columns.
``"legacy"``
    The published rule, reproduced from the authors' analysis code (function
    ``getScores`` in the public analysis utilities of Wei et al., Microsc. Microanal. 29,
    552 (2023); read through the code search index, file id 21154031988, whose repository
    name the index does not expose). There the tolerance is a squared distance in px^2,
    ``np.round((0.5 / pxsize) ** 2, 1)`` with ``pxsize`` in A/px, and *every*
    (prediction, column) pair with squared distance strictly below it is a true positive,
    so two predictions near one column both count and a prediction near two columns
    counts twice. ID-recall = TP / N_truth (can exceed 1), ID-precision = TP / N_predicted,
    RMS over all those pairs. Here ``FP`` and ``FN`` are the predictions and columns
    without any pair. Departures from that code, on purpose: empty cases follow the rules
    below (it returned precision 0 with no predictions and a sentinel RMS of 10 px with
    no TP), and the edge is the same ``border_px`` margin on both sides (it trimmed
    predictions by a fraction of the image size).

Empty cases (after edge exclusion)
----------------------------------
* no columns, no predictions: recall 1.0, precision 1.0;
* predictions but no columns: recall 1.0 (nothing to find), precision 0.0;
* columns but no predictions: recall 0.0, precision 1.0 (no prediction is wrong);
* F1 = 2PR / (P + R), and 0.0 when P + R = 0;
* RMS distances and mean offsets are NaN when nothing matched (``None`` in JSON).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stembench.errors import InputError
from stembench.pairing import MatchedPairs, ScoringMode, matched_pairs
from stembench.scores import ColumnTypeScore, ImageScore
from stembench.validation import validate_coordinates

__all__ = [
    "DONT_CARE_TYPES",
    "SCORER_VERSION",
    "ColumnTypeScore",
    "ImageScore",
    "MatchedPairs",
    "ScoringMode",
    "dont_care_mask",
    "matched_pairs",
    "score_image",
]

SCORER_VERSION = "1.1"


#: Column types that scoring treats as don't care, like faint columns (see the module docstring).
DONT_CARE_TYPES: frozenset[str] = frozenset({"unsure"})


def dont_care_mask(column_types: Sequence[str | bytes]) -> NDArray[np.bool_] | None:
    """Per column: its type is in :data:`DONT_CARE_TYPES`; ``None`` when none is."""
    labels = [t.decode() if isinstance(t, bytes) else t for t in column_types]
    mask = np.array([t in DONT_CARE_TYPES for t in labels], dtype=bool)
    return mask if mask.any() else None


def _rates(tp: int, n_truth: int, n_predicted: int) -> tuple[float, float, float]:
    """Recall, precision and F1 with the empty-case rules of the module docstring."""
    recall = tp / n_truth if n_truth else 1.0
    precision = tp / n_predicted if n_predicted else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return recall, precision, f1


def _rms(distance: NDArray[np.float64]) -> float:
    return float(np.sqrt(np.mean(distance**2))) if distance.size else math.nan


def _move_dont_care(
    dont_care: ArrayLike,
    truth: ArrayLike,
    column_types: Sequence[str | bytes] | NDArray[Any] | None,
    faint: ArrayLike | None,
    faint_types: Sequence[str | bytes] | NDArray[Any] | None,
    image_id: str,
) -> tuple[NDArray[np.float64], NDArray[np.str_] | None, NDArray[np.float64], NDArray[np.str_]]:
    """Move the don't-care columns of ``truth`` to the faint set, keeping their types."""
    true = validate_coordinates(truth, name="ground truth", image_id=image_id)
    mask = np.asarray(dont_care)
    if mask.shape != (len(true),) or mask.dtype != bool:
        raise InputError(f"image {image_id!r}: dont_care must hold one bool per ground-truth "
                         f"column ({len(true)}), got shape {mask.shape} dtype {mask.dtype}")
    faint_px = validate_coordinates([] if faint is None else faint, name="faint columns",
                                    image_id=image_id)
    labels = None if column_types is None else _column_types(column_types, len(true), image_id)
    old_faint = (np.full(len(faint_px), "faint") if faint_types is None or not len(faint_types)
                 else _column_types(faint_types, len(faint_px), image_id))
    moved = labels[mask] if labels is not None else np.full(int(mask.sum()), "unsure")
    return (true[~mask], None if labels is None else labels[~mask],
            np.concatenate([faint_px, true[mask]]), np.concatenate([old_faint, moved]))


def _column_types(
    column_types: Sequence[str | bytes] | NDArray[Any], n_truth: int, image_id: str
) -> NDArray[np.str_]:
    labels = [t.decode() if isinstance(t, bytes) else t for t in column_types]
    if len(labels) != n_truth or not all(isinstance(t, str) for t in labels):
        raise InputError(
            f"image {image_id!r}: column_types must hold one string per ground-truth column "
            f"({n_truth}), got {len(labels)} item(s)"
        )
    return np.asarray(labels, dtype=np.str_)


def _by_type(
    kept: NDArray[np.bool_], index: NDArray[np.intp], distance: NDArray[np.float64],
    labels: NDArray[np.str_], pixel: float
) -> dict[str, ColumnTypeScore]:
    """Per-type scores of columns ``kept``, of which ``index`` were found at ``distance``."""
    out: dict[str, ColumnTypeScore] = {}
    kept_labels = labels[kept]
    matched = np.zeros(labels.size, dtype=bool)
    matched[index] = True
    for name in sorted(set(kept_labels.tolist())):
        of_type = kept & (labels == name)
        pair_of_type = labels[index] == name
        n_truth, tp = int(of_type.sum()), int(pair_of_type.sum())
        rms = _rms(distance[pair_of_type])
        out[name] = ColumnTypeScore(
            n_truth=n_truth,
            tp=tp,
            fn=int((of_type & ~matched).sum()),
            recall=tp / n_truth,
            rms_px=rms,
            rms_angstrom=rms * pixel,
        )
    return out


def score_image(
    predicted: ArrayLike,
    truth: ArrayLike,
    *,
    pixel_size: float,
    image_shape: Sequence[int],
    image_id: str,
    radius_angstrom: float = 0.5,
    border_px: float = 6.0,
    column_types: Sequence[str | bytes] | NDArray[Any] | None = None,
    mode: ScoringMode = "one-to-one",
    faint: ArrayLike | None = None,
    faint_types: Sequence[str | bytes] | NDArray[Any] | None = None,
    dont_care: ArrayLike | None = None,
) -> ImageScore:
    """Score predicted column positions of one image against its ground truth.

    Parameters
    ----------
    predicted : array_like, shape (P, 2)
        Predicted positions in pixels, (x = column, y = row).
    truth : array_like, shape (T, 2)
        Ground-truth positions in pixels, (x = column, y = row).
    pixel_size : float
        Pixel size in angstrom per pixel.
    image_shape : (int, int)
        Image shape as (rows, cols), for the edge margin and the pixel count.
    image_id : str
        Image id, recorded and named in error messages.
    radius_angstrom : float, optional
        Match radius in angstrom (default 0.5 A, the published tolerance).
    border_px : float, optional
        Edge margin in pixels; columns and predictions within it are excluded.
    column_types : sequence of str or bytes, optional
        One type label per ground-truth column, for the per-type breakdown.
    mode : {"one-to-one", "legacy"}
        Matching rule, see the module docstring.
    faint : array_like, shape (M, 2), optional
        Faint columns in pixels: "don't care" (see the module docstring).
    faint_types : sequence of str or bytes, optional
        One type label per faint column; without them the faint columns are typed
        ``"faint"`` in ``faint_by_type``.
    dont_care : array_like of bool, shape (T,), optional
        Ground-truth columns that are don't care: scored as faint columns, typed by
        ``column_types`` (``"unsure"`` without them).

    Returns
    -------
    ImageScore

    Raises
    ------
    InputError
        NaN/inf or wrongly shaped coordinates, a non-positive or non-finite pixel size,
        radius or (negative) border, a bad image shape or mode, more predictions than
        pixels, or column types that do not match the columns; the message names the image.

    Examples
    --------
    >>> truth = [[20.0, 20.0], [40.0, 20.0], [60.0, 20.0]]
    >>> predicted = [[20.1, 19.9], [40.0, 20.2]]  # one column missed
    >>> score = score_image(predicted, truth, pixel_size=0.1, image_shape=(64, 80),
    ...                     image_id="example")
    >>> score.tp, score.fn, score.fp, round(score.recall, 3), score.precision
    (2, 1, 0, 0.667, 1.0)
    """
    if dont_care is not None:
        truth, column_types, faint, faint_types = _move_dont_care(
            dont_care, truth, column_types, faint, faint_types, image_id)
    pairs = matched_pairs(
        predicted,
        truth,
        pixel_size=pixel_size,
        image_shape=image_shape,
        image_id=image_id,
        radius_angstrom=radius_angstrom,
        border_px=border_px,
        mode=mode,
        faint=faint,
    )
    pixel = float(pixel_size)
    pred = validate_coordinates(predicted, name="predictions", image_id=image_id)
    true = validate_coordinates(truth, name="ground truth", image_id=image_id)
    labels = None if column_types is None else _column_types(column_types, len(true), image_id)
    n_faint = len(pairs.faint_kept)
    faint_labels = (np.full(n_faint, "faint") if faint_types is None or not len(faint_types)
                    else _column_types(faint_types, n_faint, image_id))
    n_truth, n_predicted = int(pairs.truth_kept.sum()), int(pairs.predicted_kept.sum())
    tp = int(pairs.predicted_index.size)
    fp = n_predicted - np.unique(pairs.predicted_index).size
    fn = n_truth - np.unique(pairs.truth_index).size
    recall, precision, f1 = _rates(tp, n_truth, n_predicted)
    rms = _rms(pairs.distance_px)
    offset = (
        (pred[pairs.predicted_index] - true[pairs.truth_index]).mean(axis=0)
        if tp
        else np.full(2, math.nan)
    )
    return ImageScore(
        image_id=str(image_id),
        mode=mode,
        scorer_version=SCORER_VERSION,
        pixel_size=pixel,
        radius_angstrom=float(radius_angstrom),
        radius_px=pairs.radius_px,
        border_px=float(border_px),
        n_truth_total=len(true),
        n_predicted_total=len(pred),
        n_truth=n_truth,
        n_predicted=n_predicted,
        tp=tp,
        fp=int(fp),
        fn=int(fn),
        recall=recall,
        precision=precision,
        f1=f1,
        rms_px=rms,
        rms_angstrom=rms * pixel,
        mean_offset_x_px=float(offset[0]),
        mean_offset_y_px=float(offset[1]),
        mean_offset_x_angstrom=float(offset[0]) * pixel,
        mean_offset_y_angstrom=float(offset[1]) * pixel,
        by_type={} if labels is None else _by_type(pairs.truth_kept, pairs.truth_index,
                                                   pairs.distance_px, labels, pixel),
        n_predicted_faint=int(np.unique(pairs.faint_predicted_index).size),
        faint_by_type=_by_type(pairs.faint_kept, pairs.faint_index, pairs.faint_distance_px,
                               faint_labels, pixel),
    )
