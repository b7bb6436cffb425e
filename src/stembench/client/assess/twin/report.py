"""The twin assessment in the outputs: a likeness figure, a summary table and an HTML section."""

from __future__ import annotations

import html
import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from numpy.typing import NDArray

from stembench.client.assess.twin.likeness import MAX_MISSING, MAX_UNEXPLAINED
from stembench.client.assess.twin.predict import AXIS_UNITS, ModelPrediction
from stembench.client.assess.twin.run import TwinAssessment, reference_twin

__all__ = ["plot_likeness", "twin_html", "twin_summary"]


def plot_likeness(image: NDArray[np.floating], result: TwinAssessment, *,
                  zoom_px: int = 96) -> Figure:
    """The image beside its first twin, both at the image's display range (top: whole; bottom:
    a central ``zoom_px`` crop), fitted columns drawn on the image (green: labelled in the
    twin, orange: faint, unlabelled; red +: columns the twin lacks; red outline: unmodelled
    regions), with a legend below that says so and counts each.

    Parameters
    ----------
    image : numpy.ndarray
        The real image, 2-D.
    result : TwinAssessment
        The twin assessment (its fitted model and first twin).
    zoom_px : int, optional
        Side of the central crop, pixels; default 96.
    """
    twin = reference_twin(result)
    data = np.asarray(image, np.float64)
    low, high = np.percentile(data, [0.5, 99.5])
    rows, cols = data.shape
    side = min(zoom_px, rows, cols)
    r0, c0 = (rows - side) // 2, (cols - side) // 2
    figure = Figure(figsize=(11, 11.6), layout="constrained")
    axes = figure.subplots(2, 2)
    xy, labelled = result.fit.observed_xy, result.fit.model.labelled
    for row, (window, marker) in enumerate((((0, rows, 0, cols), 10.0),
                                            ((r0, r0 + side, c0, c0 + side), 60.0))):
        y0, y1, x0, x1 = window
        extent = (x0 - 0.5, x1 - 0.5, y1 - 0.5, y0 - 0.5)
        for ax, shown, title in ((axes[row, 0], data, "image, fitted columns"),
                                 (axes[row, 1], twin, "twin (seed 0), same display range")):
            ax.imshow(shown[y0:y1, x0:x1], cmap="gray", vmin=low, vmax=max(high, low + 1e-12),
                      interpolation="nearest", extent=extent)
            ax.set_title(f"{title}{' (centre)' if row else ''}", fontsize=10)
            ax.set_axis_off()
        inside = (xy[:, 0] >= x0) & (xy[:, 0] < x1) & (xy[:, 1] >= y0) & (xy[:, 1] < y1)
        ax = axes[row, 0]
        ax.scatter(xy[inside & labelled, 0], xy[inside & labelled, 1], s=marker,
                   facecolors="none", edgecolors="lime", linewidths=0.6)
        ax.scatter(xy[inside & ~labelled, 0], xy[inside & ~labelled, 1], s=marker, marker="x",
                   c="orange", linewidths=0.8)
        lack = result.likeness.missing_xy
        shown = (lack[:, 0] >= x0) & (lack[:, 0] < x1) & (lack[:, 1] >= y0) & (lack[:, 1] < y1)
        ax.scatter(lack[shown, 0], lack[shown, 1], s=marker, marker="+", c="red",
                   linewidths=0.8)
        ax.set_xlim(x0 - 0.5, x1 - 0.5)
        ax.set_ylim(y1 - 0.5, y0 - 0.5)
        if result.fit.unmodelled[y0:y1, x0:x1].any():
            ax.contour(np.arange(x0, x1), np.arange(y0, y1),
                       result.fit.unmodelled[y0:y1, x0:x1].astype(float), levels=[0.5],
                       colors="red", linewidths=0.8)
    figure.legend(*_marker_key(result), loc="outside lower center", ncols=2, fontsize=9,
                  frameon=False)
    figure.suptitle(f"{result.fit.model.name}: does the twin look like the image?", fontsize=11)
    return figure


def _marker_key(result: TwinAssessment) -> tuple[list[Line2D], list[str]]:
    """What each mark on the image means, with how many there are (the figure's legend)."""
    labelled = result.fit.model.labelled
    unmodelled = float(result.fit.unmodelled.mean())
    handles = [Line2D([], [], linestyle="none", marker="o", markerfacecolor="none",
                      markeredgecolor="lime"),
               Line2D([], [], linestyle="none", marker="x", color="orange"),
               Line2D([], [], linestyle="none", marker="+", color="red"),
               Line2D([], [], linestyle="none", marker="s", markerfacecolor="none",
                      markeredgecolor="red")]
    labels = [f"fitted column, labelled in the twin ({int(labelled.sum())} in the whole image)",
              f"fitted column, too faint to label in the twin ({int((~labelled).sum())})",
              f"column the image shows and the twin lacks ({len(result.likeness.missing_xy)})",
              f"outline: structure the twin does not model ({_share(unmodelled)} of the area)"]
    return handles, labels


