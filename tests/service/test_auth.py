"""Globus Auth: every kind of bad token gets the right status and a clear message."""

from __future__ import annotations

import time

import globus_sdk
import pytest
import responses
from service_helpers import CLIENT_ID, SCOPE, bearer, verify_now
from silent_servers import silent_server

from stembench.service.auth import AuthError, TokenVerifier, bearer_token

try:  # globus-sdk 4
    from globus_sdk.testing import load_response
except ImportError:  # globus-sdk 3
    from globus_sdk._testing import load_response

SUBMISSION = {"model": "log-blob", "dataset_preset": "mini"}


@pytest.mark.parametrize(("headers", "status", "code", "words"), [
    (bearer("expired"), 401, "invalid_token", "token expired"),
    (bearer("inactive"), 401, "invalid_token", "not active"),
    (bearer("foreign"), 401, "invalid_token", "not issued for this service"),
    (bearer("noscope"), 403, "insufficient_scope", "lacks the required scope"),
    ({}, 401, "invalid_request", "missing Authorization header"),
    ({"Authorization": "Basic dXNlcjpwdw=="}, 401, "invalid_request", "malformed"),
    ({"Authorization": "Bearer"}, 401, "invalid_request", "malformed"),
    ({"Authorization": "Bearer two tokens"}, 401, "invalid_request", "malformed"),
])
def test_bad_credentials_refused(client, headers, status, code, words) -> None:
    answer = client.post("/api/jobs", json=SUBMISSION, headers=headers)
    assert answer.status_code == status
    assert words in answer.json()["detail"]
    assert answer.json()["error"] == code
    assert answer.headers["WWW-Authenticate"].startswith(f'Bearer error="{code}"')
    mine = client.get("/api/jobs", headers=headers)
    assert mine.status_code == status
    listing = client.get("/api/jobs", headers=bearer("alice")).json()
    assert listing == []  # nothing was queued by any refused request


def test_valid_token_submits_as_its_subject(client) -> None:
    answer = client.post("/api/jobs", json=SUBMISSION, headers=bearer("alice"))
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["job"]["id"]
    assert [j["id"] for j in client.get("/api/jobs", headers=bearer("alice")).json()] == [job_id]
    assert client.get("/api/jobs", headers=bearer("bob")).json() == []


def test_reading_is_public(client) -> None:
    for path in ("/api/models", "/api/datasets", "/api/leaderboard", "/", "/api/health"):
        assert client.get(path).status_code == 200, path


@responses.activate
def test_introspection_request_and_cache() -> None:
    responses.add(responses.POST, "https://auth.globus.org/v2/oauth2/token/introspect",
                  json={"active": True, "sub": "u1", "scope": f"openid {SCOPE}",
                        "aud": [CLIENT_ID], "exp": int(time.time()) + 3600})
    verifier = TokenVerifier(CLIENT_ID, "secret", required_scope=SCOPE, cache_ttl_s=60)
    assert verify_now(verifier, "Bearer T1").sub == "u1"
    assert verify_now(verifier, "bearer T1").sub == "u1"  # cached: scheme is case-insensitive
    assert len(responses.calls) == 1
    assert "token=T1" in responses.calls[0].request.body
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")
    verify_now(verifier, "Bearer T2")
    assert len(responses.calls) == 2


def _introspects_active(expires: int) -> None:
    """Mocked Globus Auth says every token is active for this service until ``expires``."""
    responses.add(responses.POST, "https://auth.globus.org/v2/oauth2/token/introspect",
                  json={"active": True, "sub": "u1", "scope": SCOPE, "aud": [CLIENT_ID],
                        "exp": expires})


@responses.activate
def test_an_accepted_token_is_introspected_once_and_rechecked_for_logout(monkeypatch) -> None:
    """Globus Auth is asked once in the token's lifetime; past the TTL only the logout
    record is asked again, and a logout recorded meanwhile (another process) refuses it."""
    now = time.time()
    _introspects_active(int(now) + 3600)
    verifier = TokenVerifier(CLIENT_ID, "secret", required_scope=SCOPE, cache_ttl_s=60)
    looked_up: list[str] = []
    logged_out: set[str] = set()

    def record(key: str) -> bool:
        looked_up.append(key)
        return key in logged_out

    verifier.logged_out = record
    assert verify_now(verifier, "Bearer T").sub == "u1"
    assert verify_now(verifier, "Bearer T").sub == "u1"  # within the TTL: nothing asked
    assert len(looked_up) == 1
    for step in (1, 2):
        monkeypatch.setattr("stembench.service.auth.time.time", lambda s=step: now + 61 * s)
        if step == 2:
            logged_out.add(looked_up[0])
            with pytest.raises(AuthError, match="logged out"):
                verify_now(verifier, "Bearer T")
        else:
            assert verify_now(verifier, "Bearer T").sub == "u1"
    assert len(looked_up) == 3
    assert len(responses.calls) == 1  # introspected once in the token's lifetime


