"""Trend plots: recall, precision and RMS against each quality axis, per model.

One row per quality axis, one column per metric. Each model is a line through the per-step
means over seeds with a band spanning the seeds' minimum to maximum; the thresholds are
dashed black lines and each model's cutoff is a dotted vertical line in its colour. Axes on
which smaller values are worse are drawn reversed, so the worse end is always on the right.
Failed images are in the means (recall 0); the legend of each row says how many there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from stembench.client.analysis._style import model_colors
from stembench.client.analysis.axes import AXES, Axis
from stembench.client.analysis.cutoffs import CRITERIA, DEFAULT_CRITERIA, Cutoff, CutoffCriteria
from stembench.client.analysis.records import validate_records
from stembench.errors import InputError

__all__ = ["plot_trends", "step_statistics"]

_FIELDS = {"recall": "recall", "precision": "precision", "rms": "rms_angstrom"}
_TITLES = {"recall": "ID-recall", "precision": "ID-precision", "rms": "RMS error (Å)"}


def step_statistics(
    records: Iterable[Mapping[str, Any]], *, metric_field: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-step mean axis value, and mean, minimum and maximum of one metric over seeds.

    Parameters
    ----------
    records : iterable of mapping
        Validated score records of one model, group and series.
    metric_field : str
        Record field of the metric, e.g. ``"recall"`` or ``"rms_angstrom"``.

    Returns
    -------
    axis_values, means, lows, highs : ndarray, shape (S,)
        Sorted by axis value. NaN metric values are ignored; a step with none gives NaN.
    """
    steps: dict[int, list[Mapping[str, Any]]] = {}
    for record in records:
        steps.setdefault(record["step"], []).append(record)
    rows = []
    for members in steps.values():
        values = np.array([r[metric_field] for r in members], dtype=np.float64)
        finite = values[np.isfinite(values)]
        stats = (finite.mean(), finite.min(), finite.max()) if finite.size else (np.nan,) * 3
        rows.append((float(np.mean([r["axis_value"] for r in members])), *stats))
    table = np.array(sorted(rows))
    return table[:, 0], table[:, 1], table[:, 2], table[:, 3]


def _draw_panel(
    ax: Axes,
    curves: dict[str, list[dict[str, Any]]],
    axis: Axis,
    criterion: str,
    criteria: CutoffCriteria,
    cutoffs: dict[str, Cutoff],
    colors: dict[str, str],
) -> None:
    top = 1.05
    for model, members in curves.items():
        x, mean, low, high = step_statistics(members, metric_field=_FIELDS[criterion])
        ax.fill_between(x, low, high, color=colors[model], alpha=0.2, linewidth=0)
        ax.plot(
            x,
            mean,
            marker="o",
            markersize=3.5,
            color=colors[model],
            label=f"{model} ({len(members)} images, {sum(r['failed'] for r in members)} failed)",
            gid=f"mean|{model}",
        )
        if criterion == "rms" and np.any(np.isfinite(high)):
            top = max(top, float(np.nanmax(high)) * 1.05)
        cutoff = cutoffs.get(model)
        if cutoff is not None and cutoff.status == "crossed" and cutoff.value is not None:
            ax.axvline(
                cutoff.value,
                color=colors[model],
                linestyle=":",
                linewidth=1.8,
                gid=f"cutoff|{model}",
            )
    threshold = criteria.threshold(criterion)
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, gid="threshold")
    if criterion == "rms":
        top = min(top, 6 * threshold)
    ax.set_ylim(0.0, top if criterion == "rms" else 1.05)
    if axis.log_scale:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    if not axis.larger_is_worse:
        ax.invert_xaxis()
    ax.grid(alpha=0.3)


def plot_trends(
    records: Iterable[Mapping[str, Any]],
    *,
    group: str,
    cutoffs: Sequence[Cutoff] = (),
    criteria: CutoffCriteria = DEFAULT_CRITERIA,
    method: str = "pchip",
    series: Sequence[str] | None = None,
) -> Figure:
    """Recall, precision and RMS against every quality axis of one data group.

    Parameters
    ----------
    records : iterable of mapping
        Score records (validated here); only those of ``group`` on quality axes are drawn.
    group : str
        The data group, e.g. ``"SrTiO3-simulated"``.
    cutoffs : sequence of Cutoff, optional
        Cutoffs to mark (those of ``group`` and ``method``).
    criteria : CutoffCriteria, optional
        Thresholds to draw.
    method : str, optional
        ``"pchip"`` or ``"sigmoid"``: which cutoffs to mark.
    series : sequence of str, optional
        Axes to draw, in order (default: every quality axis present, radar order).

    Returns
    -------
    matplotlib.figure.Figure
        Mean lines carry ``gid = "mean|<model>"``, cutoff lines ``"cutoff|<model>"`` and
        threshold lines ``"threshold"``.

    Raises
    ------
    InputError
        If ``group`` has no records on a quality axis.
    """
    checked = [r for r in validate_records(records) if r["group"] == group and r["series"] in AXES]
    present = [name for name in AXES if any(r["series"] == name for r in checked)]
    rows = present if series is None else [name for name in series if name in present]
    if not rows:
        raise InputError(f"group {group!r} has no score records on a quality axis")
    colors = model_colors(r["model"] for r in checked)
    family = {"pchip"} if method == "pchip" else {"sigmoid", "linear"}
    figure = Figure(figsize=(12.0, 2.6 * len(rows) + 0.8), layout="constrained")
    grid = figure.subplots(len(rows), len(CRITERIA), squeeze=False)
    for row, name in enumerate(rows):
        axis = AXES[name]
        curves: dict[str, list[dict[str, Any]]] = {}
        for record in checked:
            if record["series"] == name:
                curves.setdefault(record["model"], []).append(record)
        marks = {
            c.model: c
            for c in cutoffs
            if c.group == group and c.axis == name and c.method in family
        }
        for column, criterion in enumerate(CRITERIA):
            ax = grid[row, column]
            _draw_panel(ax, dict(sorted(curves.items())), axis, criterion, criteria, marks, colors)
            ax.set_xlabel(f"{axis.label}   (worse →)")
            if row == 0:
                ax.set_title(_TITLES[criterion], fontsize=12, fontweight="bold")
    for row in range(len(rows)):
        grid[row, 0].legend(loc="lower left", fontsize=8)
    figure.suptitle(
        f"{group}: mean over seeds (line) and seed range (band); dashed: threshold; "
        f"dotted: cutoff ({method})",
        fontsize=11,
    )
    return figure
