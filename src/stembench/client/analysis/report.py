"""The benchmark report: one self-contained HTML page plus a machine-readable JSON file.

The HTML page embeds every figure as a base64 PNG (radar plots first, then cutoff tables,
per-group summaries, trend plots, generality images and failure pictures), so it can be
mailed or archived as one file. The JSON file holds every per-image score and every cutoff
with the provenance of the numbers: the top-level ``provenance`` (dataset name, version and
hash, scorer version, package version, host, creation time) applies to every number, and
each score and cutoff names its model, model version and weights hash.

Images a model failed on are scores like any other (recall 0, see :mod:`.records`); every
aggregate says how many images it covers and how many of them failed. Each series has one
cutoff, by the lead method, flagged when in doubt (see :mod:`.stability`).
"""

from __future__ import annotations

import base64
import io
import json
import math
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape
from matplotlib.figure import Figure

from stembench._version import __version__
from stembench.client.analysis.axes import AXES
from stembench.client.analysis.column_types import column_type_summary
from stembench.client.analysis.cutoffs import (
    DEFAULT_CRITERIA,
    Cutoff,
    CutoffCriteria,
    compute_cutoffs,
)
from stembench.client.analysis.failures import plot_failure
from stembench.client.analysis.radar import plot_radar
from stembench.client.analysis.records import json_safe, validate_records
from stembench.client.analysis.stability import (
    DISAGREEMENT_TOLERANCE,
    LEAD_METHOD,
    LEAD_REASON,
    SeriesCutoff,
    series_cutoffs,
)
from stembench.client.analysis.trends import plot_trends
from stembench.datamodel import EXPERIMENTAL_SUFFIX
from stembench.endpoints.models.published import weights_origin
from stembench.errors import InputError

__all__ = [
    "EXPERIMENTAL_SUFFIX",
    "PROVENANCE_FIELDS",
    "REPORT_SCHEMA",
    "build_report_data",
    "load_report",
    "write_report",
]

REPORT_SCHEMA = "stembench-report/1"
PROVENANCE_FIELDS: tuple[str, ...] = (
    "dataset_name",
    "dataset_version",
    "dataset_sha256",
    "scorer_version",
)
"""Provenance fields the caller must give; package version and host are added."""

_FAILURE_FIELDS = ("image", "truth", "predicted", "matched_truth_index", "matched_predicted_index")
_SUMMARY_FIELDS = ("recall", "precision", "f1", "rms_angstrom")


def _full_provenance(provenance: Mapping[str, Any]) -> dict[str, Any]:
    missing = [field for field in PROVENANCE_FIELDS if field not in provenance]
    if missing:
        raise InputError(f"provenance lacks field(s) {missing}; required: {PROVENANCE_FIELDS}")
    return {
        "package": "stembench",
        "package_version": __version__,
        "host": platform.node(),
        "python": sys.version.split()[0],
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        **provenance,
    }


