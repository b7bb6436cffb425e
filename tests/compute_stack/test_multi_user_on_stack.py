"""The service's job worker runs two users' jobs on a multi-user endpoint, each as its own.

The endpoint is the administrator's: ``stembench endpoint config slurm-gpu --multi-user
--identity-map alice@example.org=stembench-alice --identity-map bob@example.org=stembench-bob``,
started by root; its identity mapper decides the local account each user endpoint (and so
each Slurm job) runs as. Jobs go the way users' jobs go: ``POST /api/jobs`` with the user's
token (the service obtains their Compute token by the dependent-token grant), then the
service's :class:`~stembench.service.worker.Worker` builds the job's executor from that
token. Only Globus Auth and the Compute web service are stand-ins.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from compute_stack.auth_service import Identity
from compute_stack.endpoint import EndpointProcess
from compute_stack.plugin import MAPPED_ACCOUNTS, ClientSide
from compute_stack.stack import ComputeStack
from compute_stack.waiting import wait_for

pytest.importorskip("fastapi")

#: the service's Globus Auth client (a confidential client, registered with the stand-in)
SERVICE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "stembench-service-on-the-stack"))
JOB = {"model": "log-blob", "dataset_preset": "mini"}
ALICE, BOB = sorted(MAPPED_ACCOUNTS)


@dataclass
class Service:
    """The service app (API, database, credential store) and its workers on the stack."""

    stack: ComputeStack
    endpoint: EndpointProcess
    client: Any  # fastapi.testclient.TestClient of the app
    app: Any

    def submit(self, username: str, num_sigma: int) -> str:
        """``POST /api/jobs`` as ``username`` (a token the service's scope was issued for).

        Each job its own ``num_sigma``: the service takes an identical live submission
        (same model, options and dataset) for a duplicate, whoever sent it.
        """
        identity = self.stack.auth.identity(username)
        token = self.stack.auth.grant(identity, SERVICE_ID, f"https://auth.globus.org/scopes/"
                                      f"{SERVICE_ID}/benchmark").access_token
        answer = self.client.post("/api/jobs", headers={"Authorization": f"Bearer {token}"},
                                  json={**JOB, "options": {"num_sigma": num_sigma},
                                        "endpoint_id": self.endpoint.endpoint_id})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["job"]["id"])

    def job(self, job_id: str) -> Any:
        from stembench.service.models import Job

        with self.app.state.sessions() as session:
            return session.get(Job, job_id)

    def scored(self, job_id: str) -> int:
        """Images of the job with a stored score."""
        from sqlalchemy import func, select

        from stembench.service.models import ResultRow

        with self.app.state.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(ResultRow).where(
                ResultRow.job_id == job_id)) or 0)

    def run(self, job_ids: list[str], workers: int, *, hold: Callable[[], None] | None = None,
            seconds: float = 420) -> None:
        """Start ``workers`` service workers, call ``hold`` then wait until the jobs end."""
        from stembench.service.worker import Worker

        running = [Worker(self.app.state.settings, self.app.state.sessions)
                   for _ in range(workers)]
        for worker in running:
            worker.start()
        try:
            if hold is not None:
                hold()
            wait_for(lambda: all(self.job(j).status in ("done", "failed", "cancelled")
                                 for j in job_ids), "the jobs ending", seconds,
                     details=lambda: self.endpoint.log_tail(15))
        finally:
            from stembench.service import store

            for job_id in job_ids:  # a job still running is cancelled, its executor stopped
                with self.app.state.sessions() as session:
                    job = self.job(job_id)
                    if job.status in ("queued", "running"):
                        store.cancel_job(session, session.merge(job))
            for worker in running:
                worker.stop(timeout=60)


@pytest.fixture
def service(multi_user_endpoint: EndpointProcess, compute_client: ClientSide,
            tmp_path: Path) -> Iterator[Service]:
    """The service configured to run jobs on the multi-user endpoint (``executor='globus'``)."""
    from cryptography.fernet import Fernet
    from fastapi.testclient import TestClient

    from stembench.service.app import create_app
    from stembench.service.auth import COMPUTE_RESOURCE_SERVER, COMPUTE_SCOPE
    from stembench.service.settings import ServiceSettings

    stack = compute_client.stack
    # the service's scope depends on Compute's: Auth grants its dependent Compute tokens
    stack.auth.dependent_scopes[SERVICE_ID] = [(COMPUTE_RESOURCE_SERVER, COMPUTE_SCOPE)]
    # the operator registers stembench's function, public: every user may run it
    registered = compute_client.run("endpoint", "function", "--register", "--public")
    assert registered.returncode == 0, registered.stderr[-2000:]
    function_id = registered.stdout.split()[-1]
    settings = ServiceSettings(
        data_dir=tmp_path / "service", database_url=f"sqlite:///{tmp_path / 'service.db'}",
        globus_client_id=SERVICE_ID, globus_client_secret="service-secret",
        executor="globus", allowed_endpoint_ids=(multi_user_endpoint.endpoint_id,),
        compute_function_id=function_id, credentials_key=Fernet.generate_key().decode(),
        dataset_cache_dir=compute_client.env["STEMBENCH_CACHE"], run_worker=False,
        poll_interval_s=0.2, cancel_poll_s=1.0, lease_s=60.0, report_bootstrap=0)
    app = create_app(settings)
    with TestClient(app) as client:
        yield Service(stack, multi_user_endpoint, client, app)


def _groups(stack: ComputeStack, endpoint_id: str, since: set[str]
            ) -> dict[str, set[Identity]]:
    """Task group -> identities of the tasks submitted to the endpoint after ``since``."""
    groups: dict[str, set[Identity]] = {}
    for task in list(stack.compute.tasks.values()):
        if task.endpoint_id == endpoint_id and task.task_id not in since:
            groups.setdefault(task.task_group_id, set()).add(task.identity)
    return groups


def _assert_own_groups(stack: ComputeStack, endpoint_id: str, since: set[str]) -> None:
    """Each user's tasks are in task groups of their own, each group owned by its user."""
    groups = _groups(stack, endpoint_id, since)
    owners = {group: stack.compute.task_groups[group] for group in groups}
    for group, identities in groups.items():
        assert identities == {owners[group]}, (group, identities, owners[group])
    refused = [r for r in stack.compute.requests if r[2] >= 400]
    assert {o.username for o in owners.values()} == {ALICE, BOB}, (owners, refused)


def test_the_worker_runs_two_users_jobs_each_as_their_mapped_account(
        service: Service) -> None:
    """Alice's and Bob's jobs at the same time (two workers), then one after the other
    (one worker): own task group, own identity, own local account, complete scores."""
    stack, endpoint = service.stack, service.endpoint
    partition, before = stack.slurm.partition, set(stack.compute.tasks)
    accounts = {MAPPED_ACCOUNTS[ALICE], MAPPED_ACCOUNTS[BOB]}
    old_jobs = {job_id for job_id, _, _ in stack.slurm.history()}
    waiting: dict[str, str] = {}  # Slurm job -> user, seen pending together

    def both_waiting() -> bool:
        """Tasks of both identities are out and two blocks (one per user endpoint, whose
        max_blocks is 1) wait in Slurm."""
        users = {task.identity.username for task in list(stack.compute.tasks.values())
                 if task.endpoint_id == endpoint.endpoint_id and task.task_id not in before}
        pending = {job_id: user for job_id, state, user in stack.slurm.jobs()
                   if state == "PENDING" and job_id not in old_jobs}
        if users >= {ALICE, BOB} and len(pending) >= 2:
            waiting.update(pending)
            return True
        return False

    def hold_until_both_are_in_flight() -> None:
        try:
            wait_for(both_waiting, "tasks and Slurm jobs of both users waiting together", 300,
                     details=lambda: f"{stack.slurm.history()}\n{endpoint.log_tail(15)}")
            # the user endpoints' processes and blocks run as the mapped accounts
            assert set(waiting.values()) == accounts, waiting
            assert all(_pids(account.pw_uid) for account in endpoint.accounts)
            print(f"Slurm jobs waiting together (id: user): {waiting}")
        finally:
            stack.slurm.run("scontrol", "update", f"PartitionName={partition}", "State=UP")

    # at the same time: no block may start until both users' jobs have work waiting
    stack.slurm.run("scontrol", "update", f"PartitionName={partition}", "State=DOWN")
    assert "State=DOWN" in stack.slurm.run("scontrol", "show", "partition", partition)
    together = [service.submit(ALICE, 6), service.submit(BOB, 5)]
    service.run(together, workers=2, hold=hold_until_both_are_in_flight)
    after_together = set(stack.compute.tasks)
    _assert_own_groups(stack, endpoint.endpoint_id, before)
    # one after the other: one worker, Alice's job then Bob's
    in_turn = [service.submit(ALICE, 4), service.submit(BOB, 3)]
    service.run(in_turn, workers=1)
    _assert_own_groups(stack, endpoint.endpoint_id, after_together)

    for job_id in together + in_turn:
        job = service.job(job_id)
        assert job.status == "done", f"{job.error}\n{endpoint.log_tail(20)}"
        assert job.n_images == 102 and service.scored(job_id) == 102
    owners = [stack.auth.identity(u).sub for u in (ALICE, BOB, ALICE, BOB)]
    assert [service.job(j).owner for j in together + in_turn] == owners
    # each user endpoint was started for its own identity, and ran as the mapped account
    started = {c["globus_username"] for c in stack.compute.commands
               if c["kwargs"]["name"].startswith(f"uep.{endpoint.endpoint_id}.")}
    assert started == {ALICE, BOB}
    slurm_users = {user for job_id, _, user in stack.slurm.history() if job_id not in old_jobs}
    assert slurm_users == accounts, slurm_users
    print(f"Slurm users of the jobs' blocks: {sorted(slurm_users)}")


def _pids(uid: int) -> list[int]:
    import subprocess

    done = subprocess.run(["pgrep", "-u", str(uid)], capture_output=True, text=True,
                          check=False)
    return [int(p) for p in done.stdout.split()]


def test_an_identity_without_a_mapping_is_refused_in_the_jobs_status(
        service: Service) -> None:
    """carol@example.org maps to no account: her job fails with the endpoint's reason."""
    job_id = service.submit("carol@example.org", 6)
    service.run([job_id], workers=1, seconds=240)
    job = service.job(job_id)
    assert job.status == "failed", job.error
    assert "Identity failed to map to a local user name" in job.error, job.error
    assert "carol@example.org" in job.error, job.error
    print(f"carol's job: {job.status}: {job.error}")