@responses.activate
def test_cache_never_outlives_the_tokens_exp(monkeypatch) -> None:
    now = time.time()
    _introspects_active(int(now) + 30)
    verifier = TokenVerifier(CLIENT_ID, "secret", required_scope=SCOPE, cache_ttl_s=3600)
    assert verify_now(verifier, "Bearer T").sub == "u1"
    monkeypatch.setattr("stembench.service.auth.time.time", lambda: now + 60)  # exp passed
    with pytest.raises(AuthError, match="token expired"):
        verify_now(verifier, "Bearer T")  # asked again, not taken from the cache
    assert len(responses.calls) == 2


@responses.activate
def test_a_revoked_token_leaves_the_cache() -> None:
    _introspects_active(int(time.time()) + 3600)
    responses.add(responses.POST, "https://auth.globus.org/v2/oauth2/token/revoke",
                  json={"active": False})
    verifier = TokenVerifier(CLIENT_ID, "secret", required_scope=SCOPE, cache_ttl_s=3600)
    assert verify_now(verifier, "Bearer T").sub == "u1"
    verifier.revoke("T")
    with pytest.raises(AuthError, match="token was revoked") as caught:
        verify_now(verifier, "Bearer T")
    assert caught.value.status == 401
    assert [c.request.url.rsplit("/", 1)[1] for c in responses.calls] == ["introspect",
                                                                          "revoke"]


def test_logout_drops_the_cached_token(client, globus_auth) -> None:
    assert client.get("/api/jobs", headers=bearer("alice")).status_code == 200
    assert client.post("/api/logout", headers=bearer("alice")).status_code == 204
    answer = client.get("/api/jobs", headers=bearer("alice"))
    assert answer.status_code == 401 and "logged out" in answer.json()["detail"]
    assert client.get("/api/jobs", headers=bearer("bob")).status_code == 200
    assert len(globus_auth.calls) == 2  # alice's token was asked about once, bob's once


@responses.activate
def test_globus_canned_introspection_is_an_expired_token() -> None:
    meta = load_response(globus_sdk.ConfidentialAppAuthClient.oauth2_token_introspect).metadata
    verifier = TokenVerifier(meta["client_id"], "secret", required_scope="openid")
    with pytest.raises(AuthError, match="token expired") as caught:
        verify_now(verifier, "Bearer canned")  # the canned response's exp lies in 2024
    assert caught.value.status == 401


@responses.activate
def test_auth_outage_is_503() -> None:
    responses.add(responses.POST, "https://auth.globus.org/v2/oauth2/token/introspect",
                  json={"error": "unavailable"}, status=500)
    verifier = TokenVerifier(CLIENT_ID, "secret", required_scope=SCOPE)
    with pytest.raises(AuthError, match="Globus Auth refused") as caught:
        verify_now(verifier, "Bearer T")
    assert caught.value.status == 503


@pytest.mark.parametrize("header", [None, "", "Token abc", "Bearer ", "Bearer a b"])
def test_bearer_token_parsing_rejects(header) -> None:
    with pytest.raises(AuthError):
        bearer_token(header)
    assert bearer_token("Bearer abc.def") == "abc.def"


def test_a_broken_dataset_module_is_an_error_not_an_empty_list(client, monkeypatch) -> None:
    """/api/datasets and job submission do not hide an ImportError behind "no datasets"."""
    import sys

    from fastapi.testclient import TestClient

    monkeypatch.setitem(sys.modules, "stembench.dataset_publish.simulate.build", None)
    quiet = TestClient(client.app, raise_server_exceptions=False)
    assert quiet.get("/api/datasets").status_code == 500
    answer = quiet.post("/api/jobs", json={**SUBMISSION, "dataset_preset": "no-such-preset"},
                        headers=bearer("alice"))
    assert answer.status_code == 500  # not queued for a dataset nobody checked
    assert client.get("/api/jobs", headers=bearer("alice")).json() == []


def test_a_hanging_globus_auth_gets_one_bounded_attempt(monkeypatch) -> None:
    """globus_sdk would retry a hung introspection 5 times at 60 s each; the verifier asks once."""
    with silent_server() as (url, accepted):
        monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", f"{url}/")
        verifier = TokenVerifier(CLIENT_ID, "secret", required_scope=SCOPE, timeout_s=0.3)
        with pytest.raises(globus_sdk.NetworkError):
            verifier._client.oauth2_token_introspect("made-up-token")
    assert len(accepted) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_logout_holds_in_every_process_and_past_the_cache(settings, globus_auth) -> None:
    """Another process of the service (its own token cache, which never saw the token, as
    one whose cache forgot it) refuses a logged-out token without asking Globus Auth."""
    from fastapi.testclient import TestClient

    from stembench.service.app import create_app

    first, second = create_app(settings), create_app(settings)
    with TestClient(first) as one, TestClient(second) as other:
        assert one.post("/api/logout", headers=bearer("alice")).status_code == 204
        asked = len(globus_auth.calls)
        answer = other.get("/api/jobs", headers=bearer("alice"))
        assert answer.status_code == 401 and "logged out" in answer.json()["detail"]
        assert len(globus_auth.calls) == asked
        assert other.get("/api/jobs", headers=bearer("bob")).status_code == 200
    for app in (first, second):
        app.state.engine.dispose()
