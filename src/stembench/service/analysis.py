"""What the service derives from a finished job's records: cutoffs, report, radar PNGs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stembench.client.analysis import Cutoff, compute_cutoffs
from stembench.errors import InputError
from stembench.service.models import Job

__all__ = ["job_cutoffs", "radar_png", "write_job_report"]

log = logging.getLogger(__name__)


def job_cutoffs(records: Sequence[Mapping[str, Any]], *,
                bootstrap: int) -> tuple[list[Cutoff], str | None]:
    """Cutoffs of a job's records, or none and a note saying why they cannot be computed."""
    try:
        return compute_cutoffs(records, bootstrap=bootstrap, progress=False), None
    except InputError as exc:
        return [], f"no cutoffs: {exc}"


def write_job_report(records: Sequence[Mapping[str, Any]], out_dir: Path, *, job: Job,
                     bootstrap: int, image_errors: Sequence[Mapping[str, str]]) -> Path | None:
    """Write the analysis report of a job into ``out_dir``; None when it cannot be made.

    Parameters
    ----------
    records : sequence of mapping
        The job's re-scored score records (at least one).
    out_dir : pathlib.Path
        Folder the report is written into.
    job : Job
        The job, for the report's provenance (id, model spec and options).
    bootstrap : int
        Bootstrap resamples for the cutoffs' confidence intervals.
    image_errors : sequence of mapping of str to str
        One entry per failed image, counted in the provenance.
    """
    from stembench.client.analysis.report import write_report

    first = records[0]
    provenance = {
        "dataset_name": first.get("dataset_name"), "dataset_version": first.get("dataset_version"),
        "dataset_sha256": first.get("dataset_manifest_sha256"),
        "scorer_version": first.get("stembench_version"), "job_id": job.id,
        "model_spec": job.model, "model_options": json.loads(job.model_options),
        "images_failed": len(image_errors),
    }
    try:
        return write_report(records, out_dir=out_dir, provenance=provenance, bootstrap=bootstrap)
    except InputError as exc:
        log.warning("job %s: no report: %s", job.id, exc)
        return None


def radar_png(cutoffs: Sequence[Cutoff], *, group: str, dpi: int = 90) -> bytes:
    """PNG bytes of the radar plot of ``cutoffs`` for one data group (pchip cutoffs).

    Parameters
    ----------
    cutoffs : sequence of Cutoff
        The cutoffs to draw (pchip method).
    group : str
        The data group drawn.
    dpi : int, optional
        Resolution of the PNG, dots per inch; default 90.
    """
    from stembench.client.analysis.radar import plot_radar

    figure = plot_radar(cutoffs, method="pchip", groups=[group])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()
