"""A job that meets an unexpected error ends failed with one line, and a job whose worker
keeps stopping is not claimed forever."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from service_helpers import bearer, run_blocked_job, submit_job
from sqlalchemy import update

from stembench.service import leases
from stembench.service.db import utcnow
from stembench.service.models import Job
from stembench.service.worker import Worker


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_unexpected_error_fails_the_job_with_one_line(client, monkeypatch, caplog) -> None:
    from stembench.client.results_file import ResultsFile

    def broken(self: Any, shard_ids: Any) -> Any:
        raise RuntimeError("results file unreadable\nsecond line")

    monkeypatch.setattr(ResultsFile, "current_shards", broken)
    caplog.set_level(logging.ERROR, logger="stembench.service.worker")
    job_id = submit_job(client)
    worker = Worker(client.app.state.settings, client.app.state.sessions)
    assert worker.run_once()
    job = client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()
    assert job["status"] == "failed", job
    error = job["error"]
    assert error.startswith("internal error: RuntimeError: results file unreadable (log id ")
    assert "\n" not in error
    log_id = error.rsplit("log id ", 1)[1].rstrip(")")
    assert f"(log id {log_id})" in caplog.text  # the traceback is in the log under that id
    assert not worker.run_once()  # nothing left to claim


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_job_whose_worker_stopped_too_often_ends_failed(client) -> None:
    sessions, settings = client.app.state.sessions, client.app.state.settings
    stuck, retried = submit_job(client), submit_job(client, quality=0.5)
    past = utcnow() - timedelta(seconds=5)
    with sessions() as session:  # both were claimed and their workers died
        for job_id, attempts in ((stuck, settings.max_job_attempts),
                                 (retried, settings.max_job_attempts - 1)):
            session.execute(update(Job).where(Job.id == job_id).values(
                status="running", lease_owner="dead-worker", lease_expires_at=past,
                attempts=attempts))
        session.commit()
        claimed = leases.claim_job(session, worker_id="w", lease_s=60,
                                  max_attempts=settings.max_job_attempts)
    assert claimed is not None and claimed.id == retried
    job = client.get(f"/api/jobs/{stuck}", headers=bearer("alice")).json()
    assert job["status"] == "failed", job
    assert job["error"] == f"the worker stopped {settings.max_job_attempts} times on this job"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_stopping_worker_stops_its_job_and_gives_it_back(client) -> None:
    import service_fakes as fakes

    hang_guard_s = 120  # a guard against a hang only: the blocked shards are released after
    job_id, worker, runner = run_blocked_job(client)
    try:
        assert fakes.BLOCKED.wait(hang_guard_s)  # a shard of the job is running
        worker.stop()  # as the service does when it is asked to stop (SIGTERM)
        runner.join(hang_guard_s)
        assert not runner.is_alive() and not fakes.RELEASE.is_set()  # shards still blocked
        job = client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()
        assert job["status"] == "queued" and job["error"] is None, job
    finally:
        fakes.RELEASE.set()
    assert Worker(client.app.state.settings, client.app.state.sessions).run_once()
    job = client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()
    assert job["status"] == "done", job
    with client.app.state.sessions() as session:
        assert session.get(Job, job_id).attempts == 1  # the stop did not count as an attempt
