"""From twin scores to predictions: each model's expected scores, margins and a ranking.

* **Prediction**: the mean of each score over the twins at the estimated quality, with the
  interval from the lowest to the highest twin (the twins differ by seed and by the
  estimate's uncertainty, sampled).
* **Reliable**: the benchmark's criteria (recall >= 0.90, precision >= 0.95, RMS <= 0.30 A;
  :data:`~stembench.client.analysis.cutoffs.DEFAULT_CRITERIA`) hold on every twin.
* **Margin** on an axis: how far the axis can get worse from the twin's value before the
  model fails the criteria, read off the series (the first twin is its step 0): the
  crossing of the worst criterion's slack, linearly interpolated between the last passing
  and the first failing step; ``None`` beyond the last step (not reached), 0 when the model
  fails at the twin's quality already.
* **Ranking**: by predicted F1, then precision.
* **Headroom** (:func:`headroom`): the mean, over the series' axes, of the share of each
  series' steps the model passes before it fails (1: the whole series; 0: it fails at the
  twin's quality already; 0 without a series), read in steps (interpolated like the margin)
  so that every axis counts alike whatever its unit and whatever the twin's own value.
* **Recommendation**: the best-ranked reliable model, unless other reliable models are tied
  with it on the twins (the highest twin F1 of one reaches the lowest of the best-ranked): the
  twins cannot tell those apart, so the one with the most headroom is recommended (the
  likeliest to hold on an image a little worse than its twin; equal headroom keeps the
  ranking's order). None when no model is reliable.
* **Not scored**: a model with no score record of a twin at the estimated quality, or whose
  every such twin failed (it could not load where it ran, its shards were lost, the twins'
  file was not readable there), is not ranked: :func:`not_scored` gives its one-line reason.
  That is a failure of the run, never a verdict on the model; when no model could be scored
  there is no verdict at all (:data:`NONE_SCORED`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from stembench.client.analysis.cutoffs import DEFAULT_CRITERIA
from stembench.dataset_publish.simulate.twin_plan import SERIES_STEPS

__all__ = ["AXIS_UNITS", "NONE_RELIABLE", "NONE_SCORED", "AxisMargin", "ModelPrediction",
           "first_error", "headroom", "not_scored", "predict", "recommendation"]

#: Unit of each series' axis value.
AXIS_UNITS = {"pixel_size": "atoms/100 px", "resolution": "pm", "noise": "e-/A^2",
              "contrast": "", "flyback": "px", "drift": "px/line"}
#: What assess says when no model meets the criteria on the twins.
NONE_RELIABLE = "none of these models is reliable here"
#: What assess says when no model could be scored (a failed run, not a verdict).
NONE_SCORED = ("no model could be scored on the twins (a failure of the run, not a verdict on "
               "the models)")
_METRICS = ("recall", "precision", "f1", "rms_angstrom")


@dataclass(frozen=True)
class AxisMargin:
    """How far one axis may get worse before the model fails.

    Attributes
    ----------
    axis : str
        Series name.
    twin_value : float
        The twin's value on the axis (units :data:`AXIS_UNITS`).
    failure_value : float or None
        Axis value where the model fails; ``None`` if it passes the whole series.
    margin : float or None
        ``failure_value - twin_value`` (signed toward worse); ``None`` if not reached.
    last_value : float
        The worst value tried.
    failure_step : float or None
        Where on the series the model fails, in steps (0: at the twin's quality; between the
        last passing step and the first failing one, interpolated as ``failure_value`` is);
        ``None`` if it passes the whole series.
    n_steps : int
        The series' steps after the twin.
    """

    axis: str
    twin_value: float
    failure_value: float | None
    margin: float | None
    last_value: float
    failure_step: float | None
    n_steps: int


@dataclass(frozen=True)
class ModelPrediction:
    """A model's predicted scores on the image, from its twins (``first_error``: why its first
    failed twin image failed, on one line; empty when none failed)."""

    model: str
    mean: dict[str, float]
    low: dict[str, float]
    high: dict[str, float]
    reliable: bool
    n_twins: int
    n_failed_images: int
    margins: tuple[AxisMargin, ...]
    first_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN as None)."""
        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        return dict(clean(asdict(self)))


