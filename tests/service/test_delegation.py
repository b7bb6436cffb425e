"""The service submits to Globus Compute as its user, only on endpoints its operator allows.

Globus Auth is mocked with ``responses`` in the shapes ``globus_sdk`` parses (its testing
registry's routes); the worker's Compute client is the SDK's own ``Client``.
"""

from __future__ import annotations

import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from service_helpers import CLIENT_ID, SCOPE, bearer, make_settings, verify_now

pytest.importorskip("globus_compute_sdk")

import globus_sdk
from fastapi.testclient import TestClient
from globus_sdk.testing import RegisteredResponse
from globus_sdk.testing.data.compute.v2.get_endpoint import (
    DEFAULT_RESPONSE_DOC as ENDPOINT_DOCUMENT,
)
from service_globus import (
    ALICE,
    ALICE_ORCID,
    ALLOWED,
    FUNCTION,
    KEY,
    OTHER,
    FakeAuth,
    globus_app,
)

from stembench.errors import InputError
from stembench.service.auth import COMPUTE_SCOPE, AuthError, TokenVerifier
from stembench.service.credentials import CredentialStore, compute_client_for


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_submission_obtains_the_callers_compute_token(tmp_path: Path,
                                                      rsps: responses.RequestsMock) -> None:
    auth = FakeAuth(rsps)
    with globus_app(tmp_path) as client:
        answer = client.post("/api/jobs", json={"model": "log-blob", "endpoint_id": ALLOWED},
                             headers=bearer("alice"))
        assert answer.status_code == 201, answer.text
        settings = client.app.state.settings
    (grant,) = auth.grants
    assert grant["grant_type"] == ["urn:globus:auth:grant_type:dependent_token"]
    assert grant["token"] == ["alice-token"] and grant["scope"] == [COMPUTE_SCOPE]
    assert grant["access_type"] == ["offline"]
    kept = settings.credential_store().path(ALICE)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert settings.credential_store().load(ALICE)["refresh_token"] == "aliceComputeRefresh-1"
    assert all(i["include"] == ["identity_set"] for i in auth.introspections)


@pytest.mark.parametrize(("changes", "endpoint", "words"), [
    ({}, OTHER, f"endpoint {OTHER} is not one this service may use"),
    ({"executor": "thread", "allowed_endpoint_ids": (), "compute_function_id": None}, ALLOWED,
     "may use no Globus Compute endpoint"),
])
def test_an_endpoint_the_operator_did_not_allow_is_403(
        tmp_path: Path, rsps: responses.RequestsMock, changes: dict[str, Any], endpoint: str,
        words: str) -> None:
    auth = FakeAuth(rsps)
    with globus_app(tmp_path, **changes) as client:
        answer = client.post("/api/jobs", json={"model": "log-blob", "endpoint_id": endpoint},
                             headers=bearer("alice"))
        assert answer.status_code == 403 and words in answer.json()["detail"]
        assert client.get("/api/jobs", headers=bearer("alice")).json() == []
    assert auth.grants == []  # nothing delegated for a refused request


def test_service_scope_without_compute_dependency_is_403(
        tmp_path: Path, rsps: responses.RequestsMock) -> None:
    FakeAuth(rsps, compute=False)
    with globus_app(tmp_path) as client:
        answer = client.post("/api/jobs", json={"model": "log-blob"}, headers=bearer("alice"))
        assert answer.status_code == 403
        assert "must declare Globus Compute's scope" in answer.json()["detail"]


def test_jobs_belong_to_the_whole_identity_set(tmp_path: Path,
                                               rsps: responses.RequestsMock) -> None:
    FakeAuth(rsps)
    with globus_app(tmp_path) as client:
        job = client.post("/api/jobs", json={"model": "log-blob"},
                          headers=bearer("alice")).json()["job"]
        other_login = {"Authorization": "Bearer orcid-token"}  # a linked identity of alice
        assert client.get(f"/api/jobs/{job['id']}", headers=other_login).status_code == 200
        assert [j["id"] for j in client.get("/api/jobs", headers=other_login).json()] == [
            job["id"]]