def _group_summary(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for group in sorted({r["group"] for r in records}):
        for model in sorted({r["model"] for r in records if r["group"] == group}):
            members = [r for r in records if r["group"] == group and r["model"] == model]
            row: dict[str, Any] = {"group": group, "model": model, "n_images": len(members),
                                   "n_failed": sum(r["failed"] for r in members)}
            for field in _SUMMARY_FIELDS:
                values = np.array([r[field] for r in members], dtype=np.float64)
                finite = values[np.isfinite(values)]
                row[f"mean_{field}"] = float(finite.mean()) if finite.size else math.nan
            rows.append(row)
    return rows


def build_report_data(
    records: Sequence[Mapping[str, Any]],
    *,
    provenance: Mapping[str, Any],
    cutoffs: Sequence[Cutoff],
    criteria: CutoffCriteria,
) -> dict[str, Any]:
    """The JSON-safe content of the report (NaN written as ``null``).

    Parameters
    ----------
    records : sequence of mapping
        Validated score records.
    provenance : mapping
        Must hold :data:`PROVENANCE_FIELDS`; package version, host, Python version and
        creation time are added unless given.
    cutoffs : sequence of Cutoff
        Cutoffs of ``records``.
    criteria : CutoffCriteria
        The thresholds the cutoffs used.
    """
    models = {
        r["model"]: {"model_version": r["model_version"], "weights_sha256": r["weights_sha256"],
                     "weights": weights_origin(r["weights_sha256"], model=r["model"]),
                     "n_images": sum(s["model"] == r["model"] for s in records),
                     "n_failed": sum(s["model"] == r["model"] and s["failed"] for s in records)}
        for r in records
    }
    data = {
        "schema": REPORT_SCHEMA,
        "provenance": _full_provenance(provenance),
        "criteria": {
            "recall_min": criteria.recall_min,
            "precision_min": criteria.precision_min,
            "rms_max_angstrom": criteria.rms_max_angstrom,
        },
        "models": dict(sorted(models.items())),
        "group_summary": _group_summary(records),
        "column_types": column_type_summary(records),
        "cutoff_method": {"lead": LEAD_METHOD, "why": LEAD_REASON,
                          "disagreement_tolerance": DISAGREEMENT_TOLERANCE},
        "series_cutoffs": [s.to_dict() for s in series_cutoffs(cutoffs, records,
                                                               criteria=criteria)],
        "cutoffs": [cutoff.to_dict() for cutoff in cutoffs],
        "scores": list(records),
    }
    safe: dict[str, Any] = json_safe(data)
    return safe


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a report JSON file; cutoffs become :class:`Cutoff`, scores validated records.

    Raises
    ------
    InputError
        If the file is not a stembench report of a known schema.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("schema") != REPORT_SCHEMA:
        raise InputError(f"{path}: not a {REPORT_SCHEMA} file (schema {data.get('schema')!r})")
    data["cutoffs"] = [Cutoff.from_dict(item) for item in data["cutoffs"]]
    data["scores"] = validate_records(data["scores"])
    return data


def _png_base64(figure: Figure, *, dpi: int = 100) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _format_value(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"


def _steps_text(series: SeriesCutoff) -> list[str]:
    return [f"{_format_value(step.axis_value)}: recall {_format_value(step.recall)}, precision "
            f"{_format_value(step.precision)}, RMS {_format_value(step.rms_angstrom)} Å "
            f"({step.n_images} images" + (f", {step.n_failed} failed)" if step.n_failed else ")")
            for step in series.steps]


def _cutoff_cell(series: SeriesCutoff) -> dict[str, Any]:
    cutoff = series.lead
    if cutoff.status == "crossed":
        text = _format_value(cutoff.value)
        if cutoff.interval is not None:
            text += f" [{_format_value(cutoff.interval[0])}, {_format_value(cutoff.interval[1])}]"
    else:
        text = cutoff.status
    detail = f"{cutoff.criterion or ''} · {cutoff.method}"
    if cutoff.crossed_fraction is not None:
        detail += f" · crossed in {cutoff.crossed_fraction:.0%} of {cutoff.n_bootstrap}"
    if series.check is not None:
        check = series.check
        detail += f" · {check.method}: " + (
            _format_value(check.value) if check.status == "crossed" else check.status)
    detail += f" · {cutoff.n_images} images, {cutoff.n_failed} failed"
    return {"text": text, "detail": detail, "status": cutoff.status.replace(" ", "-"),
            "unstable": series.unstable, "reasons": list(series.reasons),
            "steps": _steps_text(series)}


def _cutoff_tables(series: Sequence[SeriesCutoff]) -> list[dict[str, Any]]:
    tables = []
    for group in sorted({s.lead.group for s in series}):
        in_group = [s for s in series if s.lead.group == group]
        models = sorted({s.lead.model for s in in_group})
        rows = []
        for name, axis in AXES.items():
            on_axis = {s.lead.model: s for s in in_group if s.lead.axis == name}
            if not on_axis:
                continue
            first = next(iter(on_axis.values())).lead
            rows.append({
                "label": axis.label,
                "direction": axis.direction,
                "range": f"{_format_value(first.tested_range[0])} → "
                f"{_format_value(first.tested_range[1])}",
                "cells": {model: _cutoff_cell(s) for model, s in on_axis.items()},
            })
        tables.append({"group": group, "models": models, "rows": rows})
    return tables


def _experimental(cutoffs: Sequence[Cutoff]) -> list[str]:
    """Groups made from labelled real images (named ``*-experimental``): reported apart."""
    return sorted({c.group for c in cutoffs if c.group.endswith(EXPERIMENTAL_SUFFIX)})


def _failure_figures(failure_images: Sequence[Mapping[str, Any]]) -> list[str]:
    pictures = []
    for index, item in enumerate(failure_images):
        missing = [field for field in _FAILURE_FIELDS if field not in item]
        if missing:
            raise InputError(f"failure_images[{index}] lacks field(s) {missing}")
        options = {k: item[k] for k in ("image_id", "model", "pixel_size", "scores") if k in item}
        figure = plot_failure(
            item["image"],
            item["truth"],
            item["predicted"],
            matched_truth_index=item["matched_truth_index"],
            matched_predicted_index=item["matched_predicted_index"],
            **options,
        )
        pictures.append(_png_base64(figure, dpi=80))
    return pictures


def write_report(
    records: Iterable[Mapping[str, Any]],
    *,
    out_dir: str | Path,
    provenance: Mapping[str, Any],
    failure_images: Sequence[Mapping[str, Any]] | None = None,
    criteria: CutoffCriteria = DEFAULT_CRITERIA,
    bootstrap: int = 200,
    seed: int = 0,
) -> Path:
    """Compute cutoffs and write ``report.html`` and ``report.json`` into ``out_dir``.

    Parameters
    ----------
    records : iterable of mapping
        Score records (validated here).
    out_dir : str or Path
        Output folder (created if needed).
    provenance : mapping
        ``dataset_name``, ``dataset_version``, ``dataset_sha256``, ``scorer_version`` and
        any further fields to record.
    failure_images : sequence of mapping, optional
        Pictures to show, each with ``image``, ``truth``, ``predicted``,
        ``matched_truth_index``, ``matched_predicted_index`` and optionally ``image_id``,
        ``model``, ``pixel_size`` (angstrom per pixel) and ``scores`` (see
        :func:`~stembench.client.analysis.failures.plot_failure`).
    criteria : CutoffCriteria, optional
        Cutoff thresholds.
    bootstrap, seed : int, optional
        Bootstrap samples and seed of the cutoff uncertainty.

    Returns
    -------
    Path
        The HTML file.
    """
    _full_provenance(provenance)
    checked = validate_records(records)
    cutoffs = compute_cutoffs(checked, criteria=criteria, bootstrap=bootstrap, seed=seed)
    data = build_report_data(checked, provenance=provenance, cutoffs=cutoffs, criteria=criteria)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(data, indent=1, allow_nan=False), encoding="utf-8")
    groups = sorted({c.group for c in cutoffs} - set(_experimental(cutoffs)))
    real = _experimental(cutoffs)
    tables = _cutoff_tables(series_cutoffs(cutoffs, checked, criteria=criteria))
    trends = {group: _png_base64(plot_trends(checked, group=group, cutoffs=cutoffs,
                                             criteria=criteria), dpi=70)
              for group in [*groups, *real]}
    environment = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    html = environment.get_template("report.html.j2").render(
        provenance=data["provenance"],
        criteria=criteria,
        models=data["models"],
        radar=(_png_base64(plot_radar(cutoffs, method=LEAD_METHOD, groups=groups))
               if groups else None),
        cutoff_tables=[t for t in tables if t["group"] in groups],
        cutoff_method=data["cutoff_method"],
        summary=data["group_summary"],
        column_types=data["column_types"],
        trends=[{"group": group, "png": trends[group]} for group in groups],
        experimental={
            "groups": real,
            "radar": (_png_base64(plot_radar(cutoffs, method=LEAD_METHOD, groups=real))
                      if real else None),
            "tables": [t for t in tables if t["group"] in real],
            "trends": [{"group": group, "png": trends[group]} for group in real],
        },
        generality=[r for r in checked if r["series"] == "generality"],
        failed=[r for r in checked if r["failed"]],
        failures=_failure_figures(failure_images or []),
        fmt=_format_value,
        json_name=json_path.name,
    )
    html_path = out / "report.html"
    html_path.write_text(html, encoding="utf-8")
    return html_path
