"""Leaderboard rows: per data group, every finished model with its mean scores and cutoffs.

Ranking by an axis puts the model that tolerates the worst images first: "not reached"
(never failed in the tested range) before any crossing, crossings ordered by how bad the
image was when the model failed (see :meth:`Axis.badness`), "fails from start" last.
Without an axis the rows are ranked by mean F1 over the group's images, failed images
counted as F1 0 (the service stores a failed image as a result that found nothing). Each
row says how many images it covers and how many failed, and carries the entry's model
card and provenance.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stembench.client.analysis import AXES, RADAR_AXES, Cutoff
from stembench.endpoints.models.published import weights_origin
from stembench.service.models import CutoffRow, Job, ResultRow

__all__ = ["LEADERBOARD_METHOD", "group_cutoffs", "leaderboard", "list_groups", "rank_key"]

LEADERBOARD_METHOD = "pchip"


def list_groups(session: Session) -> list[str]:
    """Data groups that have stored results, sorted."""
    return sorted(session.scalars(select(ResultRow.group).distinct()).all())


def rank_key(cutoff: dict[str, Any] | None) -> tuple[int, float]:
    """Sort key (ascending = better) of a cutoff dict on its axis."""
    if cutoff is None:
        return (3, 0.0)
    axis = AXES[cutoff["axis"]]
    if cutoff["status"] == "not reached":
        return (0, -axis.badness(cutoff["tested_range"][1]))
    if cutoff["status"] == "crossed" and cutoff["value"] is not None:
        return (1, -axis.badness(cutoff["value"]))
    return (2, 0.0)


def _mean(value: Any) -> float | None:
    return None if value is None or math.isnan(float(value)) else float(value)


def group_cutoffs(session: Session, group: str,
                  job_ids: list[str] | None = None) -> list[Cutoff]:
    """Stored leaderboard-method cutoffs of a group (optionally of some jobs only).

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        The service database session.
    group : str
        The data group.
    job_ids : list of str, optional
        Only these entries' cutoffs; default every entry's.
    """
    query = select(CutoffRow.cutoff_json).where(CutoffRow.group == group,
                                                CutoffRow.method == LEADERBOARD_METHOD)
    if job_ids is not None:
        query = query.where(CutoffRow.job_id.in_(job_ids))
    return [Cutoff.from_dict(json.loads(text)) for text in session.scalars(query)]


def _provenance(job: Job, host: str | None, device: str | None) -> dict[str, Any]:
    return {"source": job.source, "dataset": f"{job.dataset_name} {job.dataset_preset} "
            f"{job.dataset_version}", "dataset_sha256": job.dataset_sha256 or "",
            "scorer_version": job.scorer_version or "",
            "ran_on": " / ".join(p for p in (host, device) if p) or "unknown",
            "finished_at": job.finished_at.isoformat() if job.finished_at else ""}


def leaderboard(session: Session, group: str, axis: str | None, *,
                independent_only: bool = False) -> list[dict[str, Any]]:
    """Ranked rows of one data group (dicts shaped like ``schemas.LeaderboardRow``).

    ``independent_only`` keeps the entries whose model card says the model's training data
    does not overlap the benchmark's structures or generator.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        The service database session.
    group : str
        The data group ranked.
    axis : str or None
        Quality axis (series name) to rank by its cutoff; ``None``: rank by mean F1.
    independent_only : bool, optional
        Only entries whose model card declares no overlap with the benchmark; default False.
    """
    query = (select(ResultRow.job_id, func.count(), func.avg(ResultRow.recall),
                    func.avg(ResultRow.precision), func.avg(ResultRow.f1),
                    func.avg(ResultRow.rms_angstrom), func.count(ResultRow.error),
                    func.max(ResultRow.host), func.max(ResultRow.device))
             .join(Job, Job.id == ResultRow.job_id)
             .where(ResultRow.group == group, Job.status == "done")
             .group_by(ResultRow.job_id))
    if independent_only:
        query = query.where(Job.training_overlap == "no")
    summary = session.execute(query).all()
    if not summary:
        return []
    job_ids = [row[0] for row in summary]
    jobs = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(job_ids)))}
    cutoffs: dict[str, dict[str, Any]] = {job_id: {} for job_id in job_ids}
    for job_id, text in session.execute(
            select(CutoffRow.job_id, CutoffRow.cutoff_json).where(
                CutoffRow.group == group, CutoffRow.method == LEADERBOARD_METHOD,
                CutoffRow.job_id.in_(job_ids))):
        data = json.loads(text)
        cutoffs[job_id][data["axis"]] = data
    rows = []
    for job_id, count, recall, precision, f1, rms, failed, host, device in summary:
        job = jobs[job_id]
        ordered = {name: cutoffs[job_id][name] for name in RADAR_AXES if name in cutoffs[job_id]}
        rows.append({"job_id": job_id, "model": job.model, "model_version": job.model_version or "",
                     "weights_sha256": job.weights_sha256 or "",
                     "weights_origin": weights_origin(job.weights_sha256, model=job.model),
                     "n_images": int(count),
                     "n_failed": int(failed), "recall": _mean(recall),
                     "precision": _mean(precision), "f1": _mean(f1), "rms_angstrom": _mean(rms),
                     "cutoffs": ordered, "training_overlap": job.training_overlap or "unknown",
                     "card": json.loads(job.model_card_json) if job.model_card_json else None,
                     "provenance": _provenance(job, host, device)})
    if axis is None:
        rows.sort(key=lambda r: (-(r["f1"] if r["f1"] is not None else -1.0), r["model"]))
    else:
        rows.sort(key=lambda r: (rank_key(r["cutoffs"].get(axis)), r["model"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows
