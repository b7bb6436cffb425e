"""The Auth and Compute stand-ins refuse and revoke as the services they replace do.

These run the stand-ins' routes directly (no daemons): what they check is the stand-ins'
own rules, which the stack's tests rely on.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from compute_stack.auth_service import AuthState, Identity
from compute_stack.web_service import ComputeState, _Endpoint

COMPUTE = "funcx_service"
SCOPE = "https://auth.globus.org/scopes/facd7ccc-c5f4-42aa-916b-a0e270e2c2a9/all"


def _as(state: ComputeState, identity: Identity, method: str, path: str,
        body: dict[str, Any] | None = None) -> tuple[int, Any]:
    token = state.auth.grant(identity, COMPUTE, SCOPE).access_token
    return state.route(method, path, {"authorization": f"Bearer {token}"},
                       json.dumps(body).encode() if body is not None else b"")


@pytest.mark.parametrize("sharing", ["private", "public", "group"])
def test_a_private_function_of_another_identity_is_refused(sharing: str) -> None:
    auth = AuthState()
    alice, bob = auth.identity("alice@example.org"), auth.identity("bob@example.org")
    state = ComputeState(auth=auth, broker=None)  # type: ignore[arg-type]  # never reached
    state.group_members["g-1"] = {"bob@example.org"}
    shared = {"private": {}, "public": {"public": True}, "group": {"group": "g-1"}}[sharing]
    status, doc = _as(state, alice, "POST", "/v3/functions", {
        "function_name": "f", "function_code": "code", **shared})
    function_id = doc["function_uuid"]
    endpoint_id = "0b4e2bd4-3b3e-4f79-a5d5-8e2b5a1c6f11"
    state.endpoints[endpoint_id] = _Endpoint(endpoint_id, alice, {"multi_user": True})
    assert _as(state, alice, "GET", f"/v2/functions/{function_id}")[0] == 200
    status, doc = _as(state, bob, "GET", f"/v2/functions/{function_id}")
    if sharing != "private":
        assert status == 200  # (its submit would go on to the broker, absent here)
        return
    assert (status, doc["code"]) == (403, "FUNCTION_ACCESS_FORBIDDEN")
    status, doc = _as(state, bob, "POST", f"/v3/endpoints/{endpoint_id}/submit",
                      {"tasks": {function_id: ["payload"]}})
    assert (status, doc["code"]) == (403, "FUNCTION_ACCESS_FORBIDDEN")


def test_only_tokens_issued_for_the_compute_service_are_accepted() -> None:
    auth = AuthState()
    alice = auth.identity("alice@example.org")
    state = ComputeState(auth=auth, broker=None)  # type: ignore[arg-type]  # never reached
    service_id = "6a1e0f3c-2b7d-4c55-9a0e-3f2d1c4b5a69"  # another app's resource server
    for server, scope in ((service_id, f"https://auth.globus.org/scopes/{service_id}/all"),
                          ("auth.globus.org", "openid profile email")):
        token = auth.grant(alice, server, scope).access_token
        assert auth.who(token) == alice  # a live token, for another audience
        status, doc = state.route("GET", "/v2/version", {"authorization": f"Bearer {token}"},
                                  b"")
        assert (status, doc["code"]) == (401, "UNAUTHORIZED")
    assert _as(state, alice, "GET", "/v2/version")[0] == 200


def _token(auth: AuthState, grant: str, **form: str) -> tuple[int, Any]:
    return auth.route("POST", "/v2/oauth2/token" + ("/revoke" if grant == "revoke" else ""),
                      {}, urlencode({"grant_type": grant, **form}).encode())


def test_revoking_an_access_token_leaves_its_refresh_token() -> None:
    auth = AuthState()
    alice = auth.identity("alice@example.org")
    grant = auth.grant(alice, COMPUTE, SCOPE)
    _token(auth, "revoke", token=grant.access_token)
    assert auth.who(grant.access_token) is None
    assert auth.live_refresh_tokens(alice) == [grant.refresh_token]
    status, renewed = _token(auth, "refresh_token", refresh_token=grant.refresh_token)
    assert status == 200 and auth.who(renewed["access_token"]) == alice
    _token(auth, "revoke", token=grant.refresh_token)  # ends it and what it issued
    assert auth.who(renewed["access_token"]) is None and not auth.live_refresh_tokens()
    # globus_sdk.testing's auth oauth2_exchange_code_for_tokens "invalid_grant": 401
    assert _token(auth, "refresh_token", refresh_token=grant.refresh_token) == (
        401, {"error": "invalid_grant"})


def test_introspection_and_the_dependent_token_grant_as_globus_sdk_reads_them() -> None:
    """The service's own calls (stembench.service.auth), answered by the Auth stand-in."""
    import re

    import globus_sdk
    import responses

    from stembench.service.auth import COMPUTE_RESOURCE_SERVER, COMPUTE_SCOPE

    service_id = "5c3a4f7e-0000-4000-8000-00000000cafe"
    auth = AuthState(dependent_scopes={service_id: [(COMPUTE_RESOURCE_SERVER,
                                                     COMPUTE_SCOPE)]})
    alice = auth.identity("alice@example.org")
    token = auth.grant(alice, service_id, f"https://auth.globus.org/scopes/{service_id}/all")

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        path = re.sub(r"^https://[^/]+", "", request.url)
        status, doc = auth.route(request.method, path, dict(request.headers),
                                 request.body.encode() if isinstance(request.body, str)
                                 else request.body or b"")
        return status, {}, json.dumps(doc)

    client = globus_sdk.ConfidentialAppAuthClient(service_id, "secret")
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, re.compile(r"https://auth\.globus\.org/.*"),
                          callback=answer, content_type="application/json")
        seen = client.oauth2_token_introspect(token.access_token, include="identity_set")
        assert seen["active"] and seen["sub"] == alice.sub and service_id in seen["aud"]
        assert seen["identity_set"] == [alice.sub]
        assert client.oauth2_token_introspect("not-a-token")["active"] is False
        tokens = client.oauth2_get_dependent_tokens(
            token.access_token, scope=COMPUTE_SCOPE, refresh_tokens=True
        ).by_resource_server[COMPUTE_RESOURCE_SERVER]
        assert auth.who(tokens["access_token"]) == alice
        assert tokens["refresh_token"] in auth.live_refresh_tokens(alice)
        with pytest.raises(globus_sdk.AuthAPIError):
            client.oauth2_get_dependent_tokens("not-a-token", scope=COMPUTE_SCOPE)


