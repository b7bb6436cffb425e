"""Cancel stops a running job at once: its shards in flight are abandoned, the job ends
"cancelled", and nothing of it reaches the leaderboard, even when the cancellation arrives
while its results are being stored."""

from __future__ import annotations

import pytest
import service_fakes as fakes
from service_helpers import bearer, run_blocked_job, submit_job

from stembench.service import leases

#: A guard against a hang only: the blocked shards are released after the checks.
HANG_GUARD_S = 120


def _cancel_a_running_job(client, *, stop_service: bool) -> str:
    """Cancel a job while its shards are blocked (and stop the worker, as the service does
    when it is asked to stop, with ``stop_service``): the job's id once its worker let go."""
    job_id, worker, runner = run_blocked_job(client)
    try:
        assert fakes.BLOCKED.wait(HANG_GUARD_S)  # a shard of the job is running
        answer = client.post(f"/api/jobs/{job_id}/cancel", headers=bearer("alice"))
        assert answer.status_code == 200 and answer.json()["cancel_requested"]
        if stop_service:
            worker.stop()
        runner.join(HANG_GUARD_S)
        # the worker let go of the job while its shards were still blocked
        assert not runner.is_alive() and not fakes.RELEASE.is_set()
    finally:
        fakes.RELEASE.set()
    return job_id


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_cancel_stops_shards_in_flight(client) -> None:
    job_id = _cancel_a_running_job(client, stop_service=False)
    job = client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()
    assert job["status"] == "cancelled", job
    assert client.get("/api/leaderboard").json()["rows"] == []
    assert client.get(f"/api/jobs/{job_id}/scores").status_code == 404


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_cancel_while_storing_results_stores_nothing(client) -> None:
    job_id = submit_job(client)
    with client.app.state.sessions() as session:
        job = leases.claim_job(session, worker_id="w1", lease_s=60)
    assert job is not None and job.id == job_id
    answer = client.post(f"/api/jobs/{job_id}/cancel", headers=bearer("alice"))
    assert answer.json()["status"] == "running" and answer.json()["cancel_requested"]
    record = {"image_id": "i", "model": "log-blob", "model_version": "1",
              "weights_sha256": "ab" * 32, "group": fakes.GROUP, "series": "noise", "step": 0,
              "seed": 0, "tp": 1, "fp": 0, "fn": 0, "f1": 1.0}
    with client.app.state.sessions() as session:
        leases.finish_job(session, job, worker_id="w1", records=[record], cutoffs=[], card=None)
    job_out = client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()
    assert job_out["status"] == "cancelled", job_out
    assert client.get("/api/leaderboard").json()["rows"] == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_job_cancelled_while_the_service_stops_ends_cancelled(client) -> None:
    job_id = _cancel_a_running_job(client, stop_service=True)
    job = client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()
    assert job["status"] == "cancelled", job  # not back in the queue


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_requeued_job_asked_to_cancel_is_never_claimed(client) -> None:
    """A job left queued with a cancellation (by an older service) ends cancelled."""
    from sqlalchemy import update

    from stembench.service.models import Job

    job_id = submit_job(client)
    with client.app.state.sessions() as session:
        session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
        session.commit()
        assert leases.claim_job(session, worker_id="w1", lease_s=60) is None
    job = client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()
    assert job["status"] == "cancelled", job
