"""Failure pictures: where a model found, missed and invented atomic columns on one image.

Ground-truth columns are open circles; predictions matched to a column (true positives) are
filled dots; unmatched predictions (false positives) are red crosses; unmatched columns
(missed, false negatives) are orange squares. The matching is an input (index arrays from the
scorer), so this module does not score anything itself; the title's numbers come from the
matching unless the caller passes the scorer's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from stembench.errors import InputError
from stembench.validation import validate_coordinates, validate_image

__all__ = ["plot_failure"]


def _matched_indices(
    indices: ArrayLike, *, size: int, name: str, image_id: str
) -> NDArray[np.intp]:
    array = np.asarray(indices)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise InputError(
            f"image {image_id!r}: {name} must be a 1-D integer array, got shape {array.shape} "
            f"and dtype {array.dtype}"
        )
    array = array.astype(np.intp)
    if array.size and (array.min() < 0 or array.max() >= size):
        raise InputError(
            f"image {image_id!r}: {name} holds indices outside [0, {size}), "
            f"got range [{array.min()}, {array.max()}]"
        )
    if np.unique(array).size != array.size:
        raise InputError(f"image {image_id!r}: {name} repeats an index; matching is one-to-one")
    return array


def _title(image_id: str, model: str | None, scores: Mapping[str, float]) -> str:
    head = f"{image_id}" + (f" — {model}" if model else "")
    parts = [f"recall {scores['recall']:.3f}", f"precision {scores['precision']:.3f}"]
    rms = scores.get("rms_angstrom")
    if rms is not None and np.isfinite(rms):
        parts.append(f"RMS {rms:.3f} Å")
    return head + "\n" + ", ".join(parts)


def plot_failure(
    image: ArrayLike,
    truth: ArrayLike,
    predicted: ArrayLike,
    *,
    matched_truth_index: ArrayLike,
    matched_predicted_index: ArrayLike,
    image_id: str = "image",
    model: str | None = None,
    pixel_size: float | None = None,
    scores: Mapping[str, Any] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draw one image with its ground truth, true positives, false positives and misses.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        The image the model saw.
    truth, predicted : array_like, shape (N, 2) and (M, 2)
        Ground-truth and predicted positions, x (column), y (row) in pixels.
    matched_truth_index, matched_predicted_index : array_like of int, shape (K,)
        Pair ``k`` matches ``truth[matched_truth_index[k]]`` to
        ``predicted[matched_predicted_index[k]]``.
    image_id : str, optional
        Image id, used in the title and in error messages.
    model : str, optional
        Model name for the title.
    pixel_size : float, optional
        Angstrom per pixel; with it the title shows the RMS of matched pairs in angstrom.
    scores : mapping, optional
        ``recall``, ``precision`` and optionally ``rms_angstrom`` to show instead of values
        computed from the matching (pass the scorer's, which exclude border columns).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; by default a new figure is made.

    Returns
    -------
    matplotlib.figure.Figure
        Artists carry ``gid`` ``"truth"``, ``"true positive"``, ``"false positive"`` and
        ``"missed"``.

    Raises
    ------
    InputError
        On an image that is not 2-D, real and finite, bad coordinates, or a matching that
        is not one-to-one, has unequal lengths or indexes outside the arrays.
    """
    picture = validate_image(image, name=f"image {image_id!r}")
    true_xy = validate_coordinates(truth, name="ground truth", image_id=image_id)
    pred_xy = validate_coordinates(predicted, name="predictions", image_id=image_id)
    truth_index = _matched_indices(
        matched_truth_index, size=len(true_xy), name="matched_truth_index", image_id=image_id
    )
    pred_index = _matched_indices(
        matched_predicted_index,
        size=len(pred_xy),
        name="matched_predicted_index",
        image_id=image_id,
    )
    if truth_index.size != pred_index.size:
        raise InputError(
            f"image {image_id!r}: matched_truth_index has {truth_index.size} entries but "
            f"matched_predicted_index has {pred_index.size}"
        )
    missed = np.setdiff1d(np.arange(len(true_xy)), truth_index)
    false = np.setdiff1d(np.arange(len(pred_xy)), pred_index)
    if scores is None:
        distances = np.linalg.norm(true_xy[truth_index] - pred_xy[pred_index], axis=1)
        scores = {
            "recall": truth_index.size / len(true_xy) if len(true_xy) else float("nan"),
            "precision": pred_index.size / len(pred_xy) if len(pred_xy) else float("nan"),
            "rms_angstrom": float(np.sqrt(np.mean(distances**2)) * pixel_size)
            if pixel_size is not None and distances.size
            else float("nan"),
        }
    if ax is None:
        figure = Figure(figsize=(7.0, 7.4), layout="constrained")
        ax = figure.add_subplot()
    else:
        figure = ax.get_figure(root=True)  # type: ignore[assignment]
    ax.imshow(picture, cmap="gray", interpolation="nearest")
    ax.scatter(
        true_xy[:, 0],
        true_xy[:, 1],
        s=90,
        facecolors="none",
        edgecolors="#00d5ff",
        linewidths=1.3,
        label=f"ground truth ({len(true_xy)})",
        gid="truth",
    )
    ax.scatter(
        pred_xy[pred_index, 0],
        pred_xy[pred_index, 1],
        s=14,
        color="#39ff14",
        label=f"true positive ({pred_index.size})",
        gid="true positive",
    )
    ax.scatter(
        pred_xy[false, 0],
        pred_xy[false, 1],
        s=70,
        marker="x",
        color="#ff2a2a",
        linewidths=2,
        label=f"false positive ({false.size})",
        gid="false positive",
    )
    ax.scatter(
        true_xy[missed, 0],
        true_xy[missed, 1],
        s=140,
        marker="s",
        facecolors="none",
        edgecolors="#ff9f1c",
        linewidths=2,
        label=f"missed ({missed.size})",
        gid="missed",
    )
    ax.set_xlim(-0.5, picture.shape[1] - 0.5)
    ax.set_ylim(picture.shape[0] - 0.5, -0.5)
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=9, frameon=False)
    ax.set_title(_title(image_id, model, scores), fontsize=11)
    return figure
