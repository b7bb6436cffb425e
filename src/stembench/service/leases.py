"""The worker's side of the job table: claim a job, renew its lease, give it back, end it.

Every state change of a job is a conditional UPDATE (``WHERE status = ...`` and ``WHERE
lease_owner = ...``), so two workers, or a worker and a cancelling user, never both win.
Results and cutoffs are only ever inserted. Submitting and cancelling are in
:mod:`stembench.service.store`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, false, or_, select, true, update
from sqlalchemy.orm import Session

from stembench.service.db import utcnow
from stembench.service.models import CutoffRow, Job, result_row

__all__ = ["claim_job", "fail_job", "find_duplicate_result", "finish_job", "renew_lease",
           "requeue_job"]


def claim_job(session: Session, *, worker_id: str, lease_s: float,
              max_attempts: int = 3) -> Job | None:
    """Claim the oldest queued job, or a running one whose lease ran out (a dead worker).

    A running job whose lease ran out after ``max_attempts`` claims is not taken again: it
    ends failed ("the worker stopped N times on this job"), so a job that kills its worker
    cannot be picked up forever.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        The service database session; committed here.
    worker_id : str
        The claiming worker, written as the lease owner.
    lease_s : float
        Seconds the lease lasts before another worker may take the job over.
    max_attempts : int, optional
        Claims a job may have before a lapsed lease fails it; default 3.
    """
    now = utcnow()
    lapsed = and_(Job.status == "running", Job.lease_expires_at < now)
    session.execute(update(Job).where(lapsed, Job.attempts >= max_attempts).values(
        status="failed", updated_at=now, finished_at=now, lease_expires_at=None,
        error=f"the worker stopped {max_attempts} times on this job"))
    session.execute(update(Job).where(  # cancelled while its worker stopped or died
        or_(Job.status == "queued", lapsed), Job.cancel_requested == true()).values(
        status="cancelled", updated_at=now, finished_at=now, lease_expires_at=None,
        error="cancelled by its owner"))
    session.commit()
    claimable = and_(or_(Job.status == "queued", and_(lapsed, Job.attempts < max_attempts)),
                     Job.cancel_requested == false())
    candidates = session.scalars(select(Job.id).where(claimable).order_by(Job.created_at)
                                 .limit(5)).all()
    for job_id in candidates:
        won = session.execute(update(Job).where(Job.id == job_id, claimable).values(
            status="running", lease_owner=worker_id, updated_at=now,
            lease_expires_at=now + timedelta(seconds=lease_s), attempts=Job.attempts + 1))
        session.commit()
        if won.rowcount == 1:  # type: ignore[attr-defined]
            return session.get(Job, job_id, populate_existing=True)
    return None


def renew_lease(session: Session, job_id: str, *, worker_id: str, lease_s: float,
                n_done: int | None = None, n_images: int | None = None) -> bool | None:
    """Extend the lease and record progress.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        The service database session; committed here.
    job_id : str
        The job whose lease to extend.
    worker_id : str
        The worker that must hold the lease.
    lease_s : float
        Seconds the lease lasts from now.
    n_done : int, optional
        Images scored so far; default: left unchanged.
    n_images : int, optional
        Images in the job; default: left unchanged.

    Returns
    -------
    bool or None
        Whether cancellation was requested; ``None`` when the lease was lost.
    """
    values: dict[str, Any] = {"lease_expires_at": utcnow() + timedelta(seconds=lease_s),
                              "updated_at": utcnow()}
    if n_done is not None:
        values["n_done"] = n_done
    if n_images is not None:
        values["n_images"] = n_images
    held = session.execute(update(Job).where(
        Job.id == job_id, Job.lease_owner == worker_id, Job.status == "running").values(**values))
    session.commit()
    if held.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def requeue_job(session: Session, job_id: str, *, worker_id: str) -> bool:
    """Give a running job back to the queue (its worker is stopping): not counted as an
    attempt; the next worker resumes it from its results file. Committed here.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        A session of the service's database.
    job_id : str
        The job.
    worker_id : str
        The worker giving it back; only a job this worker holds is given back.

    Returns
    -------
    bool
        False, and the job left as it is, when its owner asked to cancel it (or the lease
        is no longer this worker's).
    """
    requeued = session.execute(update(Job).where(
        Job.id == job_id, Job.lease_owner == worker_id, Job.status == "running",
        Job.cancel_requested == false()).values(
        status="queued", lease_owner=None, lease_expires_at=None, updated_at=utcnow(),
        attempts=Job.attempts - 1))
    session.commit()
    return bool(requeued.rowcount == 1)  # type: ignore[attr-defined]


def _end(session: Session, job_id: str, worker_id: str, *, unless_cancelled: bool = False,
         **values: Any) -> bool:
    now = utcnow()
    held = [Job.id == job_id, Job.lease_owner == worker_id, Job.status == "running"]
    if unless_cancelled:
        held.append(Job.cancel_requested == false())
    ended = session.execute(update(Job).where(*held).values(
        updated_at=now, finished_at=now, lease_expires_at=None, **values))
    return bool(ended.rowcount == 1)  # type: ignore[attr-defined]


def fail_job(session: Session, job_id: str, *, worker_id: str, error: str,
             cancelled: bool = False) -> None:
    """End a running job as failed (with ``error``) or cancelled.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        The service database session; committed here.
    job_id : str
        The job to end.
    worker_id : str
        The worker that must hold its lease.
    error : str
        What went wrong, shown to the owner (cut to 4000 characters).
    cancelled : bool, optional
        End it as cancelled rather than failed; default False.
    """
    _end(session, job_id, worker_id, status="cancelled" if cancelled else "failed",
         error=error[:4000])
    session.commit()


def find_duplicate_result(session: Session, job: Job, *, weights_sha256: str,
                          model_version: str) -> str | None:
    """Id of an earlier finished job with the same weights on the same dataset version.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        The service database session.
    job : Job
        The job whose result would duplicate an earlier one (left out of the search).
    weights_sha256 : str
        SHA-256 (hex) of the model weights the job's records name.
    model_version : str
        The model version the job's records name.
    """
    return session.scalar(select(Job.id).where(
        Job.id != job.id, Job.status == "done", Job.duplicate_of.is_(None),
        Job.weights_sha256 == weights_sha256, Job.model_version == model_version,
        Job.dataset_name == job.dataset_name, Job.dataset_version == job.dataset_version,
        Job.dataset_preset == job.dataset_preset).order_by(Job.finished_at).limit(1))


def finish_job(session: Session, job: Job, *, worker_id: str,
               records: Sequence[Mapping[str, Any]], cutoffs: Iterable[Mapping[str, Any]],
               card: Mapping[str, Any] | None, error: str | None = None) -> str | None:
    """Store a finished job's re-scored records, cutoffs and card; mark it done; one transaction.

    When an earlier finished worker job scored the same weights on the same dataset
    version, no rows are stored and the job points at it (``duplicate_of``); uploads are
    never folded into another entry. A job whose owner asked to cancel it meanwhile ends
    cancelled and stores nothing. Returns that job id or None.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        The service database session; committed here.
    job : Job
        The running job to finish.
    worker_id : str
        The worker that must hold its lease.
    records : sequence of mapping
        The re-scored score records, one per image (the score-record schema).
    cutoffs : iterable of mapping
        The job's cutoffs, one per group, axis and method.
    card : mapping of str to Any or None
        The model card; ``None`` when the model has none.
    error : str, optional
        A note on a partly failed job, kept with it; default none.
    """
    first = records[0] if records else {}
    weights = str(first.get("weights_sha256") or "")
    version = str(first.get("model_version") or "")
    duplicate = find_duplicate_result(session, job, weights_sha256=weights,
                                      model_version=version) if weights and \
        job.source == "worker" else None
    if duplicate is None:
        now = utcnow()
        session.add_all(result_row(job.id, record, now) for record in records)
        session.add_all(CutoffRow(job_id=job.id, group=c["group"], axis=c["axis"],
                                  method=c["method"], status=c["status"], value=c["value"],
                                  cutoff_json=json.dumps(c, allow_nan=False)) for c in cutoffs)
    overlap = (card or {}).get("training_data", {}).get("overlaps_benchmark")
    ended = _end(session, job.id, worker_id, unless_cancelled=True, status="done",
                 n_done=len(records),
                 weights_sha256=weights or None, model_version=version or None,
                 duplicate_of=duplicate, error=error,
                 model_card_json=json.dumps(dict(card), sort_keys=True) if card else None,
                 training_overlap=overlap, dataset_sha256=first.get("dataset_manifest_sha256"),
                 scorer_version=first.get("scorer_version"),
                 n_failed=sum(1 for r in records if r.get("error")))
    if not ended:
        session.rollback()
        _end(session, job.id, worker_id, status="cancelled", error="cancelled by its owner")
        session.commit()
        return None
    session.commit()
    return duplicate
