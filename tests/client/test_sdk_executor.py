"""The SDK's own ``Executor`` on the remote path: task groups, refused batches, abandoned tasks.

Only the Compute web service is replaced, by ``responses`` callbacks on the routes the
installed SDK calls (``globus_sdk.testing``'s compute routes): ``POST
/v3/endpoints/{id}/submit`` creates a task group for the caller on a batch without one and
refuses a task group the caller does not own, as sdk/client.py:529-533 documents;
``GET /v2/get_amqp_result_connection_url`` points the Executor's result watcher at a local
socket that accepts connections and never answers, so submitted tasks stay pending (no
result ever comes), which is what a slow or stopped remote task looks like to the client.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

pytest.importorskip("globus_compute_sdk")

import globus_sdk
from globus_compute_sdk import Client
from globus_compute_sdk.sdk import executor as sdk_executor
from globus_sdk.testing import RegisteredResponse

from stembench.client.compute_functions import RegisteredFunctionExecutor
from stembench.client.lifeline import stop_executor
from stembench.client.orchestrate import RetryPolicy, evaluate
from stembench.client.remote_endpoints import remote_targets
from stembench.endpoints.requests import DatasetRef
from stembench.endpoints.shard import describe_dataset, evaluate_shard

BASE = "https://compute.api.globus.org"
ENDPOINT = "0b4e2bd4-3b3e-4f79-a5d5-8e2b5a1c6f11"
FUNCTION_ID = "9b1f9c7e-6a7d-4d0e-8a55-3c1a4f5e2d20"


class ComputeService:
    """The submit route of the Compute web service, with task groups owned by their creator.

    ``refusals`` are HTTP statuses answered, in order, to the next submissions.
    """

    def __init__(self, rsps: responses.RequestsMock, amqp_port: int) -> None:
        self.owners: dict[str, str] = {}  # task group -> the token that created it
        self.submissions: list[tuple[str, dict[str, Any], int]] = []
        self.refusals: list[int] = []
        self.lock = threading.Lock()
        self.answer = threading.Event()  # cleared: a submission waits until it is set
        self.answer.set()
        self.received = threading.Event()
        RegisteredResponse(service="compute", path=f"/v2/endpoints/{ENDPOINT}/status",
                           method="GET", json={"status": "online", "details": {}}
                           ).add(requests_mock=rsps)
        RegisteredResponse(service="compute", path="/v2/get_amqp_result_connection_url",
                           method="GET", json={
                               "queue_prefix": "",
                               "connection_url": f"amqp://u:p@127.0.0.1:{amqp_port}/"}
                           ).add(requests_mock=rsps)
        rsps.add_callback(responses.POST, re.compile(f"{BASE}/v3/endpoints/[^/]+/submit"),
                          callback=self._submit, content_type="application/json")

    def _submit(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.received.set()
        self.answer.wait(timeout=60)
        token = request.headers["Authorization"].split()[1]
        body = json.loads(request.body)
        with self.lock:
            status = self.refusals.pop(0) if self.refusals else 200
            group = body.get("task_group_id")
            if status == 200 and group is not None and self.owners.get(group) != token:
                status = 403
            self.submissions.append((token, body, status))
            if status != 200:
                return status, {}, json.dumps({"code": "REFUSED", "message": (
                    f"task group {group} refused" if status == 403 else "injected")})
            if group is None:
                group = str(uuid.uuid4())
                self.owners[group] = token
        tasks = {fid: [str(uuid.uuid4()) for _ in payloads]
                 for fid, payloads in body["tasks"].items()}
        return 200, {}, json.dumps({"request_id": str(uuid.uuid4()), "task_group_id": group,
                                    "endpoint_id": ENDPOINT, "tasks": tasks})


@pytest.fixture
def silent_amqp() -> Iterator[int]:
    """A port that accepts TCP connections and never speaks AMQP (results never come)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


@pytest.fixture
def service(silent_amqp: int) -> Iterator[ComputeService]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield ComputeService(rsps, silent_amqp)
        for executor in list(sdk_executor._REGISTERED_EXECUTORS.values()):
            executor.shutdown(wait=False, cancel_futures=True)
        for watcher in list(sdk_executor._RESULT_WATCHERS.values()):
            watcher.shutdown(wait=False, cancel_futures=True)


def user_client(token: str) -> Client:
    client = Client(authorizer=globus_sdk.AccessTokenAuthorizer(token), do_version_check=False)
    client._compute_web_client.v3.retry_config.max_retries = 0  # refusals are final
    return client


def sent(future: Any) -> Any:
    """Wait until the web service acknowledged ``future``'s task (or refused it)."""
    for _ in range(600):
        if future.task_id is not None or future.done():
            break
        time.sleep(0.05)
    return future


def submit_as(token: str) -> tuple[RegisteredFunctionExecutor, Any]:
    (target,) = remote_targets([ENDPOINT], client=user_client(token), function_id=FUNCTION_ID)
    executor = target.executor
    assert isinstance(executor, RegisteredFunctionExecutor)
    return executor, sent(executor.submit(describe_dataset, {"preset": "mini"}, "0.1.0"))


