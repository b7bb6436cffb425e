"""Queries of the service's users: submit jobs and uploads, cancel them.

Every state change of a job is a conditional UPDATE (``WHERE status = ...``), so a
cancelling user and a worker never both win. The worker's side (claim, renew, give back,
end) is in :mod:`stembench.service.leases`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stembench.errors import StembenchError
from stembench.service.db import utcnow
from stembench.service.models import ACTIVE_STATUSES, Job

__all__ = [
    "JobConflictError",
    "cancel_job",
    "create_job",
    "create_upload",
    "submission_key",
    "upload_key",
]


class JobConflictError(StembenchError):
    """A job cannot make the requested change in its present state (message says why)."""


def submission_key(owner: str, model: str, options: Mapping[str, Any], dataset_name: str,
                   dataset_preset: str, dataset_version: str) -> str:
    """SHA-256 of who asks and what determines the result: model, options, dataset version.

    The owner is part of the key: a job runs as its owner (on Globus Compute, with the
    owner's token, on the owner's endpoint, mapped to the owner's local account), so another
    user's identical submission is that user's own job, never a job they cannot see. The
    same finished results are still stored once (``duplicate_of``, when the job ends).

    Parameters
    ----------
    owner : str
        Identity of the submitting user (its Globus identity ``sub``).
    model : str
        The model spec (registry name, file or ``module:function``).
    options : mapping of str to Any
        The model's options, as submitted.
    dataset_name, dataset_preset, dataset_version : str
        The benchmark dataset the job is scored on.
    """
    payload = json.dumps({"owner": owner, "model": model, "options": dict(options),
                          "dataset": dataset_name,
                          "preset": dataset_preset, "version": dataset_version},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def create_job(session: Session, *, owner: str, owner_name: str | None, model: str,
               options: Mapping[str, Any], dataset_name: str, dataset_preset: str,
               dataset_version: str, endpoint_id: str | None,
               endpoint_options: Mapping[str, Any] | None = None,
               linked: Sequence[str] = ()) -> tuple[Job, bool]:
    """Queue a job, or return the owner's live job with the same submission key.

    A live job of one of the owner's linked identities (the same person logged in with
    another account of their Globus identity set) with that evaluation is theirs too: it is
    returned, not queued twice.

    Where a job runs (its endpoint and that endpoint's options) is not part of the key:
    the same evaluation elsewhere gives the same scores.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        The service database session; committed here.
    owner : str
        Identity of the submitting user (its Globus identity ``sub``).
    owner_name : str or None
        That user's display name, shown on the leaderboard.
    model : str
        The model spec (registry name, file or ``module:function``).
    options : mapping of str to Any
        The model's options.
    dataset_name, dataset_preset, dataset_version : str
        The benchmark dataset to score on.
    endpoint_id : str or None
        Globus Compute endpoint to run on; ``None``: the service's own workers.
    endpoint_options : mapping of str to Any, optional
        That endpoint's ``user_endpoint_config`` options; default none.
    linked : sequence of str, optional
        The owner's linked identities (``Identity.identities``); default none.

    Returns
    -------
    (Job, bool)
        The job and whether it was created now (False: a duplicate submission).
    """
    for other in linked:
        if other != owner:
            found = _live_job(session, submission_key(other, model, options, dataset_name,
                                                      dataset_preset, dataset_version))
            if found is not None:
                return found, False
    key = submission_key(owner, model, options, dataset_name, dataset_preset, dataset_version)
    return _insert(session, key, owner=owner, owner_name=owner_name, model=model,
                   model_options=json.dumps(dict(options), sort_keys=True),
                   dataset_name=dataset_name, dataset_preset=dataset_preset,
                   dataset_version=dataset_version, endpoint_id=endpoint_id, source="worker",
                   endpoint_options=json.dumps(dict(endpoint_options or {}), sort_keys=True))


def create_upload(session: Session, *, owner: str, owner_name: str | None, content_sha256: str,
                  card: Mapping[str, Any], dataset_name: str, dataset_preset: str,
                  dataset_version: str) -> tuple[Job, bool]:
    """Queue the re-scoring of an uploaded result; the same owner, content and card make one job.

    Parameters
    ----------
    session, owner, owner_name
        As in :func:`create_job` (``owner``: the uploading user).
    content_sha256 : str
        SHA-256 (hex) of the uploaded results file.
    card : mapping of str to Any
        The model card sent with the upload (its ``name`` names the job's model).
    dataset_name, dataset_preset, dataset_version : str
        The benchmark dataset the results were computed on.

    Returns
    -------
    (Job, bool)
        The job and whether it was created now (False: a retried upload).
    """
    card_json = json.dumps(dict(card), sort_keys=True)
    key = upload_key(owner, content_sha256, card)
    return _insert(session, key, owner=owner, owner_name=owner_name, model=str(card["name"]),
                   model_options="{}", dataset_name=dataset_name, dataset_preset=dataset_preset,
                   dataset_version=dataset_version, endpoint_id=None, source="upload",
                   model_card_json=card_json)


def upload_key(owner: str, content_sha256: str, card: Mapping[str, Any]) -> str:
    """Submission key of an upload: SHA-256 of its owner, content hash and model card.

    Parameters
    ----------
    owner : str
        Identity of the uploading user.
    content_sha256 : str
        SHA-256 (hex) of the uploaded results file.
    card : mapping of str to Any
        The model card sent with the upload.
    """
    card_json = json.dumps(dict(card), sort_keys=True)
    return hashlib.sha256(json.dumps(["upload", owner, content_sha256, card_json])
                          .encode()).hexdigest()


def _insert(session: Session, key: str, **values: Any) -> tuple[Job, bool]:
    existing = _live_job(session, key)
    if existing is not None:
        return existing, False
    now = utcnow()
    job = Job(id=uuid.uuid4().hex, submission_key=key, status="queued", cancel_requested=False,
              n_done=0, attempts=0, created_at=now, updated_at=now, **values)
    session.add(job)
    try:
        session.commit()
    except IntegrityError:  # a concurrent identical submission won the unique index
        session.rollback()
        existing = _live_job(session, key)
        if existing is None:
            raise
        return existing, False
    return job, True


def _live_job(session: Session, key: str) -> Job | None:
    return session.scalars(select(Job).where(
        Job.submission_key == key, Job.status.in_(ACTIVE_STATUSES))).first()


def cancel_job(session: Session, job: Job) -> Job:
    """Cancel a queued job at once, or ask the worker to stop a running one."""
    if job.status in ("done", "failed", "cancelled"):
        raise JobConflictError(f"job {job.id} is already {job.status}; only queued or running jobs "
                          "can be cancelled")
    now = utcnow()
    stopped = session.execute(update(Job).where(Job.id == job.id, Job.status == "queued").values(
        status="cancelled", cancel_requested=True, updated_at=now, finished_at=now))
    if stopped.rowcount == 0:  # type: ignore[attr-defined]
        session.execute(update(Job).where(Job.id == job.id, Job.status == "running").values(
            cancel_requested=True, updated_at=now))
    session.commit()
    session.refresh(job)
    return job


def has_live_jobs(session: Session, owner: str) -> bool:
    """True while one of ``owner``'s evaluation jobs is queued or running."""
    found = session.scalar(select(Job.id).where(
        Job.owner == owner, Job.source == "worker",
        Job.status.in_(("queued", "running"))).limit(1))
    return found is not None
