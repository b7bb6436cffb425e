"""JSON routes: datasets, models, jobs (submit, follow, cancel) and stored results.

Reading datasets, models, results and the leaderboard is public. Submitting needs a Globus
Auth token; a user lists, follows and cancels only their own jobs (others' job ids answer
404). A submission identical to a live job (same model, options and dataset version)
answers **200** with ``duplicate: true`` and that job; a new job answers **201**.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from stembench.errors import StembenchError
from stembench.service import store
from stembench.service.auth import AuthError, Identity, bearer_token
from stembench.service.models import CutoffRow, Job, ResultRow
from stembench.service.schemas import (
    CutoffOut,
    DatasetOut,
    ErrorOut,
    JobOut,
    ModelOut,
    ScoreOut,
    ScoresOut,
    SubmitIn,
    SubmitOut,
)
from stembench.service.worker import import_function

__all__ = ["JobId", "job_out", "router", "session", "stored_job"]

router = APIRouter(prefix="/api")
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="Job id (32 hex digits)")]
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, malformed, expired or foreign token"},
    403: {"model": ErrorOut, "description": "Token lacks the required scope"},
    503: {"model": ErrorOut, "description": "Authentication not configured or unreachable"},
}


def session(request: Request) -> Iterator[Session]:
    """A database session for one request."""
    with request.app.state.sessions() as db:
        yield db


async def identity(request: Request) -> Identity:
    """The caller's Globus identity; :class:`AuthError` when the token is not good enough.

    Runs on the event loop: the token check waits there (see
    :meth:`~stembench.service.auth.TokenVerifier.verify_async`), holding no request thread.
    """
    verifier = request.app.state.verifier
    if verifier is None:
        raise AuthError(503, "temporarily_unavailable", "this service has no Globus Auth client "
                        "configured, so it accepts no submissions")
    identity: Identity = await verifier.verify_async(
        request.headers.get("authorization"),
        client_host=request.client.host if request.client else None)
    return identity


DB = Annotated[Session, Depends(session)]
Caller = Annotated[Identity, Depends(identity)]


def job_out(job: Job) -> JobOut:
    """The API view of a job."""
    return JobOut(id=job.id, status=job.status, model=job.model,
                  options=json.loads(job.model_options), dataset_name=job.dataset_name,
                  dataset_preset=job.dataset_preset, dataset_version=job.dataset_version,
                  endpoint_id=job.endpoint_id,
                  endpoint_options=json.loads(job.endpoint_options or "{}"),
                  cancel_requested=job.cancel_requested,
                  n_images=job.n_images, n_done=job.n_done, error=job.error,
                  weights_sha256=job.weights_sha256, model_version=job.model_version,
                  duplicate_of=job.duplicate_of, created_at=job.created_at,
                  finished_at=job.finished_at, source=job.source, n_failed=job.n_failed)


def _own_job(db: Session, job_id: str, caller: Identity) -> Job:
    job = db.get(Job, job_id)
    if job is None or not caller.owns(job.owner):
        raise HTTPException(404, f"no job {job_id} submitted by you")
    return job


def stored_job(db: Session, job_id: str) -> Job:
    """The finished job whose results ``job_id`` names (following ``duplicate_of``)."""
    job = db.get(Job, job_id)
    if job is not None and job.duplicate_of:
        job = db.get(Job, job.duplicate_of)
    if job is None or job.status != "done":
        raise HTTPException(404, f"no stored results for job {job_id} (unknown or not finished)")
    return job


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Service status: database revision, auth configured, worker running, upload limits.

    Runs on the event loop and touches neither the database nor a thread, so it answers
    at once however busy the request threads are.
    """
    from stembench._version import __version__

    state = request.app.state
    settings = state.settings
    return {"status": "ok", "version": __version__, "database_revision": state.revision,
            "auth_configured": state.verifier is not None, "worker": state.worker is not None,
            "max_upload_bytes": settings.max_upload_bytes,
            "upload_part_bytes": settings.upload_part_bytes}


@router.get("/datasets", response_model=list[DatasetOut])
def list_datasets() -> list[DatasetOut]:
    """Dataset presets the service builds and evaluates on."""
    from stembench.dataset_publish.simulate.build import DATASET_NAME, DATASET_VERSION, PRESETS

    return [DatasetOut(name=DATASET_NAME, version=DATASET_VERSION, preset=name,
                       image_shape=list(preset.shape), seeds=preset.seeds)
            for name, preset in sorted(PRESETS.items())]


def registered_models() -> list[ModelOut]:
    """The model registry's entries."""
    from stembench.endpoints.models.registry import available_models

    return [ModelOut(name=e.name, description=e.description, framework=e.framework,
                     available=e.importable) for e in available_models()]


@router.get("/models", response_model=list[ModelOut])
def list_models() -> list[ModelOut]:
    """Registered models."""
    return registered_models()


@router.post("/jobs", response_model=SubmitOut, status_code=201,
             responses={200: {"model": SubmitOut, "description": "Duplicate of a live job"},
                        **_AUTH_ERRORS})
