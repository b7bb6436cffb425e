"""Leaderboard (JSON and HTML), radar plot PNGs and job reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from stembench.client.analysis import AXES, RADAR_AXES
from stembench.service.api import DB, JobId, stored_job
from stembench.service.figures import FigureBusyError, figure_cache, group_radar
from stembench.service.leaderboard import leaderboard, list_groups
from stembench.service.schemas import ErrorOut, LeaderboardOut
from stembench.service.token_budget import client_network
from stembench.service.worker import job_folder

__all__ = ["router"]

router = APIRouter()
Group = Annotated[str, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
_PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}},
                                         404: {"model": ErrorOut}}
_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=select_autoescape(["html", "j2"]))


def _png(data: bytes) -> Response:
    return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=300"})


@router.get("/api/leaderboard", response_model=LeaderboardOut,
            responses={404: {"model": ErrorOut}})
def leaderboard_json(db: DB, group: Group | None = None,
                     axis: Annotated[str | None, Query(max_length=32)] = None,
                     independent: Annotated[bool, Query(
                         description="Only models whose training data does not overlap the "
                                     "benchmark (model card)")] = False) -> LeaderboardOut:
    """Leaderboard of one data group (default: the first), ranked by ``axis`` or by F1."""
    groups = list_groups(db)
    if axis is not None and axis not in AXES:
        raise HTTPException(422, f"unknown axis {axis!r}; expected one of {list(RADAR_AXES)}")
    chosen = group or (groups[0] if groups else "")
    if group is not None and group not in groups:
        raise HTTPException(404, f"no results for data group {group!r}; groups: {groups}")
    rows = leaderboard(db, chosen, axis, independent_only=independent) if chosen else []
    return LeaderboardOut.model_validate({"group": chosen, "axis": axis, "groups": groups,
                                          "axes": list(RADAR_AXES), "rows": rows})


def _known(request: Request, group: str) -> list[str]:
    with request.app.state.sessions() as session:
        return group_radar(session, group)


async def _caller(request: Request) -> str:
    """Whom an overlay counts against: the identity of a request that carries a token (checked
    like any other), else the client's address (an IPv6 client's /64 network, which one
    machine commonly holds whole). Behind a reverse proxy, run uvicorn with
    ``--forwarded-allow-ips`` so that the address is the client's, not the proxy's."""
    header, verifier = request.headers.get("authorization"), request.app.state.verifier
    host = request.client.host if request.client else None
    if header is not None and verifier is not None:
        return "identity " + (await verifier.verify_async(header, client_host=host)).sub
    return client_network(host)


async def _radar(request: Request, group: str, job_ids: list[str] | None) -> bytes | None:
    """Radar PNG of some jobs (all: None) on a group, from the figure cache; None if no cutoffs.

    The request waits on the event loop while the cache draws (see
    :meth:`~stembench.service.figures.FigureCache.radar_async`); a set other than the
    whole group or one entry is an overlay, limited per minute and caller (429 beyond).
    """
    known = await run_in_threadpool(_known, request, group)
    chosen = known if job_ids is None else sorted(set(job_ids) & set(known))
    if not chosen:
        return None
    cache = figure_cache(request.app.state.settings)
    overlay = len(chosen) > 1 and chosen != known
    try:
        return await cache.radar_async(request.app.state.sessions, group, chosen,
                                       overlay=overlay,
                                       caller=await _caller(request) if overlay else "-")
    except FigureBusyError as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": "60"}) from exc


@router.get("/api/leaderboard/{group}/radar.png", response_class=Response, responses=_PNG)
async def leaderboard_radar(group: str, request: Request,
                            jobs: Annotated[str | None, Query(
                                max_length=33 * 50, pattern=r"^[0-9a-f]{32}(,[0-9a-f]{32})*$",
                                description="Comma-separated job ids to overlay (default: "
                                            "every entry)")] = None) -> Response:
    """Radar plot of every model (or of the chosen ``jobs``: at most a few new overlays a
    minute are drawn for each caller, 429 beyond) on one data group."""
    data = await _radar(request, group, None if jobs is None else jobs.split(","))
    if data is None:
        raise HTTPException(404, f"no cutoffs for data group {group!r}"
                                 + (" and the chosen jobs" if jobs else ""))
    return _png(data)


@router.get("/api/jobs/{job_id}/radar/{group}.png", response_class=Response, responses=_PNG)
async def job_radar(job_id: JobId, group: str, request: Request) -> Response:
    """Radar plot of one finished job on one data group."""
    def find() -> str:
        with request.app.state.sessions() as session:
            return stored_job(session, job_id).id

    data = await _radar(request, group, [await run_in_threadpool(find)])
    if data is None:
        raise HTTPException(404, f"job {job_id} has no cutoffs for data group {group!r}")
    return _png(data)


@router.get("/jobs/{job_id}/report", response_class=HTMLResponse,
            responses={404: {"model": ErrorOut}})
def job_report(job_id: JobId, db: DB, request: Request) -> FileResponse:
    """The analysis report of a finished job (HTML)."""
    job = stored_job(db, job_id)
    path = job_folder(request.app.state.settings, job.id) / "report" / "report.html"
    if not path.is_file():
        raise HTTPException(404, f"job {job_id} has no report")
    return FileResponse(path, media_type="text/html")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def leaderboard_page(db: DB) -> HTMLResponse:
    """The leaderboard: one sortable table per data group with its radar plot."""
    tables: list[dict[str, Any]] = []
    for group in list_groups(db):
        rows = leaderboard(db, group, None)
        axes = [a for a in RADAR_AXES if any(a in r["cutoffs"] for r in rows)]
        tables.append({"group": group, "rows": rows, "axes": [AXES[a] for a in axes],
                       "radar": any(r["cutoffs"] for r in rows)})
    html = _TEMPLATES.get_template("leaderboard.html.j2").render(
        tables=tables, fmt=_format, cutoff_cell=_cutoff_cell)
    return HTMLResponse(html)


def _format(value: float | None, digits: int = 3) -> str:
    return "\u2013" if value is None else f"{value:.{digits}f}"


def _cutoff_cell(cutoff: dict[str, Any] | None) -> dict[str, Any]:
    """Text and numeric sort key of a cutoff cell (larger sort key = more tolerant model)."""
    from stembench.service.leaderboard import rank_key

    if cutoff is None:
        return {"text": "\u2013", "sort": "-1e300", "title": "not tested"}
    tier, negative_badness = rank_key(cutoff)
    sort = f"{(3 - tier) * 1e6 - negative_badness:.9g}"
    if cutoff["status"] == "not reached":
        text = f"> {cutoff['tested_range'][1]:.3g}"
    elif cutoff["status"] == "crossed":
        text = f"{cutoff['value']:.3g}"
    else:
        text = "fails"
    return {"text": text, "sort": sort, "title": f"{cutoff['status']}"
            + (f" ({cutoff['criterion']})" if cutoff.get("criterion") else "")}