def test_worker_submits_with_the_owners_token_never_the_services(
        tmp_path: Path, rsps: responses.RequestsMock) -> None:
    from stembench.service.worker import Worker

    FakeAuth(rsps)
    with globus_app(tmp_path) as client:
        job_id = client.post("/api/jobs", json={"model": "log-blob", "endpoint_id": ALLOWED},
                             headers=bearer("alice")).json()["job"]["id"]
        app = client.app
    # the route of globus_sdk.testing's compute get_version, with the fields Client reads
    RegisteredResponse(service="compute", path="/v2/version", method="GET",
                       json={"api": "1.23.0", "min_sdk_version": "1.0.0",
                             "min_ep_version": "1.0.0"}).add(requests_mock=rsps)
    RegisteredResponse(service="compute", path=f"/v2/endpoints/{ALLOWED}/status", method="GET",
                       json={"status": "online", "details": {}}).add(requests_mock=rsps)
    _endpoint_metadata(rsps, {})
    from stembench.service.models import Job

    with app.state.sessions() as session:
        job = session.get(Job, job_id)
    target, outer = Worker(app.state.settings, app.state.sessions)._target(job)
    executor = outer.inner
    try:
        status_call = [c for c in rsps.calls if c.request.url.endswith("/status")][-1]
        assert status_call.request.headers["Authorization"] == "Bearer aliceComputeToken-1"
        assert executor.function_id == FUNCTION
        assert executor.inner.endpoint_id == uuid.UUID(ALLOWED)
        # the job's endpoint is watched during the run, with the owner's token too
        assert target.gone == executor.watch.gone
        executor.watch.check()
        watched = [c for c in rsps.calls if c.request.url.endswith("/status")][-1]
        assert watched is not status_call
        assert watched.request.headers["Authorization"] == "Bearer aliceComputeToken-1"
    finally:
        outer.shutdown(wait=False, cancel_futures=True)


def test_no_kept_token_and_no_interactive_login(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="no usable Globus Compute token kept"):
        compute_client_for(CLIENT_ID, "secret", CredentialStore(tmp_path, KEY), ALICE,
                           timeout_s=5.0)


@pytest.mark.parametrize(("changes", "words"), [
    ({"allowed_endpoint_ids": ()}, "needs allowed_endpoint_ids"),
    ({"compute_function_id": None}, "needs compute_function_id"),
    ({"globus_client_id": None, "globus_client_secret": None}, "needs the Globus client id"),
    ({"default_endpoint_id": OTHER}, "default_endpoint_id must be one of"),
    ({"allowed_endpoint_ids": ("nope",)}, "is not a UUID"),
    ({"executor": "thread"}, "need executor 'globus'"),
    ({"credentials_key": None}, "needs credentials_key"),
    ({"credentials_key": "not-a-key"}, "credentials_key is not a Fernet key"),
])
def test_remote_settings_are_checked(tmp_path: Path, changes: dict[str, Any],
                                     words: str) -> None:
    values: dict[str, Any] = {"executor": "globus", "allowed_endpoint_ids": (ALLOWED,),
                              "compute_function_id": FUNCTION, "credentials_key": KEY}
    with pytest.raises(InputError, match=words):
        make_settings(tmp_path, "sqlite://", **{**values, **changes})


def test_allowed_endpoints_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from stembench.service.settings import ServiceSettings

    for name, value in {
        "STEMBENCH_SERVICE_EXECUTOR": "globus",
        "STEMBENCH_SERVICE_ALLOWED_ENDPOINT_IDS": f"{ALLOWED}, {OTHER.upper()}",
        "STEMBENCH_SERVICE_COMPUTE_FUNCTION_ID": FUNCTION,
        "STEMBENCH_SERVICE_CREDENTIALS_KEY": KEY,
        "STEMBENCH_SERVICE_GLOBUS_CLIENT_ID": CLIENT_ID,
        "STEMBENCH_SERVICE_GLOBUS_CLIENT_SECRET": "secret"}.items():
        monkeypatch.setenv(name, value)
    settings = ServiceSettings.from_env()
    assert settings.allowed_endpoint_ids == (ALLOWED, OTHER)
    assert settings.endpoint_refusal(OTHER.upper()) is None


