"""Cutoffs: the axis value at which a model stops meeting the benchmark's criteria.

For each model, data group and quality axis the per-step means over seeds of recall,
precision and RMS are walked from the clean end of the axis toward its worse end. The cutoff
is the first axis value at which recall falls below ``recall_min``, precision below
``precision_min`` or RMS rises above ``rms_max_angstrom`` (whichever happens first; ties go
to recall, then precision, then RMS). Crossings are found by PCHIP interpolation of the
per-step means (method ``"pchip"``) and by a fitted logistic curve with a linear fallback
(method ``"sigmoid"`` or ``"linear"``). Noisy, non-monotone curves count their first crossing
from the clean end (see :mod:`stembench.client.analysis.crossing`).

Images a model failed on are in the records, scored as finding nothing (recall 0), so they
count in the per-step means like any other image; each cutoff says how many images its curve
covers and how many of them failed.

The uncertainty is a bootstrap over realisations: at every step the seeds are resampled with
replacement (fixed random generator per curve), the cutoff is recomputed, and the 16-84 %
interval of the crossing values and the fraction of samples that crossed are reported.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from stembench.client.analysis.axes import AXES, Axis
from stembench.client.analysis.crossing import Crossing, crossing_by_fit, crossing_by_pchip
from stembench.client.analysis.records import validate_records
from stembench.errors import InputError

__all__ = ["CRITERIA", "DEFAULT_CRITERIA", "METHODS", "Cutoff", "CutoffCriteria", "compute_cutoffs"]

CRITERIA: tuple[str, ...] = ("recall", "precision", "rms")
"""Criterion names, in tie-breaking order."""

METHODS: tuple[str, ...] = ("pchip", "sigmoid")
"""Cutoff methods: PCHIP interpolation, fitted logistic (falls back to linear)."""

_METRIC_FIELDS = {"recall": "recall", "precision": "precision", "rms": "rms_angstrom"}


@dataclass(frozen=True)
class CutoffCriteria:
    """Thresholds a model must meet.

    Attributes
    ----------
    recall_min : float
        Fail when mean ID-recall falls below this.
    precision_min : float
        Fail when mean ID-precision falls below this.
    rms_max_angstrom : float
        Fail when mean RMS position error of matched pairs (angstrom) rises above this.
    """

    recall_min: float = 0.90
    precision_min: float = 0.95
    rms_max_angstrom: float = 0.30

    def threshold(self, criterion: str) -> float:
        """Threshold of ``criterion`` (``"recall"``, ``"precision"`` or ``"rms"``)."""
        return {
            "recall": self.recall_min,
            "precision": self.precision_min,
            "rms": self.rms_max_angstrom,
        }[criterion]

    @staticmethod
    def fails_below(criterion: str) -> bool:
        """True when values below the threshold fail (recall, precision), False for RMS."""
        return criterion != "rms"


DEFAULT_CRITERIA = CutoffCriteria()
"""The published thresholds: recall 0.90, precision 0.95, RMS 0.30 angstrom."""


@dataclass(frozen=True)
class Cutoff:
    """The cutoff of one model on one axis of one data group, by one method.

    Attributes
    ----------
    model, model_version, weights_sha256 : str
        The model's identity, copied from the score records.
    group : str
        Data group, e.g. ``"SrTiO3-simulated"``.
    axis : str
        Series name of the quality axis (a key of :data:`~stembench.client.analysis.AXES`).
    method : {"pchip", "sigmoid", "linear"}
        How the crossing was found (``"linear"``: the logistic fit failed for the deciding
        criterion; see ``fits`` for every criterion).
    status : {"crossed", "not reached", "fails from start"}
    value : float or None
        Cutoff in the axis' units; None unless ``status == "crossed"``.
    criterion : {"recall", "precision", "rms"} or None
        The criterion that failed first; None when not reached.
    direction : {"larger is worse", "smaller is worse"}
    tested_range : tuple of float
        (clean end, worse end) of the tested axis values, in the axis' units.
    n_steps, n_seeds : int
        Number of steps and largest number of seeds per step (failed images included).
    criterion_values : dict
        Per criterion, its own crossing in axis units (None when it did not cross).
    criterion_status : dict
        Per criterion, its own status.
    fits : dict
        Per criterion, the curve model used.
    interval : tuple of float or None
        16-84 % bootstrap interval of the cutoff value (over samples that crossed).
    crossed_fraction : float or None
        Fraction of bootstrap samples with status ``"crossed"`` (None without bootstrap).
    n_bootstrap : int
        Number of bootstrap samples.
    n_images, n_failed : int
        Images on the curve, and how many of them the model failed on (scored as finding
        nothing).
    """

    model: str
    model_version: str
    weights_sha256: str
    group: str
    axis: str
    method: str
    status: str
    value: float | None
    criterion: str | None
    direction: str
    tested_range: tuple[float, float]
    n_steps: int
    n_seeds: int
    criterion_values: dict[str, float | None]
    criterion_status: dict[str, str]
    fits: dict[str, str]
    interval: tuple[float, float] | None
    crossed_fraction: float | None
    n_bootstrap: int
    n_images: int = 0
    n_failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tuples become lists)."""
        data = asdict(self)
        data["tested_range"] = list(self.tested_range)
        data["interval"] = None if self.interval is None else list(self.interval)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cutoff:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["tested_range"] = tuple(values["tested_range"])
        if values["interval"] is not None:
            values["interval"] = tuple(values["interval"])
        return cls(**values)