def _slack(record: Mapping[str, Any]) -> float:
    """Worst criterion's slack (>= 0 passes): recall, precision, RMS, each normalised."""
    c = DEFAULT_CRITERIA
    recall = float(record.get("recall") or 0.0)
    precision = record.get("precision")
    rms = record.get("rms_angstrom")
    parts = [(recall - c.recall_min) / (1.0 - c.recall_min)]
    parts.append(-1.0 if precision is None or not math.isfinite(precision)
                 else (float(precision) - c.precision_min) / (1.0 - c.precision_min))
    if rms is not None and math.isfinite(rms):
        parts.append((c.rms_max_angstrom - float(rms)) / c.rms_max_angstrom)
    return min(parts)


def _axis_value(record: Mapping[str, Any]) -> float:
    """The record's value on its series axis; NaN where the image has none (recorded as null)."""
    value = record.get("axis_value")
    return math.nan if value is None else float(value)


def _margin(axis: str, reference: Sequence[Mapping[str, Any]],
            series: Sequence[Mapping[str, Any]], twin_value: float) -> AxisMargin:
    points = [(twin_value, float(np.mean([_slack(r) for r in reference])))]
    points += [(_axis_value(r), _slack(r))
               for r in sorted(series, key=lambda r: int(r.get("step") or 0))]
    last = points[-1][0]
    steps = len(points) - 1
    if points[0][1] < 0:
        return AxisMargin(axis, twin_value, twin_value, 0.0, last, 0.0, steps)
    for step, ((v0, s0), (v1, s1)) in enumerate(itertools.pairwise(points)):
        if s1 < 0:
            fraction = s0 / (s0 - s1)
            fail = v1 if not (math.isfinite(v0) and math.isfinite(v1)) else \
                v0 + (v1 - v0) * fraction
            return AxisMargin(axis, twin_value, fail, fail - twin_value, last, step + fraction,
                              steps)
    return AxisMargin(axis, twin_value, None, None, last, None, steps)


def predict(records: Mapping[str, Sequence[Mapping[str, Any]]], *,
            twin_values: Mapping[str, float]) -> list[ModelPrediction]:
    """Predictions of every model, ranked best first (see the module docstring).

    Parameters
    ----------
    records : mapping of str to sequence of dict
        Model -> its score records on the twins (``series`` ``"reference"`` for the twins
        at the estimated quality, else the axis of a series).
    twin_values : mapping of str to float
        The twin's value on each series' axis.
    """
    out = []
    for model, rows in records.items():
        reference = [r for r in rows if r.get("series") == "reference"]
        if not reference or all(r.get("failed") for r in reference):
            continue  # not scored (see not_scored)
        values = {m: np.array([np.nan if r.get(m) is None else float(r[m]) for r in reference])
                  for m in _METRICS}

        def stat(fn: Any, values: dict[str, Any] = values) -> dict[str, float]:
            return {m: float(fn(v)) if np.isfinite(v).any() else math.nan
                    for m, v in values.items()}

        reliable = all(_slack(r) >= 0 for r in reference) and not any(
            r.get("failed") for r in reference)
        margins = tuple(_margin(axis, reference, [r for r in rows if r.get("series") == axis],
                                float(twin_values.get(axis, math.nan)))
                        for axis in SERIES_STEPS if any(r.get("series") == axis for r in rows))
        out.append(ModelPrediction(model, stat(np.nanmean), stat(np.nanmin), stat(np.nanmax),
                                   reliable, len(reference),
                                   sum(bool(r.get("failed")) for r in rows), margins,
                                   first_error(rows)))
    return sorted(out, key=lambda p: (-_finite(p.mean["f1"]), -_finite(p.mean["precision"])))


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def first_error(rows: Sequence[Mapping[str, Any]]) -> str:
    """The first failed record's ``error``, on one line (``""`` when none failed).

    Parameters
    ----------
    rows : sequence of dict
        Score records.
    """
    for row in rows:
        if row.get("failed") and row.get("error"):
            return " ".join(str(row["error"]).split())
    return ""


