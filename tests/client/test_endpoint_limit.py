"""The endpoint's own per-task limit when its option schema cannot be read.

A stembench endpoint stops a task after ``task_timeout_s`` (its ``GC_TASK_TIMEOUT``) only if
the client sends that option, which it does only where the endpoint's schema declares it.
For a user who does not own the endpoint the real service answers the metadata route
(``get_endpoint_metadata``: GET /v2/endpoints/UUID) with 403. The SDK's own ``Client``
talks to ``responses``, with routes and documents from ``globus_sdk.testing``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

pytest.importorskip("globus_compute_sdk")

import globus_sdk
from globus_compute_sdk import Client
from globus_sdk.testing import RegisteredResponse

from stembench.client.remote_endpoints import EndpointLimitWarning, remote_targets

ENDPOINT = "0b4e2bd4-3b3e-4f79-a5d5-8e2b5a1c6f11"
FUNCTION_ID = "9b1f9c7e-6a7d-4d0e-8a55-3c1a4f5e2d20"
#: the service's error document for a user who may use, not read, the endpoint
FORBIDDEN = {"code": "FORBIDDEN", "message": "You do not have access to this endpoint",
             "error_args": [], "http_status_code": 403}


@pytest.fixture
def client() -> Iterator[Client]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        RegisteredResponse(service="compute", path=f"/v2/endpoints/{ENDPOINT}/status",
                           method="GET", json={"status": "online", "details": {}}
                           ).add(requests_mock=rsps)
        RegisteredResponse(service="compute", path=f"/v2/endpoints/{ENDPOINT}", method="GET",
                           status=403, json=FORBIDDEN).add(requests_mock=rsps)
        yield Client(authorizer=globus_sdk.AccessTokenAuthorizer("token"),
                     do_version_check=False)


def _config(target: object) -> object:
    config = target.executor.inner.user_endpoint_config  # type: ignore[attr-defined]
    target.executor.shutdown(wait=True)  # type: ignore[attr-defined]
    return config


def test_unreadable_metadata_says_the_endpoint_will_not_stop_tasks(client: Client) -> None:
    with pytest.warns(UserWarning) as caught:
        (target,) = remote_targets([ENDPOINT], client=client, task_timeout_s=30.5,
                                   https_only=True, function_id=FUNCTION_ID)
    assert _config(target) is None  # nothing the endpoint might refuse is sent
    (limit,) = [w for w in caught if isinstance(w.message, EndpointLimitWarning)]
    text = str(limit.message)
    assert "\n" not in text and text.startswith(
        f"Globus Compute endpoint {ENDPOINT}: its option schema has no task_timeout_s "
        "(unknown), so it will not stop a task that runs too long")
    assert "--endpoint-schema pbs-gpu|slurm-gpu|workstation-gpu" in text
    assert any("HTTP 403" in str(w.message) for w in caught)  # why it is unknown


def test_a_stembench_template_as_the_schema_sends_the_limit_despite_a_403(
        client: Client, recwarn: pytest.WarningsRecorder) -> None:
    """``--endpoint-schema slurm-gpu``: the schema stembench's template publishes."""
    (target,) = remote_targets([ENDPOINT], client=client, options=["account=12345"],
                               option_schema="slurm-gpu", task_timeout_s=30.5,
                               https_only=True, function_id=FUNCTION_ID)
    assert _config(target) == {"account": "12345", "task_timeout_s": 27}
    assert not [w for w in recwarn if isinstance(w.message, EndpointLimitWarning)]


def test_a_foreign_endpoint_without_the_option_gets_the_same_line(client: Client) -> None:
    """A schema without ``task_timeout_s`` (the endpoint is not stembench's)."""
    with pytest.warns(EndpointLimitWarning, match=r"its option schema has no task_timeout_s, "
                                                  "so it will not stop"):
        (target,) = remote_targets([ENDPOINT], client=client, task_timeout_s=30.5,
                                   option_schema={"type": "object", "properties": {
                                       "queue": {"type": "string"}}},
                                   https_only=True, function_id=FUNCTION_ID)
    assert _config(target) is None
