"""One cutoff per series, with its doubt.

The report leads with one method, :data:`LEAD_METHOD` (PCHIP), for the reason in
:data:`LEAD_REASON`. The other method (the fitted logistic, or its linear fallback) is kept
as a check: a cutoff is flagged *unstable* when

* the two methods place it more than :data:`DISAGREEMENT_TOLERANCE` of the tested range
  apart (positions along the range: a crossing where it lies, "not reached" at the worse end,
  "fails from start" at the clean end), or
* the series is not monotonic with respect to the criteria: after the per-step means first
  fail, a later, worse step passes again, so the cutoff depends on which crossing one takes.

Every series carries its per-step means (over seeds, failed images included), so a reader
can judge a flagged cutoff.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from stembench.client.analysis.axes import AXES, Axis
from stembench.client.analysis.cutoffs import CRITERIA, DEFAULT_CRITERIA, Cutoff, CutoffCriteria

__all__ = [
    "DISAGREEMENT_TOLERANCE",
    "LEAD_METHOD",
    "LEAD_REASON",
    "SeriesCutoff",
    "StepMean",
    "series_cutoffs",
]

LEAD_METHOD = "pchip"
"""The method whose cutoff the report leads with."""

LEAD_REASON = (
    "PCHIP interpolates the measured per-step means and never overshoots between them, so its "
    "cutoff always lies between the last step that passes and the first that fails; the "
    "logistic fit assumes every curve is one smooth step (and falls back to a straight line "
    "on short or flat series), which can put the crossing far from any measured step."
)
"""Why :data:`LEAD_METHOD` leads."""

DISAGREEMENT_TOLERANCE = 0.10
"""Largest distance between the two methods' cutoffs, as a fraction of the tested range."""

_FIELDS = {"recall": "recall", "precision": "precision", "rms": "rms_angstrom"}


@dataclass(frozen=True)
class StepMean:
    """Means over the images (seeds) of one step; NaN where no image has a value."""

    axis_value: float
    recall: float
    precision: float
    rms_angstrom: float
    n_images: int
    n_failed: int


