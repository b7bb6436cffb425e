"""Every per-image score of an entry as CSV or JSON, and an entry's own page (card and
provenance)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from stembench.service.api import DB, JobId, job_out, stored_job
from stembench.service.models import Job, ResultRow
from stembench.service.schemas import ErrorOut, ScoreOut

__all__ = ["router"]

router = APIRouter()
_FIELDS = list(ScoreOut.model_fields)
_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=select_autoescape(["html", "j2"]))
_NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": ErrorOut}}


def _rows(db: DB, job_id: str) -> tuple[Job, list[dict[str, object]]]:
    job = stored_job(db, job_id)
    rows = db.scalars(select(ResultRow).where(ResultRow.job_id == job.id).order_by(ResultRow.id))
    return job, [{f: getattr(r, f) for f in _FIELDS} for r in rows]


#: A spreadsheet reads a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: user text that starts like a formula
    gets a leading apostrophe (numbers stay numbers)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/api/jobs/{job_id}/scores.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}, **_NOT_FOUND})
def scores_csv(job_id: JobId, db: DB) -> Response:
    """Every per-image score of a finished entry as CSV (one row per image); text cells that
    start with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return get a leading ``'`` so
    that a spreadsheet does not run them as formulas."""
    job, rows = _rows(db, job_id)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: _cell(value) for key, value in row.items()} for row in rows)
    return Response(buffer.getvalue(), media_type="text/csv",
                    headers=_attachment(f"stembench-{job.id}-scores.csv"))


@router.get("/api/jobs/{job_id}/scores.json", response_class=Response,
            responses={200: {"content": {"application/json": {}}}, **_NOT_FOUND})
def scores_json(job_id: JobId, db: DB) -> Response:
    """Every per-image score of a finished entry as one JSON document."""
    job, rows = _rows(db, job_id)
    body = {"job_id": job.id, "model": job.model, "model_version": job.model_version,
            "dataset_sha256": job.dataset_sha256, "scorer_version": job.scorer_version,
            "scores": rows}
    return Response(json.dumps(body, indent=1), media_type="application/json",
                    headers=_attachment(f"stembench-{job.id}-scores.json"))


@router.get("/entries/{job_id}", response_class=HTMLResponse, include_in_schema=False)
def entry_page(job_id: JobId, db: DB, request: Request) -> HTMLResponse:
    """One entry: status, model card, provenance and downloads (HTML)."""
    job = db.get(Job, job_id)
    if job is None:
        return HTMLResponse(f"<p>No entry {job_id}.</p>", status_code=404)
    groups = sorted(set(db.scalars(select(ResultRow.group).distinct()
                                   .where(ResultRow.job_id == (job.duplicate_of or job.id)))))
    card = json.loads(job.model_card_json) if job.model_card_json else None
    html = _TEMPLATES.get_template("entry.html.j2").render(
        job=job_out(job), card=card, groups=groups, dataset_sha256=job.dataset_sha256,
        scorer_version=job.scorer_version)
    return HTMLResponse(html)
