"""A hung Globus Auth stalls no route: a submission's dependent-token grant waits off the
request threads (503 after the introspection timeout; tokens it mints later are revoked),
and cancelling asks Globus Auth nothing (the job worker revokes the token no job needs)."""

from __future__ import annotations

import concurrent.futures as cf
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import responses
from service_helpers import LiveServer, bearer

pytest.importorskip("globus_compute_sdk")

from service_globus import ALICE, ALLOWED, FakeAuth, dependent_tokens, globus_app

#: A guard against a hang only: a request that waits on the hung Globus Auth times out.
HANG_GUARD_S = 60


class HangingAuth(FakeAuth):
    """Globus Auth whose token grant and revocation hang until the test lets them answer."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.grant_release, self.revoke_release = threading.Event(), threading.Event()
        self.lock = threading.Lock()
        super().__init__(rsps)

    def _token(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.grant_release.wait(3 * HANG_GUARD_S)
        with self.lock:
            self.grants.append(parse_qs(request.body))
            serial = len(self.grants)
        return 200, {}, json.dumps(dependent_tokens(self.compute, serial))

    def _revoke(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.revoke_release.wait(3 * HANG_GUARD_S)
        with self.lock:
            return super()._revoke(request)


def _revoked(auth: FakeAuth, count: int) -> list[str]:
    """The tokens revoked, once ``count`` were (revocations run in the background)."""
    deadline = time.monotonic() + HANG_GUARD_S  # a guard against a hang only
    while len(auth.revoked) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return list(auth.revoked)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_hung_globus_auth_stalls_no_route(tmp_path, database_url) -> None:
    from stembench.service.worker import Worker

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        auth = HangingAuth(rsps)
        rsps.add_passthru("http://127.0.0.1")
        app = globus_app(tmp_path, database_url, introspection_timeout_s=2.0).app
        with LiveServer(app) as server, httpx.Client(base_url=server.url,
                                                     timeout=HANG_GUARD_S) as http:
            def submit(model: str = "log-blob") -> httpx.Response:
                return http.post("/api/jobs", json={"model": model, "endpoint_id": ALLOWED},
                                 headers=bearer("alice"))

            try:
                with cf.ThreadPoolExecutor(8) as pool:
                    flood = [pool.submit(submit) for _ in range(8)]
                    assert http.get("/api/leaderboard").status_code == 200
                    assert not auth.grant_release.is_set()  # answered while Auth hangs
                    answers = [future.result() for future in flood]
                assert {a.status_code for a in answers} == {503}, [a.text for a in answers]
                grant_gave_up = "Globus Auth did not answer within 2 s"  # not the token check
                assert all(grant_gave_up in a.json()["detail"] for a in answers)
                auth.grant_release.set()  # Auth answers the grants: nobody keeps those tokens
                job = submit("atomap-like")
                assert job.status_code == 201, job.text
                cancel = http.post(f"/api/jobs/{job.json()['job']['id']}/cancel",
                                   headers=bearer("alice"))
                assert cancel.json()["status"] == "cancelled"  # while revocations hang
                assert auth.revoked == [] and not auth.revoke_release.is_set()
            finally:
                auth.grant_release.set()
                auth.revoke_release.set()
        credentials = app.state.settings.credential_store()
        kept = credentials.load(ALICE)["refresh_token"]
        late = _revoked(auth, 2 * 8)  # the eight grants that landed after their requests
        assert len(late) == 16 and kept not in late
        assert not Worker(app.state.settings, app.state.sessions).run_once()  # idle: release
        assert kept in auth.revoked and not credentials.holds(ALICE)
    app.state.engine.dispose()


def test_the_worker_revokes_with_one_bounded_attempt(tmp_path, monkeypatch) -> None:
    """globus_sdk's default client would retry a hung revocation 5 times at 60 s each."""
    from silent_servers import silent_server

    from stembench.service.worker import Worker

    app = globus_app(tmp_path, introspection_timeout_s=0.3).app
    credentials = app.state.settings.credential_store()
    credentials.save(ALICE, {"access_token": "aliceComputeToken-1", "expires_at_seconds": 1,
                             "refresh_token": "aliceComputeRefresh-1"})  # no job needs it
    with silent_server() as (url, accepted):
        monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", f"{url}/")
        worker = threading.Thread(target=Worker(app.state.settings,
                                                app.state.sessions).run_once, daemon=True)
        worker.start()
        worker.join(HANG_GUARD_S)
        assert not worker.is_alive()
    assert len(accepted) == 2  # one attempt for each of the refresh and access tokens
    assert not credentials.holds(ALICE)  # deleted all the same
    app.state.engine.dispose()


def test_calls_to_a_hung_globus_compute_are_bounded(tmp_path) -> None:
    """globus_compute_sdk's own web client would wait 60 s a request and retry 5 times."""
    import re

    import globus_sdk
    import requests

    from stembench.service.credentials import compute_client_for
    from stembench.service.delegation import _endpoint_options_refusal
    from stembench.service.schemas import SubmitIn

    waited: list[Any] = []

    def hung(request: Any) -> Any:
        waited.append(request.req_kwargs["timeout"])  # what the transport would wait
        raise requests.exceptions.ReadTimeout("Globus Compute did not answer")

    app = globus_app(tmp_path, introspection_timeout_s=0.3, compute_timeout_s=7.0).app
    settings = app.state.settings
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.GET, re.compile(r"https://compute\.api\.globus\.org/.*"),
                          callback=hung)
        body = SubmitIn(model="log-blob", endpoint_id=ALLOWED, endpoint_options={"gpus": 1})
        with pytest.warns(UserWarning, match="metadata cannot be read"):
            assert _endpoint_options_refusal(settings, body, "aliceComputeToken-1") is None
        assert waited == [0.3]  # while a request waits: one attempt, its timeout
        waited.clear()
        credentials = settings.credential_store()
        credentials.save(ALICE, {"access_token": "aliceComputeToken-1",
                                 "expires_at_seconds": int(time.time()) + 3600,
                                 "refresh_token": "aliceComputeRefresh-1"})
        client = compute_client_for(settings.globus_client_id, settings.globus_client_secret,
                                    credentials, ALICE, timeout_s=settings.compute_timeout_s)
        with pytest.raises(globus_sdk.NetworkError):
            client.get_endpoint_metadata(ALLOWED)
        assert waited == [7.0]
    app.state.engine.dispose()
