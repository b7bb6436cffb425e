"""The service submits to Globus Compute as its user, only on endpoints its operator allows.

Globus Auth is mocked with ``responses`` in the shapes ``globus_sdk`` parses (its testing
registry's routes); the worker's Compute client is the SDK's own ``Client``.
"""

from __future__ import annotations

import json
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from service_helpers import CLIENT_ID, INTROSPECT_URL, SCOPE, bearer, make_settings

pytest.importorskip("globus_compute_sdk")

import globus_sdk
from globus_sdk.testing import RegisteredResponse

from stembench.errors import InputError
from stembench.service.auth import (
    COMPUTE_SCOPE,
    AuthError,
    TokenVerifier,
    compute_client_for,
)

TOKEN_URL = "https://auth.globus.org/v2/oauth2/token"
ALLOWED = "6c7f6a46-92e2-4e4e-b0a6-7a56e2d1e001"
OTHER = "6c7f6a46-92e2-4e4e-b0a6-7a56e2d1e002"
FUNCTION = "6c7f6a46-92e2-4e4e-b0a6-7a56e2d1e0f0"
ALICE, ALICE_ORCID = str(uuid.uuid5(uuid.NAMESPACE_DNS, "alice")), str(
    uuid.uuid5(uuid.NAMESPACE_DNS, "alice-orcid"))


def _introspection(token: str) -> dict[str, Any]:
    subject = {"alice-token": ALICE, "orcid-token": ALICE_ORCID}.get(token)
    if subject is None:
        return {"active": False}
    return {"active": True, "sub": subject, "username": f"{token}@example.org",
            "scope": f"openid {SCOPE}", "aud": [CLIENT_ID], "exp": int(time.time()) + 3600,
            "identity_set": [ALICE, ALICE_ORCID]}


def _dependent(compute: bool) -> list[dict[str, Any]]:
    tokens = [{"scope": "urn:globus:auth:scope:groups.api.globus.org:all",
               "access_token": "groupsToken", "token_type": "bearer", "expires_in": 3600,
               "resource_server": "groups.api.globus.org", "refresh_token": "groupsRefresh"}]
    if compute:
        tokens.append({"scope": COMPUTE_SCOPE, "access_token": "aliceComputeToken",
                       "refresh_token": "aliceComputeRefresh", "token_type": "bearer",
                       "expires_in": 3600, "resource_server": "funcx_service"})
    return tokens


class FakeAuth:
    """Globus Auth: introspection with identity sets, and the dependent-token grant."""

    def __init__(self, rsps: responses.RequestsMock, *, compute: bool = True) -> None:
        self.grants: list[dict[str, list[str]]] = []
        self.introspections: list[dict[str, list[str]]] = []
        self.compute = compute
        rsps.add_callback(responses.POST, INTROSPECT_URL, callback=self._introspect)
        rsps.add_callback(responses.POST, TOKEN_URL, callback=self._token)

    def _introspect(self, request: Any) -> tuple[int, dict[str, str], str]:
        form = parse_qs(request.body)
        self.introspections.append(form)
        return 200, {}, json.dumps(_introspection(form["token"][0]))

    def _token(self, request: Any) -> tuple[int, dict[str, str], str]:
        form = parse_qs(request.body)
        self.grants.append(form)
        return 200, {}, json.dumps(_dependent(self.compute))


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def _app(tmp_path: Path, **changes: Any) -> Any:
    from fastapi.testclient import TestClient

    from stembench.service.app import create_app

    values: dict[str, Any] = {"executor": "globus", "allowed_endpoint_ids": (ALLOWED,),
                              "compute_function_id": FUNCTION}
    values.update(changes)
    app = create_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", **values))
    return TestClient(app)


def test_submission_obtains_the_callers_compute_token(tmp_path: Path,
                                                      rsps: responses.RequestsMock) -> None:
    auth = FakeAuth(rsps)
    with _app(tmp_path) as client:
        answer = client.post("/api/jobs", json={"model": "log-blob", "endpoint_id": ALLOWED},
                             headers=bearer("alice"))
        assert answer.status_code == 201, answer.text
        settings = client.app.state.settings
    (grant,) = auth.grants
    assert grant["grant_type"] == ["urn:globus:auth:grant_type:dependent_token"]
    assert grant["token"] == ["alice-token"] and grant["scope"] == [COMPUTE_SCOPE]
    assert grant["access_type"] == ["offline"]
    (kept,) = list(settings.credentials_dir.iterdir())
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert json.loads(kept.read_text())["refresh_token"] == "aliceComputeRefresh"
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
    with _app(tmp_path, **changes) as client:
        answer = client.post("/api/jobs", json={"model": "log-blob", "endpoint_id": endpoint},
                             headers=bearer("alice"))
        assert answer.status_code == 403 and words in answer.json()["detail"]
        assert client.get("/api/jobs", headers=bearer("alice")).json() == []
    assert auth.grants == []  # nothing delegated for a refused request


