"""The endpoint watch asks the SDK's own ``Client`` for the endpoint's status.

The status route is mocked with ``responses``, from the route and document
``globus_sdk.testing`` registers for ``ComputeClientV2.get_endpoint_status``; a hung route is
a local server that accepts and never answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses

pytest.importorskip("globus_compute_sdk")

import globus_sdk
from globus_compute_sdk import Client
from globus_sdk.testing import RegisteredResponse, get_response_set
from globus_sdk.token_storage import TokenStorageData
from silent_servers import silent_server

from stembench.client.endpoint_watch import (
    ERRORS_BEFORE_WARNING,
    EndpointWatch,
    bounded_status_client,
)
from stembench.errors import InputError

ROUTE = get_response_set(globus_sdk.ComputeClientV2.get_endpoint_status)
ENDPOINT = ROUTE.metadata["endpoint_id"]


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def user_client() -> Client:
    return Client(authorizer=globus_sdk.AccessTokenAuthorizer("token"), do_version_check=False)


def answers(rsps: responses.RequestsMock, *states: Any) -> None:
    """The status route answers ``states`` in turn, the last one again and again: a state
    name in the registered document, an HTTP error status, or an exception raised."""
    default = ROUTE.lookup("default")
    for state in states:
        if isinstance(state, Exception):
            rsps.add(responses.GET, default.full_url, body=state)
        elif isinstance(state, int):
            RegisteredResponse(service="compute", path=default.path, method="GET",
                               status=state, json={"code": "UNAVAILABLE", "reason": "x"}
                               ).add(requests_mock=rsps)
        else:
            RegisteredResponse(service="compute", path=default.path, method="GET",
                               json={**default.json, "status": state}
                               ).add(requests_mock=rsps)


def verdicts(watch: EndpointWatch, n: int) -> list[str | None]:
    """What the watch says after each of ``n`` checks."""
    said = []
    for _ in range(n):
        watch.check()
        said.append(watch.gone())
    return said


def test_offline_twice_in_a_row_gives_the_endpoint_up(rsps: responses.RequestsMock) -> None:
    answers(rsps, "offline", "online", "offline", "offline")
    watch = EndpointWatch(bounded_status_client(user_client()), ENDPOINT, interval_s=60)
    said = verdicts(watch, 4)
    assert said[:3] == [None, None, None]  # online again before the decision: kept
    assert said[3] == (f"Globus Compute endpoint {ENDPOINT} went offline mid-run; its "
                       "unfinished shards were given up (finished ones are kept): start it "
                       "again (globus-compute-endpoint start NAME), then run the same command")
    assert len(rsps.calls) == 4


def test_failed_status_calls_never_give_it_up_and_are_not_retried(
        rsps: responses.RequestsMock) -> None:
    answers(rsps, "offline", 503, "online", 500,
            requests.ConnectionError("connection refused"), 502, "online")
    watch = EndpointWatch(bounded_status_client(user_client()), ENDPOINT, interval_s=60)
    with pytest.warns(UserWarning, match=f"{ENDPOINT}: its status could not be read "
                      f"{ERRORS_BEFORE_WARNING} times in a row .*HTTP 502.*task deadline"):
        said = verdicts(watch, 7)
    assert said == [None] * 7
    assert len(rsps.calls) == 7  # one attempt per check (globus-sdk would retry 5xx 5 times)


def test_an_error_between_two_offline_answers_is_ignored(rsps: responses.RequestsMock) -> None:
    answers(rsps, "offline", 503, "offline")
    watch = EndpointWatch(bounded_status_client(user_client()), ENDPOINT, interval_s=60)
    assert verdicts(watch, 3)[1:] == [None, watch.gone()] and watch.gone() is not None


def test_a_hung_route_or_a_busy_client_does_not_hold_the_watch() -> None:
    """The status call is bounded by its own timeout, with one attempt, and does not wait for
    the user's client, whose lock a batch submission may hold for minutes."""
    client = user_client()
    with silent_server() as (url, accepted):
        client._compute_web_client.v2.base_url = url  # the service, hung
        watch = EndpointWatch(bounded_status_client(client, timeout_s=0.2), ENDPOINT,
                              interval_s=60)
        with client._request_lock:  # a submission in flight on the user's client
            checking = threading.Thread(target=watch.check, daemon=True)
            checking.start()
            checking.join(timeout=60)
        assert not checking.is_alive(), "the status call waited past its timeout"
        assert (watch.errors, len(accepted), watch.gone()) == (1, 1, None)


def test_the_watch_thread_checks_until_it_gives_up_or_is_closed(
        rsps: responses.RequestsMock) -> None:
    answers(rsps, "online", "offline")
    watch = EndpointWatch(bounded_status_client(user_client()), ENDPOINT,
                          interval_s=0.01).start()
    watch._thread.join(timeout=60)
    assert watch.gone() is not None and len(rsps.calls) == 3  # then it stops asking
    closed = EndpointWatch(bounded_status_client(user_client()), ENDPOINT, interval_s=0.01)
    closed.close()
    closed.start()._thread.join(timeout=60)
    assert not closed._thread.is_alive() and len(rsps.calls) == 3
    with pytest.raises(InputError, match="interval must be > 0 seconds"):
        EndpointWatch(user_client(), ENDPOINT, interval_s=0)


def test_the_caller_chooses_what_the_offline_line_advises(rsps: responses.RequestsMock) -> None:
    answers(rsps, "offline")
    hint = "the job can be submitted again once the endpoint is back online"
    watch = EndpointWatch(bounded_status_client(user_client()), ENDPOINT, interval_s=60,
                          hint=hint)
    line = verdicts(watch, 2)[1]
    assert line is not None and line.endswith(f"(finished ones are kept): {hint}")
    assert "globus-compute-endpoint start" not in line


def test_a_token_gone_mid_run_fails_the_status_call_and_never_starts_a_login(
        rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's client has a ``GlobusApp`` (the SDK's default UserApp, tokens in memory)
    whose default token-validation handler would log in again: once the token is gone the
    watch's status call is refused (401, a failed call), and no login is started."""
    app = globus_sdk.UserApp("stembench-test", client_id="4cf29807-cf21-49ec-9443-ff9a3fb9f81c",
                             config=globus_sdk.GlobusAppConfig(token_storage="memory"))
    logins: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "login", lambda **options: logins.append(options))
    client = Client(app=app, do_version_check=False)
    app.token_storage.token_storage.store_token_data_by_resource_server({
        server: TokenStorageData(
            resource_server=server, identity_id="ae341a98-d274-11e5-b888-dbae3a8ba545",
            scope=" ".join(map(str, scopes)), access_token=f"{server}-token",
            refresh_token=None, expires_at_seconds=2**40, token_type="Bearer")
        for server, scopes in app.scope_requirements.items()})
    watch = EndpointWatch(bounded_status_client(client), ENDPOINT, interval_s=60)
    server = client._compute_web_client.v2.resource_server
    app.token_storage.remove_token_data(server)  # e.g. a logout in another process
    app._authorizer_factory.clear_cache()  # as a new login or an expired token does
    answers(rsps, 401)
    assert verdicts(watch, 1) == [None]
    assert logins == []
    assert watch.errors == 1
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {server}-token"