@pytest.mark.parametrize("order", ["one after the other", "at the same time"])
def test_each_users_executor_gets_its_own_task_group(service: ComputeService,
                                                     order: str) -> None:
    """Defect 1 of issue 22: user B's batch never carries user A's task group."""
    users = ["alice-token", "bob-token"]
    outcomes: dict[str, tuple[RegisteredFunctionExecutor, Any]] = {}
    if order == "one after the other":
        for user in users:
            outcomes[user] = submit_as(user)
    else:
        threads = [threading.Thread(target=lambda u=u: outcomes.__setitem__(u, submit_as(u)))
                   for u in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for user, (executor, future) in outcomes.items():
        assert not future.done(), future.exception()  # accepted, waiting for its result
        group = str(executor.inner.task_group_id)
        assert service.owners[group] == user
    assert [status for _, _, status in service.submissions] == [200, 200]
    assert all("task_group_id" not in body for _, body, _ in service.submissions)
    for executor, _ in outcomes.values():
        executor.shutdown(wait=False, cancel_futures=True)


def _run(target: Any, tmp: Path, deadline_s: float | None = None) -> Any:
    return evaluate("echo", results_path=tmp / "results.jsonl",
                    dataset=DatasetRef(cache_dir=str(tmp)), targets=[target],
                    image_ids=["img-0", "img-1"], shard_size=1, progress=False,
                    shard_function=evaluate_shard, identify=None, task_deadline_s=deadline_s,
                    retry=RetryPolicy(max_attempts=3, backoff_s=0.05))


@pytest.mark.parametrize("status", [400, 503])
def test_a_refused_batch_is_retried_on_a_new_executor_then_reported(
        service: ComputeService, tmp_path: Path, status: int) -> None:
    """Defect 2: a refused submission fails its shard only; the run goes on and reports."""
    (target,) = remote_targets([ENDPOINT], client=user_client("alice-token"),
                               function_id=FUNCTION_ID)
    service.refusals = [status] * 100
    outcome = _run(target, tmp_path)
    stop_executor(target.executor)
    assert outcome.n_finished == 0 and sorted(outcome.failed_shards) == sorted(
        outcome.shard_ids)
    assert all(reason.startswith(f"{ENDPOINT}: ComputeAPIError: HTTP {status}: injected; ")
               for reason in outcome.failed_shards.values()), outcome.failed_shards
    # every attempt of every shard reached the service: 2 shards x 3 attempts
    assert sum('"evaluate_shard"' in p for _, body, _ in service.submissions
               for ps in body["tasks"].values() for p in ps) == 6
    assert len(target.executor.retired) >= 2  # each stopped Executor was replaced


def test_a_shard_refused_once_is_sent_again_on_a_rebuilt_executor(
        service: ComputeService, tmp_path: Path) -> None:
    """Defect 2: after one 4xx the shard goes out again and is accepted."""
    (target,) = remote_targets([ENDPOINT], client=user_client("alice-token"),
                               function_id=FUNCTION_ID)
    service.refusals = [400]
    outcome = _run(target, tmp_path, deadline_s=1.0)  # no result ever comes: deadline
    stop_executor(target.executor)
    assert [s for _, _, s in service.submissions].count(200) >= 2
    assert all("task deadline" in r for r in outcome.failed_shards.values())
    assert target.executor.retired  # the stopped Executor was replaced


def test_abandoned_tasks_do_not_hold_the_process(service: ComputeService,
                                                 tmp_path: Path) -> None:
    """Defect 3: after the deadline, no result watcher still waits for the given-up tasks.

    The SDK's exit thread and the watcher's (non-daemon) stopper thread wait for every
    future a result watcher holds (sdk/executor.py:52-64, 1479-1488), so one left there
    keeps the client alive until the remote task ends.
    """
    (target,) = remote_targets([ENDPOINT], client=user_client("alice-token"),
                               function_id=FUNCTION_ID)
    outcome = _run(target, tmp_path, deadline_s=0.5)
    assert len(outcome.failed_shards) == 2
    group = target.executor.inner.task_group_id
    watcher = sdk_executor._RESULT_WATCHERS[group]
    assert watcher.get_open_futures()  # the given-up tasks are still watched
    stop_executor(target.executor)
    assert not watcher.get_open_futures() and group not in sdk_executor._RESULT_WATCHERS


def test_a_batch_sent_during_shutdown_does_not_hold_the_process(
        service: ComputeService) -> None:
    """Review item 6: the batch being POSTed at shutdown gets its watcher after shutdown.

    Its task group and result watcher appear when the answer comes (sdk/executor.py:1232,
    then ``_get_result_watcher``), after ``shutdown`` returned; that watcher would hold the
    SDK's exit thread (executor.py:52-64) until the remote task ends.
    """
    (target,) = remote_targets([ENDPOINT], client=user_client("alice-token"),
                               function_id=FUNCTION_ID)
    service.answer.clear()
    future = target.executor.submit(describe_dataset, {"preset": "mini"}, "0.1.0")
    assert service.received.wait(timeout=60)  # the POST is in flight
    answering = threading.Timer(0.3, service.answer.set)  # answers while we shut down
    answering.start()
    stop_executor(target.executor)
    target.executor.inner._task_submitter.join(timeout=60)
    answering.join()
    assert future.task_id is not None  # the batch was accepted: its task runs remotely
    assert not [w for w in sdk_executor._RESULT_WATCHERS.values() if w.get_open_futures()]


def test_a_refused_dataset_listing_is_retried_then_reported_in_one_line(
        service: ComputeService, tmp_path: Path) -> None:
    """Defect 2: the listing (and identity) calls are retried on a rebuilt Executor too."""
    from stembench.errors import StembenchError

    (target,) = remote_targets([ENDPOINT], client=user_client("alice-token"),
                               function_id=FUNCTION_ID)
    service.refusals = [400] * 100
    with pytest.raises(StembenchError) as caught:
        evaluate("echo", results_path=tmp_path / "r.jsonl", targets=[target], progress=False,
                 retry=RetryPolicy(max_attempts=3, backoff_s=0.05))
    stop_executor(target.executor)
    assert str(caught.value) == (f"{ENDPOINT}: the dataset listing failed 3 time(s), last: "
                                 "ComputeAPIError: HTTP 400: injected")
    assert len(service.submissions) == 3 and len(target.executor.retired) == 2