def test_held_tasks_are_the_named_operation_after_the_first_n() -> None:
    """``hold_tasks`` reads the operation from the payload the SDK's Batch builds."""
    from compute_stack.web_service import _first_argument
    from globus_compute_sdk.sdk.batch import Batch

    from stembench.client.compute_functions import compute_serializer

    published: list[bytes] = []

    class Broker:
        def publish(self, queue: str, message: bytes, headers: dict[str, Any]) -> None:
            published.append(message)

    state = ComputeState(auth=AuthState(), broker=Broker())  # type: ignore[arg-type]
    held = state.hold_tasks("evaluate_shard", after=1)
    for operation in ("describe_dataset", "evaluate_shard", "evaluate_shard", "describe_dataset",
                      "evaluate_shard"):
        batch = Batch(task_group_id=None, serializer=compute_serializer())
        batch.add("2b5c1c2e-7d7a-4a0c-9a57-2f1b8d6f6a10", args=(operation, [{"shard": 1}]))
        (payload,) = next(iter(batch.prepare()["tasks"].values()))  # type: ignore[union-attr]
        state._publish_task("tasks.x", operation.encode(), {},
                            operation=_first_argument(payload))
    assert published == [b"describe_dataset", b"evaluate_shard", b"describe_dataset"]
    assert len(held.waiting) == 2
    assert state.release_tasks() == 2
    assert published[3:] == [b"evaluate_shard", b"evaluate_shard"]