def test_verifier_reads_the_identity_set(rsps: responses.RequestsMock) -> None:
    FakeAuth(rsps)
    verifier = TokenVerifier(CLIENT_ID, "secret", required_scope=SCOPE,
                             auth_client=globus_sdk.ConfidentialAppAuthClient(CLIENT_ID, "s"))
    caller = verify_now(verifier, "Bearer orcid-token")
    assert caller.sub == ALICE_ORCID and caller.identities == (ALICE_ORCID, ALICE)
    assert caller.owns(ALICE) and not caller.owns(str(uuid.uuid4()))


def _submit(client: Any, model: str = "log-blob") -> Any:
    answer = client.post("/api/jobs", json={"model": model, "endpoint_id": ALLOWED},
                         headers=bearer("alice"))
    assert answer.status_code == 201, answer.text
    return answer.json()["job"]


def _compute_routes(rsps: responses.RequestsMock, state: str) -> None:
    """The Compute routes the worker's Client calls first (globus_sdk.testing's paths)."""
    RegisteredResponse(service="compute", path="/v2/version", method="GET",
                       json={"api": "1.23.0", "min_sdk_version": "1.0.0",
                             "min_ep_version": "1.0.0"}).add(requests_mock=rsps)
    RegisteredResponse(service="compute", path=f"/v2/endpoints/{ALLOWED}/status", method="GET",
                       json={"status": state, "details": {}}).add(requests_mock=rsps)


def test_one_encrypted_token_per_user_never_logged(
        tmp_path: Path, rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture) -> None:
    """Defect 4 of issue 22: one token per user, encrypted at rest, in no log."""
    import logging

    from cryptography.fernet import Fernet

    caplog.set_level(logging.DEBUG)
    auth = FakeAuth(rsps)
    with globus_app(tmp_path) as client:
        _submit(client)
        _submit(client, "atomap-like")  # a second live job reuses the kept token
        settings = client.app.state.settings
    assert len(auth.grants) == 1
    kept = settings.credential_store().path(ALICE)
    assert sorted(settings.credentials_dir.glob("*.token")) == [kept]
    assert not list(settings.credentials_dir.glob("*.partial"))
    assert b"aliceCompute" not in kept.read_bytes()  # encrypted at rest
    with pytest.raises(AuthError, match="no usable Globus Compute token"):
        CredentialStore(settings.credentials_dir, Fernet.generate_key().decode()).load(ALICE)
    assert "aliceCompute" not in caplog.text and KEY not in caplog.text
    assert KEY not in repr(settings) and "secret" not in repr(settings)


def test_the_token_is_revoked_and_deleted_when_the_last_job_ends(
        tmp_path: Path, rsps: responses.RequestsMock) -> None:
    """Defect 4: the token exists only while one of its user's jobs needs it."""
    from stembench.service.worker import Worker

    auth = FakeAuth(rsps)
    with globus_app(tmp_path) as client:
        first, second = _submit(client)["id"], _submit(client, "atomap-like")["id"]
        app = client.app
    _compute_routes(rsps, "offline")  # each job ends (failed) as the worker starts it
    credentials = app.state.settings.credential_store()
    worker = Worker(app.state.settings, app.state.sessions)
    assert worker.run_once()
    assert auth.revoked == [] and credentials.holds(ALICE)  # the other job still needs it
    assert worker.run_once()
    assert auth.revoked == ["aliceComputeRefresh-1", "aliceComputeToken-1"]
    assert not credentials.holds(ALICE)
    with app.state.sessions() as session:
        from stembench.service.models import Job

        assert {session.get(Job, j).status for j in (first, second)} == {"failed"}
    with TestClient(app) as client:  # the next job gets a new token
        _submit(client)
    assert credentials.load(ALICE)["refresh_token"] == "aliceComputeRefresh-2"