@dataclass(frozen=True)
class _Curve:
    """Per-seed metric values of one (model, group, axis), steps sorted clean to worse."""

    axis: Axis
    badness: NDArray[np.float64]
    per_seed: list[NDArray[np.float64]]  # per step, (n_seeds, 3) recall, precision, rms
    first_record: Mapping[str, Any]
    n_failed: int

    def means(self) -> NDArray[np.float64]:
        return np.stack([_nanmean_columns(values) for values in self.per_seed])


def _nanmean_columns(values: NDArray[np.float64]) -> NDArray[np.float64]:
    finite = np.isfinite(values)
    counts = finite.sum(axis=-2)
    sums = np.where(finite, values, 0.0).sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _build_curves(records: list[dict[str, Any]]) -> dict[tuple[str, str, str], _Curve]:
    grouped: dict[tuple[str, str, str], dict[int, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for record in records:
        if record["series"] in AXES:
            key = (record["model"], record["group"], record["series"])
            grouped[key][record["step"]].append(record)
    curves = {}
    for key, steps in sorted(grouped.items()):
        axis = AXES[key[2]]
        badness = []
        step_lists = []
        for step, members in steps.items():
            axis_values = np.array([r["axis_value"] for r in members])
            if not np.any(np.isfinite(axis_values)):
                # a step with no position on the axis, e.g. the noise-free reference of a
                # noise series (PSNR = inf, stored as null in JSON), is left out of the curve
                continue
            if not np.all(np.isfinite(axis_values)) or (
                axis.log_scale and np.any(axis_values <= 0)
            ):
                raise InputError(
                    f"model {key[0]!r}, group {key[1]!r}, series {key[2]!r}, step {step}: "
                    f"axis_value must be finite{' and positive' if axis.log_scale else ''}, "
                    f"got {axis_values.tolist()}"
                )
            badness.append(axis.badness(float(axis_values.mean())))
            step_lists.append(members)
        if not step_lists:
            continue
        order = np.argsort(badness)
        sorted_badness = np.asarray(badness)[order]
        if np.any(np.diff(sorted_badness) == 0):
            raise InputError(
                f"model {key[0]!r}, group {key[1]!r}, series {key[2]!r}: two steps share one "
                f"axis value; steps must have distinct axis values"
            )
        per_seed = [
            np.array([[r[_METRIC_FIELDS[c]] for c in CRITERIA] for r in step_lists[i]])
            for i in order
        ]
        n_failed = sum(bool(r.get("failed")) for members in step_lists for r in members)
        curves[key] = _Curve(axis, sorted_badness, per_seed, step_lists[0][0], n_failed)
    return curves


def _crossings(
    badness: NDArray[np.float64], means: NDArray[np.float64], method: str, criteria: CutoffCriteria
) -> dict[str, Crossing]:
    result = {}
    for column, criterion in enumerate(CRITERIA):
        threshold = criteria.threshold(criterion)
        fail_below = criteria.fails_below(criterion)
        if method == "pchip":
            sign = 1.0 if fail_below else -1.0
            result[criterion] = crossing_by_pchip(badness, sign * (means[:, column] - threshold))
        else:
            result[criterion] = crossing_by_fit(
                badness, means[:, column], threshold=threshold, fail_below=fail_below
            )
    return result


def _decide(crossings: Mapping[str, Crossing]) -> tuple[str, float | None, str | None]:
    """Combine per-criterion crossings into (status, badness, criterion)."""
    for criterion in CRITERIA:
        if crossings[criterion].status == "fails from start":
            return "fails from start", None, criterion
    crossed = [
        (crossing.badness, CRITERIA.index(name), name)
        for name, crossing in crossings.items()
        if crossing.status == "crossed" and crossing.badness is not None
    ]
    if not crossed:
        return "not reached", None, None
    badness, _, criterion = min(crossed)
    return "crossed", badness, criterion


def _bootstrap(
    curve: _Curve, method: str, criteria: CutoffCriteria, n_samples: int, seed: int, name: str
) -> tuple[tuple[float, float] | None, float]:
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    resampled_means = np.stack(
        [
            _nanmean_columns(values[rng.integers(0, len(values), (n_samples, len(values)))])
            for values in curve.per_seed
        ],
        axis=1,
    )  # (n_samples, n_steps, 3)
    crossed_values = []
    for sample in resampled_means:
        status, badness, _ = _decide(_crossings(curve.badness, sample, method, criteria))
        if status == "crossed" and badness is not None:
            crossed_values.append(curve.axis.from_badness(badness))
    fraction = len(crossed_values) / n_samples
    if not crossed_values:
        return None, fraction
    low, high = np.percentile(crossed_values, [16.0, 84.0])
    return (float(low), float(high)), fraction


#: Most bootstrap samples drawn for the sigmoid method (each sample is three curve fits).
SIGMOID_BOOTSTRAP_MAX = 30


def _axis_value(axis: Axis, badness: float | None) -> float | None:
    return None if badness is None else axis.from_badness(badness)


def compute_cutoffs(
    records: Iterable[Mapping[str, Any]],
    *,
    criteria: CutoffCriteria = DEFAULT_CRITERIA,
    bootstrap: int = 200,
    seed: int = 0,
    methods: Sequence[str] = METHODS,
    progress: bool = True,
) -> list[Cutoff]:
    """Cutoffs of every model on every quality axis of every data group.

    Parameters
    ----------
    records : iterable of mapping
        Score records (validated here). Records of the ``"reference"`` and ``"generality"``
        series are ignored.
    criteria : CutoffCriteria, optional
        Thresholds (defaults: recall 0.90, precision 0.95, RMS 0.30 angstrom).
    bootstrap : int, optional
        Number of bootstrap samples over seeds (0 turns the bootstrap off).
    seed : int, optional
        Seed of the bootstrap random generators (one per curve, derived from the seed and
        the curve's model, group and axis, so results do not depend on record order).
    methods : sequence of str, optional
        ``"pchip"`` and/or ``"sigmoid"``.
    progress : bool, optional
        Show a progress bar over the curves (the sigmoid bootstrap takes seconds).

    Returns
    -------
    list of Cutoff
        Sorted by model, group, axis (radar order) and method.

    Raises
    ------
    InputError
        On invalid records, an unknown method, a negative ``bootstrap``, or steps of one
        series sharing an axis value.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InputError(f"unknown cutoff method(s) {unknown}; expected a subset of {METHODS}")
    if bootstrap < 0:
        raise InputError(f"bootstrap must be >= 0, got {bootstrap}")
    curves = _build_curves(validate_records(records))
    axis_order = list(AXES)
    cutoffs = []
    for (model, group, series), curve in tqdm(
        curves.items(), desc="cutoffs", disable=not progress, leave=False
    ):
        means = curve.means()
        for method in methods:
            crossings = _crossings(curve.badness, means, method, criteria)
            status, badness, criterion = _decide(crossings)
            fits = {name: crossing.fit for name, crossing in crossings.items()}
            fit_used = (
                fits[criterion]
                if criterion
                else ("linear" if "linear" in fits.values() else "sigmoid")
            )
            interval: tuple[float, float] | None = None
            fraction: float | None = None
            # sigmoid fits cost ~10 ms each: their bootstrap is capped
            n_bootstrap = bootstrap if method == "pchip" else min(bootstrap, SIGMOID_BOOTSTRAP_MAX)
            if n_bootstrap:
                name = f"{model}|{group}|{series}"
                interval, fraction = _bootstrap(curve, method, criteria, n_bootstrap, seed, name)
            record = curve.first_record
            cutoffs.append(
                Cutoff(
                    model=model,
                    model_version=record["model_version"],
                    weights_sha256=record["weights_sha256"],
                    group=group,
                    axis=series,
                    method="pchip" if method == "pchip" else fit_used,
                    status=status,
                    value=_axis_value(curve.axis, badness),
                    criterion=criterion,
                    direction=curve.axis.direction,
                    tested_range=(
                        curve.axis.from_badness(float(curve.badness[0])),
                        curve.axis.from_badness(float(curve.badness[-1])),
                    ),
                    n_steps=len(curve.badness),
                    n_seeds=max(len(v) for v in curve.per_seed),
                    criterion_values={
                        name: _axis_value(curve.axis, c.badness) for name, c in crossings.items()
                    },
                    criterion_status={name: c.status for name, c in crossings.items()},
                    fits=fits,
                    interval=interval,
                    crossed_fraction=fraction,
                    n_bootstrap=n_bootstrap,
                    n_images=sum(len(v) for v in curve.per_seed),
                    n_failed=curve.n_failed,
                )
            )
    cutoffs.sort(key=lambda c: (c.model, c.group, axis_order.index(c.axis), c.method))
    return cutoffs
