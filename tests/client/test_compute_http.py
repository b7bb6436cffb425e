"""The HTTPS-only Globus Compute executor against a mocked web service (``responses``)."""

from __future__ import annotations

import json
import platform
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import responses
import stembench_faults as faults

pytest.importorskip("globus_compute_sdk")

import globus_sdk
from globus_compute_sdk import Client
from globus_compute_sdk.serialize import ComputeSerializer

from stembench.client.compute_http import (
    MAX_POLL_INTERVAL_S,
    PollingComputeExecutor,
    next_poll_interval,
)
from stembench.client.executors import RemoteTaskError, TaskTooLargeError
from stembench.client.orchestrate import RetryPolicy, Target, evaluate
from stembench.client.results_file import ResultsFile
from stembench.endpoints.requests import DatasetRef

BASE = "https://compute.api.globus.org"
ENDPOINT = "11111111-2222-3333-4444-555555555555"
REGISTER_URL = f"{BASE}/v3/functions"
SUBMIT_URL = f"{BASE}/v3/endpoints/{ENDPOINT}/submit"
STATUS_URL = f"{BASE}/v2/batch_status"
SERDE = ComputeSerializer()


def unpack(packed: str) -> list[Any]:
    """Deserialize each buffer of a packed SDK payload (function code, or args and kwargs)."""
    return [SERDE.deserialize(buffer) for buffer in SERDE.unpack_buffers(packed)]


def triple(x: int) -> dict[str, int]:
    """The remote function of the small cases."""
    return {"x": x, "tripled": 3 * x}


Script = Callable[[tuple[Any, ...]], list[dict[str, Any]]]


