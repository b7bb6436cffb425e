"""Assess an image by its twin: fit, plan, render and score where the models run, predict."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stembench.client.assess.assessment import Assessment
from stembench.client.assess.twin.fit import TwinFit, fit_twin, limitations
from stembench.client.assess.twin.likeness import (
    MAX_MISSING,
    MAX_UNEXPLAINED,
    Likeness,
    likeness,
)
from stembench.client.assess.twin.predict import (
    AXIS_UNITS,
    NONE_SCORED,
    ModelPrediction,
    not_scored,
    predict,
    recommendation,
)
from stembench.client.assess.twin.score import ModelChoice, TwinScores, score_on_twins
from stembench.client.orchestrate import Target
from stembench.dataset_publish.simulate.twin import TwinVariant, render_twin
from stembench.dataset_publish.simulate.twin_plan import twin_plan

__all__ = ["TwinAssessment", "assess_by_twin", "twin_axis_values"]


@dataclass(frozen=True)
class TwinAssessment:
    """Everything the twin assessment found.

    Attributes
    ----------
    fit : TwinFit
        The fitted column model and its diagnostics.
    plan : list of TwinVariant
        The rendered images.
    scores : TwinScores
        Every model's score records on them.
    predictions : list of ModelPrediction
        Ranked best first.
    recommended : str or None
        The recommended model, if any is reliable.
    verdict : str
        One sentence: the recommendation, that none is reliable, or (the twin being no
        likeness of the image) why there is no prediction.
    limitations : list of str
        What the fitted model cannot represent in this image.
    likeness : Likeness
        How well the twin resembles the image; past its threshold nothing is scored and
        ``predictions`` is empty.
    not_scored : dict of str to str
        Models that could not be scored (:func:`~stembench.client.assess.twin.predict.
        not_scored`), each with its one-line reason.
    """

    fit: TwinFit
    plan: list[TwinVariant]
    scores: TwinScores
    predictions: list[ModelPrediction]
    recommended: str | None
    verdict: str
    limitations: list[str]
    likeness: Likeness
    not_scored: dict[str, str] = field(default_factory=dict)

    @property
    def none_scored(self) -> bool:
        """Whether models were to be scored and none could be (a failed run, no verdict)."""
        return bool(self.not_scored) and not self.predictions

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: the model's parameters, every prediction and every score record."""
        model = self.fit.model
        return {
            "model": {"n_columns": len(model.xy_px), "n_labelled": int(model.labelled.sum()),
                      "sigma_px": float(model.sigma_px[0]),
                      "resolution_pm": model.resolution_pm, "gain": model.gain,
                      "read_variance": model.read_variance, "flyback_px": model.flyback_px,
                      "drift_px_per_line": model.drift_px_per_line,
                      "uncertainty": model.uncertainty,
                      "axis_values": _clean(twin_axis_values(self.fit)),
                      "closest_pair_widths": self.fit.closest_pair_widths,
                      "unmodelled_fraction": float(self.fit.unmodelled.mean())},
            "likeness": {"unexplained": _clean(self.likeness.unexplained),
                         "max_unexplained": MAX_UNEXPLAINED, "chi2": _clean(self.likeness.chi2),
                         "missing": self.likeness.missing, "max_missing": MAX_MISSING,
                         "missing_xy_px": self.likeness.missing_xy.tolist(),
                         "resembles": self.likeness.ok},
            "columns_xy_px": np.round(model.xy_px, 3).tolist(),
            "plan": [{k: _clean(v) for k, v in vars(v).items()} for v in self.plan],
            "axis_units": AXIS_UNITS,
            "predictions": [p.to_dict() for p in self.predictions],
            "not_scored": self.not_scored,
            "recommended": self.recommended,
            "verdict": self.verdict,
            "limitations": self.limitations,
            "dataset_path": self.scores.dataset_path,
            "dataset_kept": self.scores.kept,
            "failed_shards": self.scores.failed_shards,
            "records": {m: [{k: _clean(v) for k, v in r.items() if k != "coordinates"}
                            for r in rows] for m, rows in self.scores.records.items()},
        }


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def twin_axis_values(fit: TwinFit) -> dict[str, float]:
    """The twin's value on each series axis (units of :data:`AXIS_UNITS`)."""
    from stembench.dataset_publish.simulate.twin_plan import (
        atoms_per_100px,
        model_contrast,
        twin_dose,
    )

    model = fit.model
    return {"pixel_size": atoms_per_100px(model), "resolution": model.resolution_pm,
            "noise": twin_dose(model),
            "contrast": model_contrast(model), "flyback": model.flyback_px,
            "drift": model.drift_px_per_line}


def assess_by_twin(image: NDArray[np.floating], *, pixel_size: float, assessment: Assessment,
                   models: Sequence[ModelChoice], targets: Sequence[Target],
                   results_dir: str | Path, n_twins: int = 4, series: bool = True,
                   progress: Callable[[str], None] | None = None,
                   lanes: Mapping[str, int] | None = None,
                   task_deadline_s: float | None = 900.0) -> TwinAssessment:
    """Fit the image's twin, score ``models`` on its renderings and rank them.

    When the twin is no likeness of the image (:mod:`~stembench.client.assess.twin.likeness`)
    nothing is scored: no predictions, no recommendation, and the verdict says why.

    Parameters
    ----------
    image : ndarray
        The image.
    pixel_size : float
        A/px.
    assessment : Assessment
        Its quality assessment (distortion and uncertainties).
    models : sequence of ModelChoice
        Models to score.
    targets : sequence of Target
        Where the twins are rendered and scored (local pool or an endpoint).
    results_dir : path-like
        Folder for the results files.
    n_twins : int
        Twins at the estimated quality.
    series : bool
        Also render and score the series that degrade each axis (the margins).
    progress : callable, optional
        Called with a short message before each stage.
    lanes : mapping of str to int, optional
        Model spec -> the index of the target its shards go to (see
        :func:`stembench.client.lanes.local_lanes`).
    task_deadline_s : float or None
        Seconds each task (the render, a shard) may take from submission to result.
    """
    say = progress or (lambda _msg: None)
    say("fitting the twin")
    fit = fit_twin(image, pixel_size=pixel_size, assessment=assessment, name=assessment.name)
    plan = twin_plan(fit.model, n_twins=n_twins, series=series)
    like = likeness(fit, image)
    if not like.ok:  # scores on a twin that is no likeness would describe another image
        return TwinAssessment(fit, plan, TwinScores({}, {}, ""), [], None, like.refusal(),
                              limitations(fit), like)
    say(f"scoring {len(models)} model(s) on {len(plan)} twin image(s)")
    scores = score_on_twins(fit.model, plan, models, targets=targets, results_dir=results_dir,
                            lanes=lanes, task_deadline_s=task_deadline_s)
    predictions = predict(scores.records, twin_values=twin_axis_values(fit))
    failed = not_scored(scores.records, scores.failed_shards, scores.errors)
    recommended, verdict = recommendation(predictions)
    if failed:
        verdict = NONE_SCORED if not predictions else \
            f"{verdict}; not scored: {', '.join(failed)}"
    return TwinAssessment(fit, plan, scores, predictions, recommended, verdict,
                          limitations(fit), like, failed)


def reference_twin(result: TwinAssessment) -> NDArray[np.float32]:
    """The first twin at the estimated quality, rendered again here (for the pictures)."""
    return render_twin(result.fit.model, result.plan[0]).image