def test_held_tasks_can_be_read_and_sent_one_by_one() -> None:
    """``HeldTasks.arguments`` decodes a held task's call; ``send_held`` sends the named
    held tasks and keeps the others."""
    from compute_stack.web_service import _first_argument
    from globus_compute_common import messagepack
    from globus_compute_common.messagepack.message_types import Task
    from globus_compute_sdk.sdk.batch import Batch
    from globus_compute_sdk.serialize import ComputeSerializer

    from stembench.client.compute_functions import compute_serializer

    published: list[str] = []

    class Broker:
        def publish(self, queue: str, message: bytes, headers: dict[str, Any]) -> None:
            published.append(headers["task_uuid"])

    state = ComputeState(auth=AuthState(), broker=Broker())  # type: ignore[arg-type]
    held = state.hold_tasks("evaluate_shard", after=0)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for shard, task_id in enumerate(ids):
        batch = Batch(task_group_id=None, serializer=compute_serializer())
        batch.add("2b5c1c2e-7d7a-4a0c-9a57-2f1b8d6f6a10", args=("evaluate_shard", [{"n": shard}]))
        (payload,) = next(iter(batch.prepare()["tasks"].values()))  # type: ignore[union-attr]
        buffer = ComputeSerializer.pack_buffers(
            ["code", *ComputeSerializer.unpack_buffers(payload)])
        state._publish_task("tasks.x", messagepack.pack(Task(task_id=uuid.UUID(task_id),
                                                             task_buffer=buffer)),
                            {"task_uuid": task_id}, operation=_first_argument(payload))
    assert held.arguments() == {t: ["evaluate_shard", [{"n": n}]] for n, t in enumerate(ids)}
    assert state.send_held({ids[1]}) == 1 and published == [ids[1]]
    assert list(held.arguments()) == [ids[0], ids[2]]
    assert state.release_tasks() == 2 and published == [ids[1], ids[0], ids[2]]


def test_a_user_endpoint_that_stopped_is_started_again_by_the_next_submit() -> None:
    """A user endpoint's last heartbeat says ``active: False`` as it stops (interchange.py,
    ``heartbeat(active=False)``): the next submit starts it again, even within a minute of
    its start (a start still under way is not repeated)."""
    from globus_compute_common import messagepack
    from globus_compute_common.messagepack.message_types import EPStatusReport

    commands: list[str] = []

    class Broker:
        def endpoint_queues(self, endpoint_id: str) -> dict[str, Any]:
            return {"command_queue_info": {}}

        def publish(self, queue: str, message: bytes, **options: Any) -> None:
            commands.append(json.loads(message)["command"])

    auth = AuthState()
    alice = auth.identity("alice@example.org")
    state = ComputeState(auth=auth, broker=Broker())  # type: ignore[arg-type]
    endpoint_id = "0b4e2bd4-3b3e-4f79-a5d5-8e2b5a1c6f11"
    endpoint = state.endpoints[endpoint_id] = _Endpoint(endpoint_id, alice, {})

    def beat(uep_id: str, active: bool) -> None:
        state.on_heartbeat(messagepack.pack(EPStatusReport(
            endpoint_id=uuid.UUID(uep_id), task_statuses={},
            global_state={"heartbeat_period": 30, "active": active})))

    uep_id = state._user_endpoint(alice, endpoint, {})
    assert state._user_endpoint(alice, endpoint, {}) == uep_id  # starting: not sent again
    beat(uep_id, True)
    assert state._user_endpoint(alice, endpoint, {}) == uep_id and len(commands) == 1
    beat(uep_id, False)
    assert state._user_endpoint(alice, endpoint, {}) == uep_id
    assert commands == ["cmd_start_endpoint", "cmd_start_endpoint"]