class FakeService:
    """The web service's routes; ``script(args)`` gives the statuses a task reports in turn."""

    def __init__(self, rsps: responses.RequestsMock, script: Script) -> None:
        self.script = script
        self.function_ids: list[str] = []
        self.registrations: list[dict[str, Any]] = []
        self.submissions: list[dict[str, Any]] = []
        self.task_args: dict[str, tuple[Any, ...]] = {}
        self.outcomes: dict[str, list[dict[str, Any]]] = {}
        self.polls: list[list[str]] = []
        rsps.add_callback(responses.POST, REGISTER_URL, callback=self._register)
        rsps.add_callback(responses.POST, SUBMIT_URL, callback=self._submit)
        rsps.add_callback(responses.POST, STATUS_URL, callback=self._status)
        rsps.add_callback(responses.GET, re.compile(f"{BASE}/v2/tasks/.+"), callback=self._task)

    def _register(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.registrations.append(json.loads(request.body))
        self.function_ids.append(str(uuid.uuid4()))
        return 200, {}, json.dumps({"function_uuid": self.function_ids[-1]})

    def _submit(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        self.submissions.append(body)
        tasks: dict[str, list[str]] = {}
        for function_id, payloads in body["tasks"].items():
            for payload in payloads:
                task_id = str(uuid.uuid4())
                args, _kwargs = unpack(payload)
                self.task_args[task_id] = args
                self.outcomes[task_id] = self.script(args)
                tasks.setdefault(function_id, []).append(task_id)
        reply = {"request_id": "r", "task_group_id": str(uuid.uuid4()), "endpoint_id": ENDPOINT,
                 "tasks": tasks}
        return 200, {}, json.dumps(reply)

    def _report(self, task_id: str) -> dict[str, Any]:
        queue = self.outcomes[task_id]
        return {"task_id": task_id, **(queue.pop(0) if len(queue) > 1 else queue[0])}

    def _status(self, request: Any) -> tuple[int, dict[str, str], str]:
        task_ids = json.loads(request.body)["task_ids"]
        self.polls.append(task_ids)
        results = {task_id: self._report(task_id) for task_id in task_ids}
        return 200, {}, json.dumps({"response": "batch", "results": results})

    def _task(self, request: Any) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps(self._report(request.url.rsplit("/", 1)[1]))


def success(value: Any) -> dict[str, Any]:
    """A finished task as batch_status reports it: the result serialized by the worker."""
    return {"status": "success", "result": SERDE.serialize(value), "completion_t": "1700000000"}


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def executor() -> Any:
    client = Client(authorizer=globus_sdk.AccessTokenAuthorizer("token"), do_version_check=False)
    pool = PollingComputeExecutor(ENDPOINT, client=client, poll_interval_s=0.01)
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


def test_function_registered_once_and_submit_body(rsps: responses.RequestsMock,
                                                  executor: PollingComputeExecutor) -> None:
    service = FakeService(rsps, lambda args: [success(triple(*args))])
    first = executor.submit(triple, 4)
    second = executor.submit(triple, 5)
    assert first.result(timeout=10) == {"x": 4, "tripled": 12}
    assert second.result(timeout=10) == {"x": 5, "tripled": 15}

    assert len(service.registrations) == 1
    body = service.registrations[0]
    assert body["function_name"] == "triple"
    assert body["serialized"] is True
    assert unpack(body["function_code"])[0](2) == {"x": 2, "tripled": 6}
    assert body["meta"]["python_version"] == platform.python_version()
    assert body["description"] == "The remote function of the small cases."

    (function_id,) = service.function_ids
    sent = [payload for s in service.submissions for payload in s["tasks"][function_id]]
    assert sorted(unpack(p)[0] for p in sent) == [(4,), (5,)]
    assert all(set(s["tasks"]) == {function_id} for s in service.submissions)
    assert all(s["create_queue"] is False for s in service.submissions)
    by_arg = {args: task_id for task_id, args in service.task_args.items()}
    assert (first.task_id, second.task_id) == (by_arg[(4,)], by_arg[(5,)])


def test_pending_then_success_returns_deserialized_result(
        rsps: responses.RequestsMock, executor: PollingComputeExecutor) -> None:
    value = {"x": 7, "tripled": 21, "nested": [1.5, None]}
    service = FakeService(rsps, lambda args: [{"status": "waiting-for-launch"},
                                              {"status": "running"}, success(value)])
    future = executor.submit(triple, 7)
    assert future.result(timeout=10) == value
    assert sum(future.task_id in ids for ids in service.polls) == 3  # two pending, then done


def test_failed_task_raises_remote_error_with_message(
        rsps: responses.RequestsMock, executor: PollingComputeExecutor) -> None:
    traceback = "Traceback (most recent call last):\nRuntimeError: injected failure"
    FakeService(rsps, lambda args: [{"status": "failed", "exception": traceback,
                                     "completion_t": "1700000000"}])
    future = executor.submit(triple, 1)
    with pytest.raises(RemoteTaskError, match="RuntimeError: injected failure") as info:
        future.result(timeout=10)
    assert future.task_id in str(info.value) and ENDPOINT in str(info.value)
    assert str(info.value).endswith(": RuntimeError: injected failure")  # its last line only


def test_rate_limited_poll_backs_off_then_succeeds(
        rsps: responses.RequestsMock, executor: PollingComputeExecutor,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stembench.client import compute_http

    waits: list[tuple[bool, float]] = []  # (rate limited, the wait chosen before the next poll)

    def recorded(current_s: float, *, base_s: float, rate_limited: bool) -> float:
        chosen = next_poll_interval(current_s, base_s=base_s, rate_limited=rate_limited)
        waits.append((rate_limited, chosen))
        return chosen

    monkeypatch.setattr(compute_http, "next_poll_interval", recorded)
    function_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
    rsps.add(responses.POST, REGISTER_URL, json={"function_uuid": function_id})
    rsps.add(responses.POST, SUBMIT_URL, json={"request_id": "r", "task_group_id": "g",
                                               "endpoint_id": ENDPOINT,
                                               "tasks": {function_id: [task_id]}})
    # the SDK retries a 429 itself (sleeping up to 15 s); turn that off so the 429 reaches
    # the executor at once, as it does in production after the SDK's retries run out
    executor.client._compute_web_client.v2.retry_config.max_retries = 0
    limited = {"code": "MaxRequestsExceeded", "message": "20 requests per 10 s"}
    for _ in range(2):
        rsps.add(responses.POST, STATUS_URL, json=limited, status=429)
    done = {"task_id": task_id, **success({"x": 2, "tripled": 6})}
    rsps.add(responses.POST, STATUS_URL, json={"response": "batch",
                                               "results": {task_id: done}})
    future = executor.submit(triple, 2)
    assert future.result(timeout=30) == {"x": 2, "tripled": 6}
    status_calls = [c for c in rsps.calls if c.request.url == STATUS_URL]
    assert [c.response.status_code for c in status_calls] == [429, 429, 200]
    # each 429 doubled the wait (base 0.01 s), and the next answered poll reset it
    limited_waits = [w for w in waits if w[0]]
    assert limited_waits == [(True, 0.02), (True, 0.04)]
    assert waits[waits.index((True, 0.04)) + 1] == (False, 0.01)


def test_next_poll_interval_doubles_caps_and_resets() -> None:
    assert next_poll_interval(2.0, base_s=2.0, rate_limited=True) == 4.0
    assert next_poll_interval(4.0, base_s=2.0, rate_limited=True) == 8.0
    assert next_poll_interval(40.0, base_s=2.0, rate_limited=True) == MAX_POLL_INTERVAL_S
    assert next_poll_interval(60.0, base_s=2.0, rate_limited=False) == 2.0


def test_oversized_task_rejected_before_any_request(
        rsps: responses.RequestsMock, executor: PollingComputeExecutor) -> None:
    with pytest.raises(TaskTooLargeError, match="over the 10485760-byte limit"):
        executor.submit(triple, "x" * (10 * 1024 * 1024))
    assert len(rsps.calls) == 0


def test_evaluate_runs_shards_through_polling_executor(
        tmp_path: Path, rsps: responses.RequestsMock, executor: PollingComputeExecutor) -> None:
    service = FakeService(rsps, lambda args: [{"status": "running"},
                                              success(faults.echo_shard(*args))])
    ids = ["img-0", "img-1", "img-2", "img-3"]
    outcome = evaluate("echo", results_path=tmp_path / "results.jsonl",
                       dataset=DatasetRef(cache_dir=str(tmp_path)),
                       targets=[Target(ENDPOINT, executor, max_in_flight=2)], image_ids=ids,
                       shard_size=2, retry=RetryPolicy(max_attempts=1, backoff_s=0.01),
                       progress=False, shard_function=faults.echo_shard, identify=None)
    assert outcome.complete and outcome.n_finished == 2, outcome.failed_shards
    records = ResultsFile(tmp_path / "results.jsonl").records()
    assert sorted(r["image_id"] for r in records) == ids
    assert {r["f1"] for r in records} == {1.0}
    assert len(service.registrations) == 1
    assert service.registrations[0]["function_name"] == "echo_shard"
    sent = sorted(tuple(args[0]["image_ids"]) for args in service.task_args.values())
    assert sent == [("img-0", "img-1"), ("img-2", "img-3")]
