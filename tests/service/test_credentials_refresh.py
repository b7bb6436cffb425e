"""A refreshed Compute token is kept only while its user's token is: never recreated.

The worker's Compute client refreshes the user's token through globus_sdk's
``RefreshTokenAuthorizer`` (``on_refresh``); the worker releases a token (revokes and
deletes it) under the owner's lock when their last job ended. Globus Auth is mocked with
``responses``; the Compute client is the SDK's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from service_helpers import CLIENT_ID, lock_is_held

pytest.importorskip("globus_compute_sdk")

from globus_sdk.testing import RegisteredResponse
from service_globus import ALICE, ALLOWED, KEY, TOKEN_URL

from stembench.service.credentials import CredentialStore, compute_client_for

STALE = {"access_token": "aliceComputeToken-1", "refresh_token": "aliceComputeRefresh-1",
         "expires_at_seconds": 1}  # long expired: the first call refreshes it


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        RegisteredResponse(service="compute", path=f"/v2/endpoints/{ALLOWED}/status",
                           method="GET", json={"status": "online", "details": {}}
                           ).add(requests_mock=mock)
        yield mock


def refresh_answer(rsps: responses.RequestsMock, before: Callable[[], None]) -> None:
    """Globus Auth answers a refresh (``before`` runs while the request is in flight)."""
    import json

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        assert "grant_type=refresh_token" in request.body
        before()
        return 200, {}, json.dumps({
            "access_token": "aliceComputeToken-2", "refresh_token": "aliceComputeRefresh-1",
            "expires_in": 3600, "resource_server": "funcx_service", "token_type": "Bearer",
            "scope": "https://auth.globus.org/scopes/facd7ccc-c5f4-42aa-916b-a0e270e2c2a9/all",
            "other_tokens": []})

    rsps.add_callback(responses.POST, TOKEN_URL, callback=answer)


def call_compute(credentials: CredentialStore, rsps: responses.RequestsMock) -> str:
    """One call of the worker's Compute client; the token it carried."""
    client = compute_client_for(CLIENT_ID, "secret", credentials, ALICE, timeout_s=5.0)
    client.get_endpoint_status(ALLOWED)
    return str(rsps.calls[-1].request.headers["Authorization"])


def test_a_token_released_while_its_refresh_was_answered_is_not_recreated(
        tmp_path: Path, rsps: responses.RequestsMock) -> None:
    credentials = CredentialStore(tmp_path, KEY)
    credentials.save(ALICE, STALE)
    revoked: list[str] = []

    def release() -> None:  # the worker, as Alice's last job ended
        with credentials.locked(ALICE):
            credentials.discard(ALICE, revoked.append)

    refresh_answer(rsps, release)
    assert call_compute(credentials, rsps) == "Bearer aliceComputeToken-2"
    assert revoked == ["aliceComputeRefresh-1", "aliceComputeToken-1"]
    assert not credentials.holds(ALICE) and not list(tmp_path.glob("*.token"))


def test_a_refreshed_token_is_kept_under_its_owners_lock(
        tmp_path: Path, rsps: responses.RequestsMock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = CredentialStore(tmp_path, KEY)
    credentials.save(ALICE, STALE)
    locked_while_saving: list[bool] = []
    save = credentials.save

    def watched_save(owner: str, tokens: dict[str, Any]) -> None:
        locked_while_saving.append(lock_is_held(next(tmp_path.glob("*.lock"))))
        save(owner, tokens)

    monkeypatch.setattr(credentials, "save", watched_save)
    refresh_answer(rsps, lambda: None)
    assert call_compute(credentials, rsps) == "Bearer aliceComputeToken-2"
    assert locked_while_saving == [True]
    assert credentials.load(ALICE)["access_token"] == "aliceComputeToken-2"


def test_a_refresh_never_overwrites_a_newer_token(tmp_path: Path,
                                                  rsps: responses.RequestsMock) -> None:
    credentials = CredentialStore(tmp_path, KEY)
    credentials.save(ALICE, STALE)
    newer = {"access_token": "aliceComputeToken-9", "refresh_token": "aliceComputeRefresh-9",
             "expires_at_seconds": 4_000_000_000}

    def grant() -> None:  # a submission keeps a newer token while the refresh is answered
        with credentials.locked(ALICE):
            credentials.save(ALICE, newer)

    refresh_answer(rsps, grant)
    assert call_compute(credentials, rsps) == "Bearer aliceComputeToken-2"
    assert {k: credentials.load(ALICE)[k] for k in newer} == newer
