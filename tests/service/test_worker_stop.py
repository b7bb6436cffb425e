"""A stopping service worker waits a few seconds, not the SDK's 60 s, for a batch of tasks
still being sent to Globus Compute: the process manager's stop timeout stays short.

The worker's executor is built as for a job (the SDK's own Executor, Globus mocked with
``responses``); its batch in flight is a thread that records how long it is waited for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses
from service_helpers import bearer

pytest.importorskip("globus_compute_sdk")

from globus_sdk.testing import RegisteredResponse
from service_globus import ALLOWED, FakeAuth, globus_app

from stembench.client.executors import SUBMITTER_WAIT_S
from stembench.service.job_executor import CancellableExecutor
from stembench.service.models import Job
from stembench.service.worker import STOP_SUBMITTER_WAIT_S, Worker


class _BatchInFlight(threading.Thread):
    """Stands for the SDK's submitter thread while its POST is unanswered."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.waits: list[float | None] = []

    def join(self, timeout: float | None = None) -> None:
        self.waits.append(timeout)  # never answered here: the wait is what is checked


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_a_stopping_worker_waits_briefly_for_a_batch_being_sent(
        tmp_path: Path, rsps: responses.RequestsMock) -> None:
    FakeAuth(rsps)
    RegisteredResponse(service="compute", path=f"/v2/endpoints/{ALLOWED}/status", method="GET",
                       json={"status": "online", "details": {}}).add(requests_mock=rsps)
    with globus_app(tmp_path, compute_endpoint_schema="slurm-gpu") as client:
        answer = client.post("/api/jobs", headers=bearer("alice"),
                             json={"model": "log-blob", "endpoint_id": ALLOWED})
        assert answer.status_code == 201, answer.text
        app = client.app
    with app.state.sessions() as session:
        row = session.get(Job, answer.json()["job"]["id"])
    worker = Worker(app.state.settings, app.state.sessions)
    registered = worker._compute_executor(row)
    sdk_executor, batch = registered.inner, _BatchInFlight()
    submitter, sdk_executor._task_submitter = sdk_executor._task_submitter, batch
    worker._executor = CancellableExecutor(registered)  # the running job's, as in _run
    try:
        worker.stop()
        assert batch.waits == [STOP_SUBMITTER_WAIT_S] and STOP_SUBMITTER_WAIT_S < 10
        registered.shutdown(wait=False, cancel_futures=True)  # elsewhere: the SDK's wait
        assert batch.waits[-1] == SUBMITTER_WAIT_S
    finally:
        sdk_executor._task_submitter = submitter
        sdk_executor.shutdown(wait=False, cancel_futures=True)
    app.state.engine.dispose()
