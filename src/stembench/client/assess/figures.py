"""Figures of an assessment: the image and its spectrum, and the radar with the image on it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.projections.polar import PolarAxes
from numpy.typing import NDArray

from stembench.client.analysis.axes import AXES
from stembench.client.analysis.cutoffs import Cutoff
from stembench.client.analysis.radar import plot_radar
from stembench.client.assess.assessment import Assessment
from stembench.client.assess.recommend import ModelVerdict
from stembench.imaging.lattice import power_spectrum

__all__ = ["plot_overview", "plot_radar_with_image"]

_VERDICT_COLORS = {"recommended": "tab:green", "borderline": "tab:orange",
                   "no close group": "tab:gray",
                   "not recommended": "tab:red"}


def plot_overview(image: NDArray[np.floating], assessment: Assessment,
                  verdicts: Sequence[ModelVerdict], *,
                  predictions: NDArray[np.float64] | None = None,
                  predicted_by: str | None = None) -> Figure:
    """The image (with a model's predictions if given), its spectrum, and the estimates.

    Parameters
    ----------
    image : ndarray
        The assessed image.
    assessment : Assessment
        Its assessment.
    verdicts : sequence of ModelVerdict
        The recommendation, best first.
    predictions : ndarray, shape (N, 2), optional
        Column positions ``(x, y)`` in pixels from a model, drawn as dots.
    predicted_by : str, optional
        Name of the model that made ``predictions``.
    """
    figure = Figure(figsize=(15, 5.2), layout="constrained")
    ax_image, ax_spec, ax_text = figure.subplots(1, 3, width_ratios=[1, 1, 1.15])
    ax_image.imshow(image, cmap="gray")
    title = f"{assessment.name}  ({assessment.shape[1]}x{assessment.shape[0]} px, " \
            f"{assessment.pixel_size_angstrom:g} A/px)"
    if predictions is not None and len(predictions):
        ax_image.plot(predictions[:, 0], predictions[:, 1], ".", color="tab:orange",
                      markersize=4, label=f"{predicted_by}: {len(predictions)} columns")
        ax_image.legend(loc="upper right", fontsize=8)
    ax_image.set_title(title, fontsize=10)
    ax_image.set_axis_off()
    power, kx, ky, _ = power_spectrum(np.asarray(image, np.float64))
    extent = (float(kx.min()), float(kx.max()), float(ky.max()), float(ky.min()))
    ax_spec.imshow(np.log10(power + power.max() * 1e-9), cmap="magma", extent=extent)
    for g in assessment.lattice.reciprocal:
        for sign in (1, -1):
            ax_spec.plot(sign * g[0], sign * g[1], "o", markerfacecolor="none",
                         markeredgecolor="cyan", markersize=11, markeredgewidth=1.5)
    ax_spec.set_title(f"power spectrum: {assessment.lattice.kind} lattice "
                      f"(basis circled)", fontsize=10)
    ax_spec.set_xlabel("kx (cycles/px)")
    ax_spec.set_ylabel("ky (cycles/px)")
    ax_text.set_axis_off()
    lines = ["Estimated quality (± 1 sigma)"]
    for estimate in assessment.estimates.values():
        label = AXES[estimate.axis].label
        value = f"{estimate.value:.3g} ± {estimate.uncertainty:.2g}" \
            if np.isfinite(estimate.value) else "not measurable"
        lines.append(f"  {label:<18s} {value}")
    ax_text.text(0.0, 1.0, "\n".join(lines), family="monospace", fontsize=10, va="top")
    y = 0.52
    ax_text.text(0.0, y, f"Models ({verdicts[0].group if verdicts else '-'})",
                 family="monospace", fontsize=10, va="top")
    for verdict in verdicts:
        y -= 0.075
        detail = ", ".join(f"{a.axis} ({a.status})" for a in verdict.axes
                           if a.status in ("outside", "borderline", "beyond tested range"))
        detail = detail if len(detail) < 70 else detail[:67] + "..."
        ax_text.text(0.0, y, f"  {verdict.model:<12s} {verdict.verdict}",
                     family="monospace", fontsize=10, va="top",
                     color=_VERDICT_COLORS[verdict.verdict], fontweight="bold")
        if detail:
            y -= 0.06
            ax_text.text(0.04, y, f"  {detail}", family="monospace", fontsize=8, va="top",
                         color="0.25", wrap=True)
    return figure


def plot_radar_with_image(cutoffs: Sequence[Cutoff], assessment: Assessment, *, group: str,
                          method: str = "pchip") -> Figure:
    """The models' radar polygons of ``group`` with the image's estimates drawn on top.

    The image is a black dashed polygon; each vertex sits where the estimate falls between
    the clean end (centre) and the worse end (rim) of the tested range, with a radial bar
    for its uncertainty. Estimates beyond the tested range sit just outside the rim.

    Parameters
    ----------
    cutoffs : sequence of Cutoff
        The models' cutoffs.
    assessment : Assessment
        The image's quality estimates.
    group : str
        The data group drawn.
    method : str, optional
        Which cutoffs to draw: ``"pchip"`` or ``"sigmoid"`` (with the linear fallbacks);
        default ``"pchip"``.
    """
    figure = plot_radar(cutoffs, method=method, groups=[group])
    ax = next(a for a in figure.axes if isinstance(a, PolarAxes))
    family = {"pchip"} if method == "pchip" else {"sigmoid", "linear"}
    chosen = [c for c in cutoffs if c.group == group and c.method in family]
    present = {c.axis for c in chosen}
    axes = [axis for series, axis in AXES.items() if series in present]
    theta = np.linspace(0.0, 2 * np.pi, len(axes), endpoint=False)
    angles, radii = [], []
    for angle, axis in zip(theta, axes, strict=True):
        on_axis = [c for c in chosen if c.axis == axis.series]
        clean = min(axis.badness(c.tested_range[0]) for c in on_axis)
        worst = max(axis.badness(c.tested_range[1]) for c in on_axis)
        estimate = assessment.estimates.get(axis.series)
        if estimate is None or not np.isfinite(estimate.value) or worst == clean:
            continue
        span = worst - clean

        def radius(value: float, clean: float = clean, span: float = span,
                   series: str = axis.series) -> float:
            safe = max(value, 1e-12) if AXES[series].log_scale else value
            return float(np.clip((AXES[series].badness(safe) - clean) / span, 0.0, 1.12))

        r = radius(estimate.value)
        lo = radius(estimate.value - estimate.uncertainty)
        hi = radius(estimate.value + estimate.uncertainty)
        ax.plot([angle, angle], [lo, hi], color="black", linewidth=3, alpha=0.5,
                clip_on=False, zorder=6)
        angles.append(angle)
        radii.append(r)
    if angles:
        ax.plot([*angles, angles[0]], [*radii, radii[0]], color="black", linestyle="--",
                linewidth=2, marker="D", markersize=7, clip_on=False, zorder=7,
                gid="polygon|image")
    legend = figure.legends[0] if figure.legends else None
    handles = list(legend.legend_handles) if legend is not None else []
    handles.append(Line2D([], [], color="black", linestyle="--", marker="D",
                          label=f"this image ({assessment.name})"))
    if legend is not None:
        legend.remove()
    figure.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=9,
                  frameon=False)
    return figure
