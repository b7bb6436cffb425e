"""Radar plots of cutoffs: one polar panel per data group, one polygon per model.

Each spoke is a quality axis. The radius runs from the clean end of the tested range (inner
ring) to its worse end (rim), so a polygon further out means a model that tolerates worse
images. The axis' real values at both ends are written along the spoke. Markers:

* filled circle: the model's cutoff (it failed there);
* open circle at the rim (the model's own worst tested value): "not reached", the model never
  failed in the tested range;
* cross at the inner ring: "fails from start", the model failed even at the cleanest step.

The legend says, per model, how many images the drawn cutoffs cover and how many of them the
model failed on (scored as finding nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.projections.polar import PolarAxes

from stembench.client.analysis._style import model_colors
from stembench.client.analysis.axes import AXES, Axis
from stembench.client.analysis.cutoffs import Cutoff
from stembench.errors import InputError

__all__ = ["plot_radar", "radar_radius"]

_MARKERS = {"crossed": "o", "not reached": "o", "fails from start": "X"}


def _format(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def radar_radius(cutoff: Cutoff, *, clean_badness: float, worst_badness: float) -> float:
    """Radius (0 = clean end, 1 = worse end of the group's tested range) of a cutoff.

    "not reached" sits at the model's own worst tested value, "fails from start" at 0.

    Parameters
    ----------
    cutoff : Cutoff
        The cutoff to place.
    clean_badness, worst_badness : float
        Badness (see :meth:`Axis.badness`) of the ends of the union of all models' tested
        ranges on this axis.
    """
    axis = AXES[cutoff.axis]
    if cutoff.status == "fails from start":
        return 0.0
    value = cutoff.tested_range[1] if cutoff.status == "not reached" else cutoff.value
    if value is None:
        raise InputError(f"cutoff of {cutoff.model!r} on {cutoff.axis!r} crossed without a value")
    span = worst_badness - clean_badness
    return float(np.clip((axis.badness(value) - clean_badness) / span, 0.0, 1.0)) if span else 1.0


def _group_axes(cutoffs: Sequence[Cutoff]) -> list[Axis]:
    present = {c.axis for c in cutoffs}
    return [axis for series, axis in AXES.items() if series in present]


def _draw_group(
    ax: PolarAxes, cutoffs: Sequence[Cutoff], group: str, colors: dict[str, str]
) -> None:
    axes = _group_axes(cutoffs)
    theta = np.linspace(0.0, 2 * np.pi, len(axes), endpoint=False)
    ends = {}
    for axis in axes:
        on_axis = [c for c in cutoffs if c.axis == axis.series]
        cleans = [axis.badness(c.tested_range[0]) for c in on_axis]
        worsts = [axis.badness(c.tested_range[1]) for c in on_axis]
        ends[axis.series] = (min(cleans), max(worsts))
    for model in sorted({c.model for c in cutoffs}):
        by_axis = {c.axis: c for c in cutoffs if c.model == model}
        angles, radii = [], []
        for angle, axis in zip(theta, axes, strict=True):
            cutoff = by_axis.get(axis.series)
            if cutoff is None:
                continue
            clean, worst = ends[axis.series]
            radius = radar_radius(cutoff, clean_badness=clean, worst_badness=worst)
            angles.append(angle)
            radii.append(radius)
            face = "white" if cutoff.status == "not reached" else colors[model]
            ax.plot(
                [angle],
                [radius],
                linestyle="none",
                marker=_MARKERS[cutoff.status],
                markersize=9,
                markerfacecolor=face,
                markeredgecolor=colors[model],
                markeredgewidth=2,
                zorder=5,
                clip_on=False,
                gid=f"marker|{model}|{axis.series}|{cutoff.status}",
            )
        closed_angles = [*angles, angles[0]] if angles else []
        closed_radii = [*radii, radii[0]] if radii else []
        ax.fill(closed_angles, closed_radii, color=colors[model], alpha=0.12, gid=f"fill|{model}")
        ax.plot(
            closed_angles,
            closed_radii,
            color=colors[model],
            linewidth=2,
            label=model,
            gid=f"polygon|{model}",
            zorder=3,
        )
    ax.set_xticks(theta)
    ax.set_xticklabels([axis.label for axis in axes], fontsize=10, fontweight="bold")
    ax.tick_params(axis="x", pad=12)
    for angle, tick_label in zip(theta, ax.get_xticklabels(), strict=True):
        cosine = np.cos(angle)
        tick_label.set_horizontalalignment(
            "left" if cosine > 0.3 else "right" if cosine < -0.3 else "center"
        )
    ax.set_ylim(0.0, 1.0)
    ax.set_rorigin(-0.18)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_yticklabels([])
    for angle, axis in zip(theta, axes, strict=True):
        clean, worst = ends[axis.series]
        for radius, badness, position in ((0.0, clean, 0.05), (1.0, worst, 0.9)):
            ax.text(
                angle + 0.1,
                position,
                _format(axis.from_badness(badness)),
                fontsize=8,
                color="0.3",
                ha="center",
                va="center",
                gid=f"end|{axis.series}|{radius:g}",
                bbox={
                    "boxstyle": "round,pad=0.15",
                    "facecolor": "white",
                    "edgecolor": "none",
                    "alpha": 0.8,
                },
            )
    ax.set_title(group, fontsize=12, fontweight="bold", pad=28)


def _coverage(cutoffs: Sequence[Cutoff], model: str) -> str:
    mine = [c for c in cutoffs if c.model == model]
    return (f"{model} ({sum(c.n_images for c in mine)} images, "
            f"{sum(c.n_failed for c in mine)} failed)")


def plot_radar(
    cutoffs: Sequence[Cutoff], *, method: str = "pchip", groups: Sequence[str] | None = None
) -> Figure:
    """Radar plot of cutoffs, one polar panel per data group, one polygon per model.

    Parameters
    ----------
    cutoffs : sequence of Cutoff
        Output of :func:`~stembench.client.analysis.compute_cutoffs`.
    method : str, optional
        Which cutoffs to draw: ``"pchip"`` or ``"sigmoid"`` (``"sigmoid"`` includes the
        linear fallbacks).
    groups : sequence of str, optional
        Groups to draw, in order (default: every group in ``cutoffs``, sorted).

    Returns
    -------
    matplotlib.figure.Figure
        Markers carry ``gid = "marker|<model>|<axis>|<status>"``, polygon outlines
        ``"polygon|<model>"``, axis-end labels ``"end|<axis>|0"`` and ``"end|<axis>|1"``.

    Raises
    ------
    InputError
        If no cutoff matches ``method`` and ``groups``.
    """
    family = {"pchip"} if method == "pchip" else {"sigmoid", "linear"}
    chosen = [c for c in cutoffs if c.method in family]
    names = sorted({c.group for c in chosen}) if groups is None else list(groups)
    panels = [[c for c in chosen if c.group == name] for name in names]
    if not names or not all(panels):
        raise InputError(f"no {method} cutoffs for groups {names}")
    colors = model_colors(c.model for c in chosen)
    figure = Figure(figsize=(6.2 * len(names), 6.6), layout="constrained")
    for index, (name, panel) in enumerate(zip(names, panels, strict=True)):
        ax = figure.add_subplot(1, len(names), index + 1, projection="polar")
        assert isinstance(ax, PolarAxes)
        _draw_group(ax, panel, name, colors)
    handles = [
        Line2D([], [], color=colors[model], linewidth=2, label=_coverage(chosen, model))
        for model in sorted({c.model for c in chosen})
    ] + [
        Line2D([], [], linestyle="none", marker="o", color="0.3", label="cutoff (failed here)"),
        Line2D(
            [],
            [],
            linestyle="none",
            marker="o",
            markerfacecolor="white",
            color="0.3",
            markeredgewidth=2,
            label="not reached (never failed)",
        ),
        Line2D([], [], linestyle="none", marker="X", color="0.3", label="fails from start"),
    ]
    figure.legend(
        handles=handles,
        loc="outside lower center",
        ncol=min(len(handles), 5),
        frameon=False,
        fontsize=10,
    )
    figure.suptitle(
        f"Cutoffs ({method}): further out = tolerates worse images\n"
        "numbers on each spoke: clean value (inner end), worst tested value (rim)",
        fontsize=11,
    )
    return figure
