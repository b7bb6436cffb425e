"""The job worker's heartbeat outlives a failing database write and lasts until the job's final
state is written: its lease is renewed and a cancellation seen all along."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import service_fakes as fakes
from service_helpers import bearer, submit_job

from stembench.service import leases
from stembench.service.worker import Worker

#: A guard against a hang only: every wait below ends on an event the worker sets.
HANG_GUARD_S = 60


def _renewals_after(started: threading.Event, monkeypatch: Any) -> threading.Event:
    """An event set by the first lease renewal after ``started`` is set."""
    renewed, real_renew = threading.Event(), leases.renew_lease

    def watched(session: Any, job_id: str, **values: Any) -> Any:
        if started.is_set():
            renewed.set()
        return real_renew(session, job_id, **values)

    monkeypatch.setattr(leases, "renew_lease", watched)
    return renewed


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_failing_heartbeat_write_is_logged_and_retried(client, monkeypatch, caplog) -> None:
    from sqlalchemy.exc import OperationalError

    real, failed = leases.renew_lease, threading.Event()

    def flaky(session: Any, job_id: str, **values: Any) -> Any:
        if "n_done" in values and not failed.is_set():  # the heartbeat's first renewal
            failed.set()
            raise OperationalError("UPDATE jobs", {}, Exception("server closed the connection"))
        return real(session, job_id, **values)

    monkeypatch.setattr(leases, "renew_lease", flaky)
    caplog.set_level(logging.WARNING, logger="stembench.service.worker")
    fakes.BLOCKED.clear()
    fakes.RELEASE.clear()
    job_id = submit_job(client, block=True)
    runner = threading.Thread(target=Worker(client.app.state.settings,
                                            client.app.state.sessions).run_once, daemon=True)
    runner.start()
    try:
        assert fakes.BLOCKED.wait(HANG_GUARD_S) and failed.wait(HANG_GUARD_S)
        client.post(f"/api/jobs/{job_id}/cancel", headers=bearer("alice"))
        runner.join(HANG_GUARD_S)  # the heartbeat beat on and saw the cancellation
        assert not runner.is_alive() and not fakes.RELEASE.is_set()
    finally:
        fakes.RELEASE.set()
    job = client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()
    assert job["status"] == "cancelled", job
    assert f"renewing the lease of job {job_id} failed (OperationalError" in caplog.text


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_heartbeat_lasts_until_the_final_state_is_written(client, monkeypatch) -> None:
    from stembench.service import analysis

    finishing, release = threading.Event(), threading.Event()
    real_report = analysis.write_job_report

    def slow_report(*args: Any, **kwargs: Any) -> Any:
        finishing.set()
        release.wait(HANG_GUARD_S)  # a long re-scoring and report
        return real_report(*args, **kwargs)

    monkeypatch.setattr(analysis, "write_job_report", slow_report)
    renewed = _renewals_after(finishing, monkeypatch)
    job_id = submit_job(client)
    runner = threading.Thread(target=Worker(client.app.state.settings,
                                            client.app.state.sessions).run_once, daemon=True)
    runner.start()
    try:
        assert finishing.wait(HANG_GUARD_S)
        assert renewed.wait(HANG_GUARD_S)  # the lease is renewed while the job is finishing
    finally:
        release.set()
        runner.join(HANG_GUARD_S)
    assert client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()["status"] == "done"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_lease_is_renewed_while_the_executor_is_built(client, monkeypatch) -> None:
    building, seen, real_target = threading.Event(), [], Worker._target
    renewed = _renewals_after(building, monkeypatch)

    def slow_target(self: Worker, job: Any) -> Any:
        building.set()
        seen.append(renewed.wait(HANG_GUARD_S))  # a Globus Compute that answers slowly
        return real_target(self, job)

    monkeypatch.setattr(Worker, "_target", slow_target)
    job_id = submit_job(client)
    Worker(client.app.state.settings, client.app.state.sessions).run_once()
    assert seen == [True]  # the heartbeat beat while the executor was being built
    assert client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).json()["status"] == "done"