@dataclass(frozen=True)
class SeriesCutoff:
    """The cutoff of one model on one series, by the lead method, with its doubt.

    Attributes
    ----------
    lead : Cutoff
        The cutoff by :data:`LEAD_METHOD`.
    check : Cutoff or None
        The same cutoff by the other method, if computed.
    unstable : bool
        True when a reason below applies.
    reasons : tuple of str
        Why the cutoff is unstable (empty when it is not).
    steps : tuple of StepMean
        Per-step means, clean end first.
    """

    lead: Cutoff
    check: Cutoff | None
    unstable: bool
    reasons: tuple[str, ...]
    steps: tuple[StepMean, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN left for :func:`~.records.json_safe`)."""
        lead = self.lead
        return {"model": lead.model, "group": lead.group, "axis": lead.axis,
                "method": lead.method, "status": lead.status, "value": lead.value,
                "criterion": lead.criterion, "interval": lead.to_dict()["interval"],
                "check_method": None if self.check is None else self.check.method,
                "check_status": None if self.check is None else self.check.status,
                "check_value": None if self.check is None else self.check.value,
                "unstable": self.unstable, "reasons": list(self.reasons),
                "n_images": lead.n_images, "n_failed": lead.n_failed,
                "steps": [asdict(step) for step in self.steps]}


def _position(cutoff: Cutoff) -> float:
    """Where a cutoff lies along its tested range: 0 = clean end, 1 = worse end."""
    axis = AXES[cutoff.axis]
    if cutoff.status == "fails from start":
        return 0.0
    if cutoff.status == "not reached" or cutoff.value is None:
        return 1.0
    clean, worse = (axis.badness(v) for v in cutoff.tested_range)
    return (axis.badness(cutoff.value) - clean) / (worse - clean) if worse != clean else 1.0


def _steps(records: Sequence[Mapping[str, Any]], axis: Axis) -> tuple[StepMean, ...]:
    by_step: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        if np.isfinite(record["axis_value"]):  # the noise-free reference has no axis position
            by_step[record["step"]].append(record)
    steps = []
    for members in by_step.values():
        means = []
        for field in _FIELDS.values():
            values = np.array([r[field] for r in members], dtype=np.float64)
            means.append(float(values[np.isfinite(values)].mean()) if np.isfinite(values).any()
                         else float("nan"))
        recall, precision, rms = means
        steps.append(StepMean(float(np.mean([r["axis_value"] for r in members])), recall,
                              precision, rms, n_images=len(members),
                              n_failed=sum(bool(r.get("failed")) for r in members)))
    return tuple(sorted(steps, key=lambda s: axis.badness(s.axis_value)))


def _recrossing(steps: Sequence[StepMean], criteria: CutoffCriteria) -> str | None:
    """Why the per-step means are not monotonic with respect to the criteria, or None."""
    for criterion, field in zip(CRITERIA, _FIELDS.values(), strict=True):
        threshold = criteria.threshold(criterion)
        sign = 1.0 if criteria.fails_below(criterion) else -1.0
        margins = [(s.axis_value, sign * (getattr(s, field) - threshold)) for s in steps
                   if np.isfinite(getattr(s, field))]
        failing = [i for i, (_, margin) in enumerate(margins) if margin < 0]
        if failing and any(margin >= 0 for _, margin in margins[failing[0] + 1:]):
            again = next(v for v, margin in margins[failing[0] + 1:] if margin >= 0)
            return (f"not monotonic: mean {criterion} fails at {margins[failing[0]][0]:.4g} "
                    f"and passes again at {again:.4g}")
    return None


def series_cutoffs(
    cutoffs: Iterable[Cutoff],
    records: Iterable[Mapping[str, Any]],
    *,
    criteria: CutoffCriteria = DEFAULT_CRITERIA,
    tolerance: float = DISAGREEMENT_TOLERANCE,
) -> list[SeriesCutoff]:
    """One cutoff per (model, group, series) by :data:`LEAD_METHOD`, flagged when in doubt.

    Parameters
    ----------
    cutoffs : iterable of Cutoff
        Output of :func:`~stembench.client.analysis.compute_cutoffs` (both methods).
    records : iterable of mapping
        The validated score records the cutoffs came from (for the per-step means).
    criteria : CutoffCriteria, optional
        The thresholds the cutoffs used.
    tolerance : float, optional
        Largest distance between the methods' cutoffs, as a fraction of the tested range.

    Returns
    -------
    list of SeriesCutoff
        In the order of the lead cutoffs.
    """
    by_curve: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        by_curve[(record["model"], record["group"], record["series"])].append(record)
    all_cutoffs = list(cutoffs)
    checks = {(c.model, c.group, c.axis): c for c in all_cutoffs if c.method != LEAD_METHOD}
    result = []
    for lead in (c for c in all_cutoffs if c.method == LEAD_METHOD):
        key = (lead.model, lead.group, lead.axis)
        check = checks.get(key)
        steps = _steps(by_curve[key], AXES[lead.axis])
        reasons = []
        if check is not None and abs(_position(lead) - _position(check)) > tolerance:
            reasons.append(f"methods disagree by more than {tolerance:.0%} of the tested range: "
                           f"{_describe(lead)} by {lead.method}, {_describe(check)} by "
                           f"{check.method}")
        if (recrossing := _recrossing(steps, criteria)) is not None:
            reasons.append(recrossing)
        result.append(SeriesCutoff(lead, check, bool(reasons), tuple(reasons), steps))
    return result


def _describe(cutoff: Cutoff) -> str:
    return f"{cutoff.value:.4g}" if cutoff.status == "crossed" and cutoff.value is not None \
        else cutoff.status