def test_cancelling_a_queued_job_revokes_its_token(tmp_path: Path,
                                                   rsps: responses.RequestsMock) -> None:
    """The request only cancels; the worker, waiting for work, revokes the unneeded token."""
    from stembench.service.worker import Worker

    auth = FakeAuth(rsps)
    with globus_app(tmp_path) as client:
        job = _submit(client)
        answer = client.post(f"/api/jobs/{job['id']}/cancel", headers=bearer("alice"))
        assert answer.json()["status"] == "cancelled"
        app = client.app
    credentials = app.state.settings.credential_store()
    assert auth.revoked == [] and credentials.owners() == [ALICE]
    assert not Worker(app.state.settings, app.state.sessions).run_once()  # no job waits
    assert auth.revoked == ["aliceComputeRefresh-1", "aliceComputeToken-1"]
    assert not credentials.holds(ALICE)


def _revoked(auth: FakeAuth, count: int) -> list[str]:
    """The tokens revoked, once ``count`` were (revocations run in the background)."""
    deadline = time.monotonic() + 60  # a guard against a hang only
    while len(auth.revoked) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return auth.revoked


def test_concurrent_writers_never_share_a_temporary_file(tmp_path: Path) -> None:
    credentials = CredentialStore(tmp_path, KEY)
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            for i in range(40):
                credentials.save(ALICE, {"access_token": f"a{writer}-{i}",
                                         "refresh_token": f"r{writer}-{i}",
                                         "expires_at_seconds": 1})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert credentials.load(ALICE)["refresh_token"].endswith("-39")
    assert not list(tmp_path.glob("*.partial"))


def _endpoint_metadata(rsps: responses.RequestsMock, schema: dict[str, Any]) -> None:
    """The endpoint's metadata route publishing ``schema`` (globus_sdk.testing's document)."""
    RegisteredResponse(service="compute", path=f"/v2/endpoints/{ALLOWED}", method="GET",
                       json={**ENDPOINT_DOCUMENT, "uuid": ALLOWED, "user_config_schema": schema}
                       ).add(requests_mock=rsps)


def test_job_endpoint_options_are_checked_at_submission_and_reach_the_endpoint(
        tmp_path: Path, rsps: responses.RequestsMock) -> None:
    """Defect 6: service jobs pass endpoint options, checked against the endpoint's schema."""
    from stembench.endpoints.endpoint_config import EndpointSettings, user_config_schema
    from stembench.service.models import Job
    from stembench.service.worker import Worker

    auth = FakeAuth(rsps)
    _compute_routes(rsps, "online")
    _endpoint_metadata(rsps, user_config_schema("slurm-gpu", EndpointSettings(gpus=4)))
    with globus_app(tmp_path) as client:
        credentials = client.app.state.settings.credential_store()
        refused = client.post("/api/jobs", headers=bearer("alice"), json={
            "model": "log-blob", "endpoint_id": ALLOWED,
            "endpoint_options": {"walltime": "forever"}})
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"].startswith("endpoint option walltime: 'forever' does")
        assert _revoked(auth, 2) == ["aliceComputeRefresh-1", "aliceComputeToken-1"]
        assert not credentials.holds(ALICE)  # nothing kept for a refused request
        assert client.get("/api/jobs", headers=bearer("alice")).json() == []
        answer = client.post("/api/jobs", headers=bearer("alice"), json={
            "model": "log-blob", "endpoint_id": ALLOWED,
            "endpoint_options": {"account": "12345", "walltime": "00:30:00"}})
        assert answer.status_code == 201, answer.text
        job = answer.json()["job"]
        assert job["endpoint_options"] == {"account": "12345", "walltime": "00:30:00"}
        app = client.app
    metadata_calls = [c for c in rsps.calls if c.request.url.endswith(f"/endpoints/{ALLOWED}")]
    assert metadata_calls[-1].request.headers["Authorization"] == "Bearer aliceComputeToken-2"
    with app.state.sessions() as session:
        row = session.get(Job, job["id"])
    executor = Worker(app.state.settings, app.state.sessions)._compute_executor(row)
    try:
        assert executor.inner.user_endpoint_config == {
            # 90 % of the worker's 3600 s task deadline: the endpoint stops a task first
            "account": "12345", "walltime": "00:30:00", "task_timeout_s": 3240}
        # a web user cannot restart the endpoint or rerun a command: the service's advice
        assert executor.watch is not None
        assert executor.watch.hint.startswith("the job can be submitted again")
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def test_a_configured_schema_gives_a_non_owners_job_the_endpoint_limit(
        tmp_path: Path, rsps: responses.RequestsMock) -> None:
    """Only an endpoint's owner may read its metadata (403 for the job's owner here): the
    schema the operator configures checks the options and gives each task its limit."""
    from stembench.service.models import Job
    from stembench.service.worker import Worker

    FakeAuth(rsps)
    _compute_routes(rsps, "online")
    RegisteredResponse(service="compute", path=f"/v2/endpoints/{ALLOWED}", method="GET",
                       status=403, json={"code": "FORBIDDEN", "error": "not the owner"}
                       ).add(requests_mock=rsps)
    with globus_app(tmp_path, compute_endpoint_schema="slurm-gpu") as client:
        refused = client.post("/api/jobs", headers=bearer("alice"), json={
            "model": "log-blob", "endpoint_id": ALLOWED, "endpoint_options": {"walltime": "x"}})
        assert refused.status_code == 422, refused.text
        answer = client.post("/api/jobs", headers=bearer("alice"), json={
            "model": "log-blob", "endpoint_id": ALLOWED, "endpoint_options": {"account": "7"}})
        assert answer.status_code == 201, answer.text
        app = client.app
    with app.state.sessions() as session:
        row = session.get(Job, answer.json()["job"]["id"])
    executor = Worker(app.state.settings, app.state.sessions)._compute_executor(row)
    try:
        assert executor.inner.user_endpoint_config == {"account": "7", "task_timeout_s": 3240}
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    with pytest.raises(InputError, match="compute_endpoint_schema: endpoint option schema"):
        make_settings(tmp_path, "sqlite://", executor="globus", allowed_endpoint_ids=(ALLOWED,),
                      compute_function_id=FUNCTION, credentials_key=KEY,
                      compute_endpoint_schema=str(tmp_path / "missing.json"))


