"""Outputs of an assessment: a terminal table, a JSON file and a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from stembench.client.analysis.axes import AXES
from stembench.client.analysis.records import json_safe
from stembench.client.assess.assessment import Assessment
from stembench.client.assess.nearest import GroupMatch
from stembench.client.assess.recommend import ModelVerdict

__all__ = ["ASSESS_SCHEMA", "summary_table", "write_html", "write_json"]

ASSESS_SCHEMA = "stembench-assessment/1"


def _number(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}" if value == value and abs(value) != float("inf") else "-"


def _percent(fraction: float) -> str:
    return f"{fraction:+.0%}" if fraction == fraction else "n/a"


def summary_table(assessment: Assessment, verdicts: Sequence[ModelVerdict], *,
                  group_matches: Sequence[GroupMatch] = ()) -> str:
    """Plain-text summary: the estimates, how near each benchmark group is, then one line per
    model with its verdict.

    Parameters
    ----------
    assessment : Assessment
        The image's quality estimates.
    verdicts : sequence of ModelVerdict
        One verdict per model.
    group_matches : sequence of GroupMatch, optional
        How near each benchmark group is; default none (not shown).
    """
    lines = [f"Assessment of {assessment.name}: {assessment.lattice.kind} lattice, column "
             f"spacing {assessment.lattice.spacing_px:.2f} px", "",
             f"{'axis':<20s}{'estimate':>12s}{'± 1 sigma':>12s}"]
    for estimate in assessment.estimates.values():
        lines.append(f"{AXES[estimate.axis].label:<20s}{_number(estimate.value):>12s}"
                     f"{_number(estimate.uncertainty, 2):>12s}")
    if group_matches:
        lines += ["", "Benchmark groups, nearest first:"]
        lines += [f"  {m.summary}" for m in group_matches]
        if not group_matches[0].close_enough:
            lines.append("  No benchmark group is close enough to vouch for a model on this "
                         "image: the verdicts below are the nearest group's, for orientation.")
    if verdicts:
        lines += ["", f"Models for group {verdicts[0].group}:"]
    for verdict in verdicts:
        lines.append(f"  {verdict.model:<20s}{verdict.verdict}")
        for a in verdict.axes:
            if a.status == "inside":
                continue
            lines.append(f"      {a.axis:<12s}{a.status:<21s}estimate {_number(a.estimate)} "
                         f"vs {a.limit_kind} {_number(a.limit)}: margin {_number(a.margin)} "
                         f"({_percent(a.margin_fraction)})")
    return "\n".join(lines)


def write_json(path: str | Path, assessment: Assessment, verdicts: Sequence[ModelVerdict], *,
               cutoffs_source: str, predictions: dict[str, Any] | None = None,
               group_matches: Sequence[GroupMatch] = (),
               twin: dict[str, Any] | None = None) -> Path:
    """Write the assessment and recommendation as JSON (schema :data:`ASSESS_SCHEMA`);
    ``twin`` is the twin assessment's dict, when one was made.

    Parameters
    ----------
    path : str or pathlib.Path
        The JSON file to write.
    assessment : Assessment
        The image's quality estimates.
    verdicts : sequence of ModelVerdict
        One verdict per model.
    cutoffs_source : str
        Where the cutoffs were read (a results file or the built-in cutoffs), recorded as given.
    predictions : dict, optional
        One model's columns found on the image: ``model`` and ``xy_px`` (pixels, x = column,
        y = row); default none.
    group_matches : sequence of GroupMatch, optional
        How near each benchmark group is; default none.
    twin : dict, optional
        The twin assessment, when one was made; default none.
    """
    data = {"schema": ASSESS_SCHEMA, "assessment": assessment.to_dict(), "twin": twin,
            "cutoffs_source": cutoffs_source,
            "group_matches": [m.to_dict() for m in group_matches],
            "recommendation": [v.to_dict() for v in verdicts],
            "predictions": predictions}
    out = Path(path)
    out.write_text(json.dumps(json_safe(data), indent=1) + "\n", encoding="utf-8")
    return out


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def write_html(path: str | Path, assessment: Assessment, verdicts: Sequence[ModelVerdict],
               figures: Sequence[Figure], *, group_matches: Sequence[GroupMatch] = (),
               twin_section: str = "") -> Path:
    """Write one HTML page with the summary table and the figures embedded as PNG;
    ``twin_section`` (HTML) comes first, and the group verdicts become a second opinion.

    Parameters
    ----------
    path : str or pathlib.Path
        The HTML file to write.
    assessment : Assessment
        The image's quality estimates.
    verdicts : sequence of ModelVerdict
        One verdict per model.
    figures : sequence of matplotlib.figure.Figure
        Figures embedded as PNG, in this order.
    group_matches : sequence of GroupMatch, optional
        How near each benchmark group is; default none.
    twin_section : str, optional
        HTML of the twin assessment, placed first; default none.
    """
    images = "\n".join(f'<p><img alt="figure {i + 1}" src="data:image/png;base64,{_png(f)}"'
                       ' style="max-width:100%"></p>' for i, f in enumerate(figures))
    rows = "\n".join(
        f"<tr><td>{html.escape(v.model)}</td><td>{html.escape(v.verdict)}</td><td>"
        + html.escape("; ".join(f"{a.axis}: {a.status}, margin {_number(a.margin)} "
                                f"({_percent(a.margin_fraction)})" for a in v.axes))
        + "</td></tr>" for v in verdicts)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>stembench assess: {html.escape(assessment.name)}</title>
<style>body{{font-family:sans-serif;max-width:1500px;margin:auto}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}table{{border-collapse:collapse}}
</style></head><body>
<h1>Which model for {html.escape(assessment.name)}?</h1>
{twin_section}
{"<h2>Second opinion: the benchmark groups' cutoffs</h2>" if twin_section else ""}
<pre>{html.escape(summary_table(assessment, verdicts, group_matches=group_matches))}</pre>
<h2>Models</h2>
<table><tr><th>model</th><th>verdict</th><th>per axis</th></tr>
{rows}
</table>
<h2>Figures</h2>
{images}
</body></html>
"""
    out = Path(path)
    out.write_text(page, encoding="utf-8")
    return out