def _share(fraction: float) -> str:
    """A share as a percentage, with one decimal below 1 % so that a little is not 0 %."""
    return f"{fraction:.1%}" if 0 < fraction < 0.01 else f"{fraction:.0%}"


def _interval(p: ModelPrediction, metric: str, digits: int = 2) -> str:
    mean, low, high = p.mean[metric], p.low[metric], p.high[metric]
    if not math.isfinite(mean):
        return "-"
    return f"{mean:.{digits}f} [{low:.{digits}f}-{high:.{digits}f}]"


def _margin_text(p: ModelPrediction) -> str:
    parts = []
    for m in p.margins:
        unit = AXIS_UNITS[m.axis]
        if m.failure_value is None:
            parts.append(f"{m.axis}: passes to {m.last_value:.3g} {unit}".rstrip())
        elif m.margin == 0.0:
            parts.append(f"{m.axis}: fails already")
        else:
            parts.append(f"{m.axis}: fails at {m.failure_value:.3g} {unit}".rstrip())
    return "; ".join(parts)


def twin_summary(result: TwinAssessment) -> str:
    """Plain-text summary: the twin, the ranking with intervals, the margins, the verdict."""
    model = result.fit.model
    lines = [f"Twin: {len(model.xy_px)} columns ({int(model.labelled.sum())} labelled), width "
             f"{model.sigma_px[0]:.2f} px (resolution {model.resolution_pm:.0f} pm), "
             f"noise gain {model.gain:.3g}, read variance {model.read_variance:.3g}, fly-back "
             f"{model.flyback_px:.2f} px, drift {model.drift_px_per_line:.3f} px/line; "
             f"{sum(v.series == 'reference' for v in result.plan)} twins and "
             f"{sum(v.series != 'reference' for v in result.plan)} series images",
             f"Likeness: the twin leaves {result.likeness.unexplained:.1%} of the image's "
             f"structure unexplained beyond the noise (predictions given up to "
             f"{MAX_UNEXPLAINED:.0%}); residual {result.likeness.chi2:.2f} noise variances; "
             f"lacks {len(result.likeness.missing_xy)} columns the image shows "
             f"({result.likeness.missing:.1%}; up to {MAX_MISSING:.0%})"]
    if result.predictions:
        lines += ["", "Predicted on this image (mean [lowest-highest twin]):",
                  f"  {'model':<26s}{'F1':>18s}{'recall':>18s}{'precision':>18s}"
                  f"{'RMS (A)':>20s}  reliable"]
    for p in result.predictions:
        lines.append(f"  {p.model:<26s}{_interval(p, 'f1'):>18s}{_interval(p, 'recall'):>18s}"
                     f"{_interval(p, 'precision'):>18s}{_interval(p, 'rms_angstrom', 3):>20s}"
                     f"  {'yes' if p.reliable else 'no'}")
        if p.margins:
            lines.append(f"      {_margin_text(p)}")
        if p.n_failed_images:
            lines.append(f"      failed on {p.n_failed_images} twin image(s) (scored as "
                         f"finding nothing); first: {p.first_error}")
    lines += [f"  {model:<26s}not scored: {reason}" for model, reason in result.not_scored.items()]
    lines += ["", result.verdict[:1].upper() + result.verdict[1:]]
    if result.scores.kept:
        lines.append(f"Twins' file kept at {result.scores.dataset_path}: {result.scores.kept}")
    if result.limitations:
        lines += ["", "What the twin cannot represent here:"]
        lines += [f"  - {note}" for note in result.limitations]
    return "\n".join(lines)


def twin_html(result: TwinAssessment) -> str:
    """HTML section: the verdict, the limitations and the ranking table."""
    rows = "\n".join(
        f"<tr><td>{k + 1}</td><td>{html.escape(p.model)}</td><td>{_interval(p, 'f1')}</td>"
        f"<td>{_interval(p, 'recall')}</td><td>{_interval(p, 'precision')}</td>"
        f"<td>{_interval(p, 'rms_angstrom', 3)}</td><td>{'yes' if p.reliable else 'no'}</td>"
        f"<td>{html.escape(_margin_text(p))}</td></tr>"
        for k, p in enumerate(result.predictions))
    rows += "".join(f"\n<tr><td>-</td><td>{html.escape(model)}</td><td colspan=\"6\">not "
                    f"scored: {html.escape(reason)}</td></tr>"
                    for model, reason in result.not_scored.items())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.limitations) or \
        "<li>nothing detected</li>"
    return f"""<h2>Twin assessment</h2>
<p><b>{html.escape(result.verdict[:1].upper() + result.verdict[1:])}</b></p>
<p>What the fitted model cannot represent here:</p><ul>{notes}</ul>
<table><tr><th>rank</th><th>model</th><th>F1</th><th>recall</th><th>precision</th>
<th>RMS (A)</th><th>reliable</th><th>margin per axis</th></tr>
{rows}
</table>
<pre>{html.escape(twin_summary(result))}</pre>
"""