def test_service_scope_without_compute_dependency_is_403(
        tmp_path: Path, rsps: responses.RequestsMock) -> None:
    FakeAuth(rsps, compute=False)
    with _app(tmp_path) as client:
        answer = client.post("/api/jobs", json={"model": "log-blob"}, headers=bearer("alice"))
        assert answer.status_code == 403
        assert "must declare Globus Compute's scope" in answer.json()["detail"]


def test_jobs_belong_to_the_whole_identity_set(tmp_path: Path,
                                               rsps: responses.RequestsMock) -> None:
    FakeAuth(rsps)
    with _app(tmp_path) as client:
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
    with _app(tmp_path) as client:
        job_id = client.post("/api/jobs", json={"model": "log-blob", "endpoint_id": ALLOWED},
                             headers=bearer("alice")).json()["job"]["id"]
        app = client.app
    # the route of globus_sdk.testing's compute get_version, with the fields Client reads
    RegisteredResponse(service="compute", path="/v2/version", method="GET",
                       json={"api": "1.23.0", "min_sdk_version": "1.0.0",
                             "min_ep_version": "1.0.0"}).add(requests_mock=rsps)
    RegisteredResponse(service="compute", path=f"/v2/endpoints/{ALLOWED}/status", method="GET",
                       json={"status": "online", "details": {}}).add(requests_mock=rsps)
    from stembench.service.models import Job

    with app.state.sessions() as session:
        job = session.get(Job, job_id)
    executor = Worker(app.state.settings, app.state.sessions)._compute_executor(job)
    try:
        status_call = [c for c in rsps.calls if c.request.url.endswith("/status")][-1]
        assert status_call.request.headers["Authorization"] == "Bearer aliceComputeToken"
        assert executor.function_id == FUNCTION
        assert executor.inner.endpoint_id == uuid.UUID(ALLOWED)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def test_no_kept_token_and_no_interactive_login(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="no Globus Compute token kept"):
        compute_client_for(CLIENT_ID, "secret", tmp_path, ALICE)


@pytest.mark.parametrize(("changes", "words"), [
    ({"allowed_endpoint_ids": ()}, "needs allowed_endpoint_ids"),
    ({"compute_function_id": None}, "needs compute_function_id"),
    ({"globus_client_id": None, "globus_client_secret": None}, "needs the Globus client id"),
    ({"default_endpoint_id": OTHER}, "default_endpoint_id must be one of"),
    ({"allowed_endpoint_ids": ("nope",)}, "is not a UUID"),
    ({"executor": "thread"}, "need executor 'globus'"),
])
def test_remote_settings_are_checked(tmp_path: Path, changes: dict[str, Any],
                                     words: str) -> None:
    values: dict[str, Any] = {"executor": "globus", "allowed_endpoint_ids": (ALLOWED,),
                              "compute_function_id": FUNCTION}
    with pytest.raises(InputError, match=words):
        make_settings(tmp_path, "sqlite://", **{**values, **changes})


def test_allowed_endpoints_from_the_environment() -> None:
    from stembench.service.settings import ServiceSettings

    settings = ServiceSettings.from_env({
        "STEMBENCH_SERVICE_EXECUTOR": "globus",
        "STEMBENCH_SERVICE_ALLOWED_ENDPOINT_IDS": f"{ALLOWED}, {OTHER.upper()}",
        "STEMBENCH_SERVICE_COMPUTE_FUNCTION_ID": FUNCTION,
        "STEMBENCH_SERVICE_GLOBUS_CLIENT_ID": CLIENT_ID,
        "STEMBENCH_SERVICE_GLOBUS_CLIENT_SECRET": "secret"})
    assert settings.allowed_endpoint_ids == (ALLOWED, OTHER)
    assert settings.endpoint_refusal(OTHER.upper()) is None


def test_verifier_reads_the_identity_set(rsps: responses.RequestsMock) -> None:
    FakeAuth(rsps)
    verifier = TokenVerifier(CLIENT_ID, "secret", required_scope=SCOPE,
                             auth_client=globus_sdk.ConfidentialAppAuthClient(CLIENT_ID, "s"))
    caller = verifier.verify("Bearer orcid-token")
    assert caller.sub == ALICE_ORCID and caller.identities == (ALICE_ORCID, ALICE)
    assert caller.owns(ALICE) and not caller.owns(str(uuid.uuid4()))