def not_scored(records: Mapping[str, Sequence[Mapping[str, Any]]],
               failed_shards: Mapping[str, Mapping[str, str]],
               errors: Mapping[str, str] | None = None) -> dict[str, str]:
    """The models :func:`predict` cannot rank, each with a one-line reason.

    Parameters
    ----------
    records : mapping of str to sequence of dict
        Model -> its score records on the twins.
    failed_shards : mapping of str to mapping of str to str
        Model -> its shards that failed after their retries -> why.
    errors : mapping of str to str, optional
        Model -> why it could not be evaluated at all.
    """
    out = {model: " ".join(reason.split()) for model, reason in (errors or {}).items()}
    for model in dict.fromkeys([*records, *failed_shards]):
        rows = records.get(model, [])
        reference = [r for r in rows if r.get("series") == "reference"]
        if reference and not all(r.get("failed") for r in reference):
            continue
        reasons = list((failed_shards.get(model) or {}).values())
        reason = " ".join(reasons[0].split()) if reasons else first_error(reference)
        out[model] = reason or "no score record came back"
    return out


def headroom(prediction: ModelPrediction) -> float:
    """How far the model keeps meeting the criteria as the image gets worse, 0 to 1.

    The mean over the series' axes of the share of each series' steps that the model passes
    before it fails; see the module docstring.

    Parameters
    ----------
    prediction : ModelPrediction
        A model's prediction, with its margins.

    Examples
    --------
    >>> passes = AxisMargin("drift", 0.0, None, None, 0.2, None, 3)
    >>> fails_midway = AxisMargin("noise", 1000.0, 200.0, -800.0, 33.0, 1.5, 3)
    >>> p = ModelPrediction("m", {}, {}, {}, True, 4, 0, (passes, fails_midway))
    >>> headroom(p)
    0.75
    """
    shares = [1.0 if m.failure_step is None else min(1.0, m.failure_step / max(m.n_steps, 1))
              for m in prediction.margins]
    return float(np.mean(shares)) if shares else 0.0


def recommendation(predictions: Sequence[ModelPrediction]) -> tuple[str | None, str]:
    """The recommended model and the sentence that says so (see the module docstring).

    Parameters
    ----------
    predictions : sequence of ModelPrediction
        The ranked predictions of the scored models.
    """
    reliable = [p for p in predictions if p.reliable]
    if not reliable:
        return None, NONE_RELIABLE
    best = reliable[0]
    tied = [best] + [p for p in reliable[1:] if p.high["f1"] >= best.low["f1"]]
    room = {p.model: headroom(p) for p in tied}
    chosen = max(tied, key=lambda p: room[p.model])  # the first of equal headroom: ranking order
    sentence = (f"recommended: {chosen.model} (predicted F1 {chosen.mean['f1']:.2f}, meets the "
                "benchmark's criteria on every twin")
    others = [p.model for p in tied if p is not chosen]
    if not others:
        return chosen.model, sentence + ")"
    tie = f"{', '.join(others)} {'ties' if len(others) == 1 else 'tie'} with it on the twins"
    rest = max(room[m] for m in others)
    if not any(p.margins for p in tied):
        why = "no series was rendered, so the ranking decides"
    elif room[chosen.model] > rest:
        why = (f"it keeps meeting the criteria furthest as the image gets worse (headroom "
               f"{room[chosen.model]:.3f}, the others' at most {rest:.3f})")
    else:
        why = f"their headroom is equal ({rest:.3f}), so the ranking decides"
    return chosen.model, f"{sentence}; {tie}: {why})"