def test_a_submission_that_needs_no_token_keeps_none(tmp_path: Path,
                                                     rsps: responses.RequestsMock) -> None:
    """Resubmitting a finished evaluation, or one a linked identity has queued, keeps no token:
    the token minted for the request is revoked, not stored for a user with no job to run."""
    from sqlalchemy import update

    from stembench.service.models import Job

    auth = FakeAuth(rsps)
    with globus_app(tmp_path) as client:
        queued = _submit(client)["id"]
        credentials = client.app.state.settings.credential_store()
        # the same person logged in with a linked identity: their queued job, no second job,
        # no second token (the job runs with the token of the identity that queued it)
        answer = client.post("/api/jobs", json={"model": "log-blob", "endpoint_id": ALLOWED},
                             headers={"Authorization": "Bearer orcid-token"})
        assert answer.status_code == 200 and answer.json()["job"]["id"] == queued
        assert credentials.owners() == [ALICE]
        assert _revoked(auth, 2) == ["aliceComputeRefresh-2", "aliceComputeToken-2"]
        # the job ends; the worker releases the token (as release_credentials does)
        with client.app.state.sessions() as session:
            session.execute(update(Job).where(Job.id == queued).values(status="done"))
            session.commit()
        credentials.discard(ALICE, lambda token: None)
        again = client.post("/api/jobs", json={"model": "log-blob", "endpoint_id": ALLOWED},
                            headers=bearer("alice"))
        assert again.status_code == 200 and again.json()["job"]["id"] == queued
        assert credentials.owners() == []
        assert _revoked(auth, 4)[2:] == ["aliceComputeRefresh-3", "aliceComputeToken-3"]


def test_a_submission_that_fails_to_queue_keeps_no_token(
        tmp_path: Path, rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    from stembench.service import store

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database gone")

    auth = FakeAuth(rsps)
    with globus_app(tmp_path) as client:
        monkeypatch.setattr(store, "create_job", broken)
        with pytest.raises(RuntimeError, match="database gone"):
            client.post("/api/jobs", json={"model": "log-blob", "endpoint_id": ALLOWED},
                        headers=bearer("alice"))
        assert client.app.state.settings.credential_store().owners() == []
    assert _revoked(auth, 2) == ["aliceComputeRefresh-1", "aliceComputeToken-1"]