async def submit(body: SubmitIn, caller: Caller, db: DB, request: Request,
                 response: Response) -> SubmitOut:
    """Queue an evaluation of a registered model on a dataset preset.

    On a service running jobs on Globus Compute, ``endpoint_options`` are checked against
    the schema the endpoint publishes (422 when refused) before anything is queued; the
    calls to Globus wait on the event loop, never on a request thread
    (:mod:`stembench.service.delegation`).
    """
    settings = request.app.state.settings
    version = await run_in_threadpool(_checked_version, settings, body)

    def create() -> tuple[Job, bool]:
        return store.create_job(
            db, owner=caller.sub, owner_name=caller.username, model=body.model,
            options=body.options, dataset_name=body.dataset_name,
            dataset_preset=body.dataset_preset, dataset_version=version,
            endpoint_id=body.endpoint_id, endpoint_options=body.endpoint_options,
            linked=caller.identities)

    if settings.executor != "globus":
        if body.endpoint_options:
            raise HTTPException(422, "endpoint_options: this service runs no job on a Globus "
                                     "Compute endpoint")
        job, created = await run_in_threadpool(create)
    else:  # the job runs as the caller, with their one kept Compute token, never the service's
        from stembench.service.delegation import delegated_job

        job, created = await delegated_job(request, caller, body, create)
    if not created:
        response.status_code = 200
    return SubmitOut(job=job_out(job), duplicate=not created)


def _checked_version(settings: Any, body: SubmitIn) -> str:
    """The dataset version a submission names, once its model, options, endpoint and dataset
    are checked (HTTP 422 or 403 with the reason)."""
    models = registered_models()
    if body.model not in {m.name for m in models}:
        raise HTTPException(422, f"unknown model {body.model!r}: this service evaluates "
                                 f"registered models only ({', '.join(m.name for m in models)})")
    try:  # the options are checked now, not when the job runs
        import_function(settings.options_check)(body.model, body.options, allow_files=False)
    except StembenchError as exc:
        raise HTTPException(422, str(exc)) from exc
    refusal = settings.endpoint_refusal(body.endpoint_id)
    if refusal:
        raise HTTPException(403, refusal)
    datasets = {(d.name, d.preset): d for d in list_datasets()}
    known = datasets.get((body.dataset_name, body.dataset_preset))
    if known is None:
        raise HTTPException(422, f"unknown dataset {body.dataset_name!r} preset "
                                 f"{body.dataset_preset!r}; see GET /api/datasets")
    return body.dataset_version or str(known.version)


@router.post("/logout", status_code=204, responses=_AUTH_ERRORS)
async def logout(caller: Caller, request: Request) -> Response:
    """Stop accepting the caller's token: this service drops it from its cache and refuses it
    from now on (401), before it expires, in every process (recorded in its database until
    the token expires). Revoking it with Globus Auth stays the caller's
    client's job (the service cannot revoke a token another client was issued)."""
    token = bearer_token(request.headers.get("authorization"))
    await run_in_threadpool(request.app.state.logouts.add,
                            hashlib.sha256(token.encode()).hexdigest(), caller.expires_at)
    request.app.state.verifier.forget(token, "token was logged out of this service; log in "
                                             "again")
    return Response(status_code=204)


@router.get("/jobs", response_model=list[JobOut], responses=_AUTH_ERRORS)
def my_jobs(caller: Caller, db: DB,
            limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[JobOut]:
    """Your jobs, newest first."""
    jobs = db.scalars(select(Job).where(Job.owner.in_(caller.identities))
                      .order_by(Job.created_at.desc()).limit(limit))
    return [job_out(job) for job in jobs]


@router.get("/jobs/{job_id}", response_model=JobOut,
            responses={404: {"model": ErrorOut}, **_AUTH_ERRORS})
def follow(job_id: JobId, caller: Caller, db: DB) -> JobOut:
    """Status and progress of one of your jobs."""
    return job_out(_own_job(db, job_id, caller))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut,
             responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}, **_AUTH_ERRORS})
def cancel(job_id: JobId, caller: Caller, db: DB) -> JobOut:
    """Cancel one of your jobs (a running job stops after its shards in flight). The job
    worker revokes your kept Globus Compute token once no job of yours needs it."""
    job = _own_job(db, job_id, caller)
    try:
        cancelled = store.cancel_job(db, job)
    except store.JobConflictError as exc:
        raise HTTPException(409, str(exc)) from exc
    return job_out(cancelled)


@router.get("/jobs/{job_id}/scores", response_model=ScoresOut,
            responses={404: {"model": ErrorOut}})
def scores(job_id: JobId, db: DB, offset: Annotated[int, Query(ge=0)] = 0,
           limit: Annotated[int, Query(ge=1, le=5000)] = 1000) -> ScoresOut:
    """Per-image scores of a finished job, with provenance (public)."""
    job = stored_job(db, job_id)
    total = db.scalar(select(func.count()).where(ResultRow.job_id == job.id)) or 0
    rows = db.scalars(select(ResultRow).where(ResultRow.job_id == job.id)
                      .order_by(ResultRow.id).offset(offset).limit(limit))
    fields = ScoreOut.model_fields
    return ScoresOut(job_id=job.id, total=total, offset=offset,
                     scores=[ScoreOut(**{f: getattr(r, f) for f in fields}) for r in rows])


@router.get("/jobs/{job_id}/cutoffs", response_model=list[CutoffOut],
            responses={404: {"model": ErrorOut}})
def cutoffs(job_id: JobId, db: DB) -> list[CutoffOut]:
    """Cutoffs of a finished job, every group, axis and method (public)."""
    job = stored_job(db, job_id)
    texts = db.scalars(select(CutoffRow.cutoff_json).where(CutoffRow.job_id == job.id)
                       .order_by(CutoffRow.id))
    return [CutoffOut(**json.loads(text)) for text in texts]
