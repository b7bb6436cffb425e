"""Every per-image score of an entry as CSV or JSON, and an entry's own page (card and
provenance)."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
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


#: A spreadsheet reads a cell as a formula when its first visible character is one of
#: these (in any Unicode form NFKC folds onto them: full-width ``＝``, small ``﹦``...).
_FORMULA_STARTS = ("=", "+", "-", "@", "\u2212")
#: Characters a spreadsheet may skip before it reads a formula: whitespace and controls.
_INVISIBLE = "".join(chr(c) for c in range(0x21)) + "\x7f\u00a0\u1680\u2000\u2001\u2002" \
    "\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u2028\u2029\u202f\u205f" \
    "\u3000\ufeff"


def _cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text (OWASP's CSV injection advice): user text
    that starts with a formula character, after any leading whitespace or control characters
    and in any Unicode form folding onto one (full-width ``＝``), or that starts with
    whitespace or a control character at all (tab, carriage return, newline), gets a leading
    apostrophe. Numbers stay numbers."""
    if not isinstance(value, str) or not value:
        return value
    folded = unicodedata.normalize("NFKC", value)
    if folded.lstrip(_INVISIBLE).startswith(_FORMULA_STARTS) or value[0] in _INVISIBLE:
        return "'" + value
    return value


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/api/jobs/{job_id}/scores.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}, **_NOT_FOUND})
def scores_csv(job_id: JobId, db: DB) -> Response:
    """Every per-image score of a finished entry as CSV (one row per image); text cells that
    start with ``=``, ``+``, ``-`` or ``@`` (after leading whitespace, and in full-width
    forms such as ``＝``) or with whitespace or a control character get a leading ``'`` so
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
