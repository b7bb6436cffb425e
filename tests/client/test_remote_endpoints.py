"""Remote evaluation as Globus Compute 4.19 runs it, with the web service mocked.

The SDK's own ``Client`` talks to ``responses``; routes come from ``globus_sdk.testing``
where it has them. Submitted tasks are executed by the endpoint package's own
``execute_task`` with the deserializer allowlist of a restricted endpoint, so the function
stembench registers and the arguments it sends go through the real Compute serializer.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
import stembench_faults as faults

pytest.importorskip("globus_compute_endpoint")

import globus_sdk
from globus_compute_common import messagepack
from globus_compute_common.messagepack.message_types import Task
from globus_compute_endpoint.engines.helper import execute_task
from globus_compute_sdk import Client
from globus_compute_sdk.serialize import ComputeSerializer, DillCode, PureSourceTextInspect
from globus_sdk.testing import RegisteredResponse, load_response
from globus_sdk.testing.data.compute.v2.get_endpoint import (
    DEFAULT_RESPONSE_DOC as ENDPOINT_DOCUMENT,
)

from stembench.client import compute_functions, orchestrate
from stembench.client.compute_functions import (
    RegisteredFunctionExecutor,
    ensure_function_id,
    register_function,
    stored_function_id,
)
from stembench.client.orchestrate import RetryPolicy, evaluate
from stembench.client.remote_endpoints import (
    EndpointOfflineError,
    parse_endpoint_options,
    remote_targets,
)
from stembench.client.results_file import ResultsFile
from stembench.endpoints import remote
from stembench.endpoints.endpoint_config import (
    MAX_GPUS,
    EndpointSettings,
    user_config_schema,
    write_endpoint_directory,
)
from stembench.endpoints.requests import DatasetRef
from stembench.errors import InputError, StembenchError

BASE = "https://compute.api.globus.org"
ENDPOINT = "0b4e2bd4-3b3e-4f79-a5d5-8e2b5a1c6f11"
FUNCTION_ID = "9b1f9c7e-6a7d-4d0e-8a55-3c1a4f5e2d20"
RESTRICTED = ["globus_compute_sdk.serialize.PureSourceTextInspect",
              "globus_compute_sdk.serialize.JSONData"]
IDS = ["img-0", "img-1", "img-2", "img-3"]


#: The schema a stembench slurm-gpu endpoint publishes, at its widest bounds.
HPC_SCHEMA = user_config_schema("slurm-gpu", EndpointSettings(gpus=MAX_GPUS))


def endpoint_status(rsps: responses.RequestsMock, state: str,
                    schema: dict[str, Any] | None = None) -> None:
    """The status route saying ``state``, and the metadata route publishing ``schema``.

    Routes and documents as ``globus_sdk.testing`` registers them (compute v2
    get_endpoint_status and get_endpoint); ``None`` publishes stembench's HPC schema.
    """
    RegisteredResponse(service="compute", path=f"/v2/endpoints/{ENDPOINT}/status",
                       method="GET", json={"status": state, "details": {}}
                       ).add(requests_mock=rsps)
    RegisteredResponse(service="compute", path=f"/v2/endpoints/{ENDPOINT}", method="GET",
                       json={**ENDPOINT_DOCUMENT, "uuid": ENDPOINT, "user_config_schema":
                             HPC_SCHEMA if schema is None else schema}
                       ).add(requests_mock=rsps)


class RestrictedEndpoint:
    """The web service plus an endpoint whose engine accepts only source text and JSON.

    ``hang(args)`` says whether a task never finishes (it stays pending forever). Results
    are serialized with the strategies the submission asks for, as the endpoint does
    (``execute_task``'s ``result_serializers``), unless ``honour_serializers`` is false.
    """

    def __init__(self, rsps: responses.RequestsMock, tmp: Path, *,
                 hang: Callable[[list[Any]], bool] = lambda args: False,
                 result_limit: int = 10 * 1024 * 1024, honour_serializers: bool = True,
                 schema: dict[str, Any] | None = None) -> None:
        self.tmp, self.hang, self.result_limit = tmp, hang, result_limit
        self.honour_serializers = honour_serializers
        self.serde = ComputeSerializer()
        self.code = "st\n" + f"{remote.ENTRY_NAME}:{remote.entry_source()}"
        self.submissions: list[dict[str, Any]] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        endpoint_status(rsps, "online", schema)
        rsps.add_callback(responses.POST, f"{BASE}/v3/endpoints/{ENDPOINT}/submit",
                          callback=self._submit)
        rsps.add_callback(responses.POST, f"{BASE}/v2/batch_status", callback=self._status)
        rsps.add_callback(responses.GET, re.compile(f"{BASE}/v2/tasks/.+"), callback=self._task)

    def _run(self, task_id: str, payload: str,
             result_serializers: list[str] | None) -> dict[str, Any]:
        buffers = self.serde.unpack_buffers(payload)
        args = self.serde.deserialize(buffers[0])
        if self.hang(args):
            return {"task_id": task_id, "status": "running"}
        task = messagepack.pack(Task(task_id=uuid.UUID(task_id),
                                     task_buffer=self.serde.pack_buffers([self.code, *buffers])))
        result = messagepack.unpack(execute_task(
            task, uuid.UUID(task_id), run_dir=str(self.tmp), task_deserializers=RESTRICTED,
            result_serializers=result_serializers, result_size_limit=self.result_limit))
        key = "exception" if result.is_error else "result"
        return {"task_id": task_id, "status": "failed" if result.is_error else "success",
                key: result.data, "completion_t": "1700000000"}

    def _submit(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        tasks: dict[str, list[str]] = {}
        with self.lock:
            self.submissions.append(body)
            for function_id, payloads in body["tasks"].items():
                for payload in payloads:
                    task_id = str(uuid.uuid4())
                    self.results[task_id] = self._run(
                        task_id, payload, body.get("result_serializers")
                        if self.honour_serializers else None)
                    tasks.setdefault(function_id, []).append(task_id)
        return 200, {}, json.dumps({"request_id": "r", "task_group_id": str(uuid.uuid4()),
                                    "endpoint_id": ENDPOINT, "tasks": tasks})

    def _status(self, request: Any) -> tuple[int, dict[str, str], str]:
        with self.lock:
            results = {t: self.results[t] for t in json.loads(request.body)["task_ids"]}
        return 200, {}, json.dumps({"response": "batch", "results": results})

    def _task(self, request: Any) -> tuple[int, dict[str, str], str]:
        with self.lock:
            return 200, {}, json.dumps(self.results[request.url.rsplit("/", 1)[1]])

    def sent_args(self) -> list[list[Any]]:
        return [self.serde.deserialize(self.serde.unpack_buffers(p)[0])
                for s in self.submissions for ps in s["tasks"].values() for p in ps]


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def client() -> Client:
    return Client(authorizer=globus_sdk.AccessTokenAuthorizer("token"), do_version_check=False)


@pytest.fixture(autouse=True)
def user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config" / "stembench.json"
    monkeypatch.setenv("STEMBENCH_CONFIG", str(path))
    return path


@pytest.fixture
def echo_operation(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """The endpoint's ``evaluate_shard`` operation runs a fast fake shard instead."""
    monkeypatch.setitem(remote.OPERATIONS, "evaluate_shard", faults.echo_shard)
    return faults.echo_shard


def _evaluate(targets: list[Any], tmp: Path, shard: Callable[..., Any], **options: Any) -> Any:
    return evaluate("echo", results_path=tmp / "results.jsonl",
                    dataset=DatasetRef(cache_dir=str(tmp)), targets=targets,
                    shard_size=1, progress=False, shard_function=shard, identify=None,
                    **{"retry": RetryPolicy(max_attempts=1, backoff_s=0.01), "image_ids": IDS,
                       **options})


def test_offline_endpoint_stops_before_anything_is_submitted(
        rsps: responses.RequestsMock, client: Client) -> None:
    endpoint_status(rsps, "offline")
    started = time.monotonic()
    with pytest.raises(EndpointOfflineError, match=f"{ENDPOINT} is offline; nothing was "
                                                   "submitted"):
        remote_targets([ENDPOINT], client=client, https_only=True)
    print(f"offline endpoint: stopped after {time.monotonic() - started:.3f} s")
    assert [c.request.method for c in rsps.calls] == ["GET"]  # no registration, no submit


def test_unknown_endpoint_is_a_clear_error(rsps: responses.RequestsMock, client: Client) -> None:
    client._compute_web_client.v2.retry_config.max_retries = 0
    rsps.add(responses.GET, f"{BASE}/v2/endpoints/{ENDPOINT}/status", status=403,
             json={"code": "ENDPOINT_ACCESS_FORBIDDEN", "reason": "not allowed"})
    with pytest.raises(EndpointOfflineError, match="status check refused \\(HTTP 403"):
        remote_targets([ENDPOINT], client=client, function_id=FUNCTION_ID)


def test_registration_once_per_version_and_kept(rsps: responses.RequestsMock, client: Client,
                                                user_config: Path) -> None:
    load_response(client._compute_web_client.v3.register_function, requests_mock=rsps)
    function_id = register_function(client, public=True)
    body = json.loads(rsps.calls[0].request.body)
    assert body["function_name"] == "stembench_task" and body["serialized"] is False
    assert body["function_code"] == remote.entry_source() and body["public"] is True
    assert stored_function_id() == function_id
    assert json.loads(user_config.read_text())["compute_functions"][
        compute_functions.__version__]["function_id"] == function_id
    assert ensure_function_id(client) == function_id
    assert len(rsps.calls) == 1  # the kept id is reused, nothing registered again


def test_chosen_strategies_round_trip_through_a_restricted_endpoint(tmp_path: Path) -> None:
    serde = compute_functions.compute_serializer()
    call = ["describe_identity", [{"preset": "mini"}, {"spec": "x"}, "9"]]
    payload = serde.pack_buffers([serde.serialize(call), serde.serialize({})])
    code = serde.pack_buffers([PureSourceTextInspect().serialize(remote.stembench_task)])
    restricted = ComputeSerializer(allowed_deserializer_types=RESTRICTED)
    function, args, kwargs = restricted.unpack_and_deserialize(
        serde.pack_buffers([*serde.unpack_buffers(code), *serde.unpack_buffers(payload)]))
    assert function.__name__ == "stembench_task" and kwargs == {}
    assert args == ["describe_identity", [{"preset": "mini"}, {"spec": "x"}, "9"]]
    with pytest.raises(InputError, match="unknown stembench operation"):
        function("rm_rf", [])
    pickled = ComputeSerializer().serialize(remote.stembench_task)  # the SDK default: DillCode
    assert pickled.startswith(DillCode.identifier)
    with pytest.raises(Exception, match="DillCode disabled by current configuration"):
        restricted.deserialize(pickled)


def test_shards_run_on_the_registered_function(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path,
        echo_operation: Callable[..., Any]) -> None:
    service = RestrictedEndpoint(rsps, tmp_path)
    (target,) = remote_targets([ENDPOINT], client=client,
                               options=["account=abc", "walltime=00:30:00", "gpus=2"],
                               https_only=True, function_id=FUNCTION_ID)
    assert isinstance(target.executor, RegisteredFunctionExecutor)
    outcome = _evaluate([target], tmp_path, echo_operation)
    target.executor.shutdown(wait=True)
    assert outcome.complete and outcome.n_finished == 4, outcome.failed_shards
    assert sorted(r["image_id"] for r in ResultsFile(tmp_path / "results.jsonl").records()) == IDS
    assert {fid for s in service.submissions for fid in s["tasks"]} == {FUNCTION_ID}
    assert all(s["user_endpoint_config"] == {"account": "abc", "walltime": "00:30:00",
                                             "gpus": 2} for s in service.submissions)
    assert sorted(a[0] for a in service.sent_args()) == ["evaluate_shard"] * 4


def test_failing_and_oversized_results_fail_their_shards_only(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def shard(request: dict[str, Any]) -> dict[str, Any]:
        if "img-0" in request["image_ids"]:
            raise RuntimeError("permanent failure")
        result = faults.echo_shard(request)
        if "img-1" in request["image_ids"]:
            result["padding"] = "x" * 8000
        return result

    monkeypatch.setitem(remote.OPERATIONS, "evaluate_shard", shard)
    RestrictedEndpoint(rsps, tmp_path, result_limit=6000)
    (target,) = remote_targets([ENDPOINT], client=client, https_only=True,
                               function_id=FUNCTION_ID)
    outcome = _evaluate([target], tmp_path, shard)
    target.executor.shutdown(wait=True)
    assert outcome.n_finished == 2 and len(outcome.failed_shards) == 2
    reasons = list(outcome.failed_shards.values())
    assert sum("MaxResultSizeExceeded" in r and "6000" in r for r in reasons) == 1
    assert sum("RuntimeError: permanent failure" in r for r in reasons) == 1
    kept = sorted(r["image_id"] for r in ResultsFile(tmp_path / "results.jsonl").records())
    assert kept == ["img-2", "img-3"]


def _older(request: dict[str, Any]) -> None:
    """Refuse a field the endpoint's older stembench lacks, as its requests module did."""
    from stembench.endpoints.requests import ShardRequest

    unknown = sorted(set(request) - (set(ShardRequest.__dataclass_fields__)
                                     - {"not_after_unix"}))
    if unknown:
        raise InputError(f"shard request: unknown field(s) {unknown}; expected some of [...]")


@pytest.mark.parametrize("features", [None, ["not_after_unix"]], ids=["older", "newer"])
def test_a_shards_time_goes_only_to_an_endpoint_whose_listing_says_it_knows_it(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, features: list[str] | None) -> None:
    """Read22b finding 1: an endpoint installed before ``not_after_unix`` (both sides say
    0.1.0) refused every shard and every failed shard's scoring. Its dataset listing lists
    no features: it gets neither field, runs every shard, and the user is warned once."""
    def listing(reference: dict[str, Any], client_version: str) -> dict[str, Any]:
        answer = {"dataset": {"name": "d", "version": "1", "manifest_sha256": None},
                  "images": [{"image_id": i} for i in IDS], "runtime": {}}
        return answer if features is None else {**answer, "features": features}

    def shard(request: dict[str, Any]) -> dict[str, Any]:
        if features is None:
            _older(request)
        if request["image_ids"] == ["img-3"]:
            raise RuntimeError("permanent failure")
        return faults.echo_shard(request)

    def failed(request: dict[str, Any], reason: str) -> dict[str, Any]:
        _older(request)
        return {**faults.echo_shard(request), "ok": False, "shard_failed": True,
                "error": reason}

    operations = {"describe_dataset": listing, "score_failed_shard": failed}
    run_operation = remote.run_operation  # what the endpoint runs (the client's side intact)
    monkeypatch.setattr(remote, "run_operation", lambda operation, arguments: operations[
        operation](*arguments) if operation in operations else run_operation(operation, arguments))
    monkeypatch.setitem(remote.OPERATIONS, "evaluate_shard", shard)
    monkeypatch.setattr(orchestrate, "evaluate_shard", shard)  # so failed shards are scored
    service = RestrictedEndpoint(rsps, tmp_path)
    (target,) = remote_targets([ENDPOINT], client=client, https_only=True,
                               function_id=FUNCTION_ID)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = _evaluate([target], tmp_path, shard, image_ids=None)
    target.executor.shutdown(wait=True)

    (reason,) = outcome.failed_shards.values()
    assert outcome.n_finished == 3 and reason.endswith("RuntimeError: permanent failure")
    records = ResultsFile(tmp_path / "results.jsonl").records()
    assert sorted(r["image_id"] for r in records) == IDS  # the failed shard's scored too
    shards = [args[0] for operation, args in service.sent_args()
              if operation == "evaluate_shard"]
    assert len(shards) == 4
    unstoppable = [str(w.message) for w in caught if "not_after_unix" in str(w.message)]
    if features is None:
        assert not any("not_after_unix" in request for request in shards)
        assert unstoppable == [  # once, one line
            f"{ENDPOINT}: its stembench does not say it understands a shard's "
            "'not_after_unix', so shards go there without it and a copy this client gives "
            "up on keeps running there to its end, until stembench is upgraded where the "
            "endpoint runs"]
    else:
        assert all("not_after_unix" in request for request in shards) and not unstoppable


def test_never_finishing_task_hits_its_deadline_and_a_resume_completes(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path,
        echo_operation: Callable[..., Any]) -> None:
    stuck = {"on": True}
    service = RestrictedEndpoint(
        rsps, tmp_path, hang=lambda args: stuck["on"] and args[1][0]["image_ids"] == ["img-2"])
    (target,) = remote_targets([ENDPOINT], client=client, https_only=True,
                               function_id=FUNCTION_ID)
    started = time.monotonic()
    first = _evaluate([target], tmp_path, echo_operation, task_deadline_s=1.0)
    print(f"never-finishing task: run returned after {time.monotonic() - started:.2f} s")
    assert first.n_finished == 3 and not first.complete
    (reason,) = first.failed_shards.values()
    assert reason == f"{ENDPOINT}: no result within 1 s (task deadline)"
    kept = sorted(r["image_id"] for r in ResultsFile(tmp_path / "results.jsonl").records())
    assert kept == ["img-0", "img-1", "img-3"]

    stuck["on"] = False  # the endpoint recovers: the same command finishes the run
    sent_before = len(service.sent_args())
    second = _evaluate([target], tmp_path, echo_operation, task_deadline_s=1.0)
    target.executor.shutdown(wait=True, cancel_futures=True)
    assert second.complete and (second.n_skipped, second.n_finished) == (3, 1)
    assert [a[1][0]["image_ids"] for a in service.sent_args()[sent_before:]] == [["img-2"]]


def test_listing_that_never_answers_stops_the_run(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path) -> None:
    RestrictedEndpoint(rsps, tmp_path, hang=lambda args: args[0] == "describe_dataset")
    (target,) = remote_targets([ENDPOINT], client=client, https_only=True,
                               function_id=FUNCTION_ID)
    with pytest.raises(StembenchError, match=r"no answer to the dataset listing within 0\.5 s"):
        evaluate("echo", results_path=tmp_path / "r.jsonl", targets=[target], progress=False,
                 identify=None, task_deadline_s=0.5)
    target.executor.shutdown(wait=True, cancel_futures=True)


def stops_when_hung(rsps: responses.RequestsMock, stopped: threading.Event) -> None:
    """The status route: online until ``stopped`` is set (when the endpoint stops)."""
    rsps.remove(responses.GET, f"{BASE}/v2/endpoints/{ENDPOINT}/status")
    rsps.add_callback(responses.GET, f"{BASE}/v2/endpoints/{ENDPOINT}/status",
                      callback=lambda request: (200, {}, json.dumps({
                          "status": "offline" if stopped.is_set() else "online",
                          "details": {}})))


def test_endpoint_offline_mid_run_fails_its_unfinished_shards_at_once(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path,
        echo_operation: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards after the first never finish and the endpoint goes offline: they fail with its
    one line long before their deadline, nothing is sent to it to record them, and the
    finished shard is kept."""
    monkeypatch.setattr(orchestrate, "evaluate_shard", echo_operation)  # records failures
    stopped = threading.Event()

    def hang(args: list[Any]) -> bool:
        if args[0] == "evaluate_shard" and args[1][0]["image_ids"] != ["img-0"]:
            stopped.set()
            return True
        return False

    service = RestrictedEndpoint(rsps, tmp_path, hang=hang)
    stops_when_hung(rsps, stopped)
    (target,) = remote_targets([ENDPOINT], client=client, https_only=True,
                               function_id=FUNCTION_ID, status_interval_s=0.05)
    outcome = _evaluate([target], tmp_path, echo_operation, task_deadline_s=30.0)
    target.executor.shutdown(wait=True, cancel_futures=True)
    assert outcome.n_finished == 1 and not outcome.complete
    assert set(outcome.failed_shards.values()) == {target.lost()}
    assert f"endpoint {ENDPOINT} went offline mid-run" in str(target.lost())
    assert len(outcome.failed_shards) == 3
    assert "score_failed_shard" not in [a[0] for a in service.sent_args()]
    records = ResultsFile(tmp_path / "results.jsonl").records()
    assert [r["image_id"] for r in records] == ["img-0"]
    assert not target.executor.watch._thread.is_alive()


def test_endpoint_offline_during_the_listing_stops_the_run_with_its_line(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path) -> None:
    stopped = threading.Event()
    RestrictedEndpoint(rsps, tmp_path, hang=lambda args: args[0] == "describe_dataset"
                       and not stopped.set())
    stops_when_hung(rsps, stopped)
    (target,) = remote_targets([ENDPOINT], client=client, https_only=True,
                               function_id=FUNCTION_ID, status_interval_s=0.05)
    with pytest.raises(StembenchError, match=f"endpoint {ENDPOINT} went offline mid-run"):
        evaluate("echo", results_path=tmp_path / "r.jsonl", targets=[target], progress=False,
                 identify=None, task_deadline_s=30.0)
    target.executor.shutdown(wait=True, cancel_futures=True)


def test_an_executor_that_cannot_be_built_leaves_no_status_watch(
        rsps: responses.RequestsMock, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's own Executor refuses to be built (here an argument it does not know): no
    status-watch thread is left polling with the user's token."""
    import globus_compute_sdk

    endpoint_status(rsps, "online")
    monkeypatch.setattr(globus_compute_sdk, "Executor", functools.partial(
        globus_compute_sdk.Executor, unknown_option=1))
    before = set(threading.enumerate())
    with pytest.raises(TypeError, match="'unknown_option' is an invalid argument"):
        remote_targets([ENDPOINT], client=client, function_id=FUNCTION_ID,
                       status_interval_s=60.0)
    assert [t.name for t in threading.enumerate()
            if t not in before and t.name == "stembench-endpoint-watch"] == []


def test_sdk_executor_gets_port_options_and_serializer(
        rsps: responses.RequestsMock, client: Client) -> None:
    endpoint_status(rsps, "online")
    (target,) = remote_targets([ENDPOINT], client=client, amqp_port=443,
                               options={"account": "abc"},
                               function_id=FUNCTION_ID)
    inner = target.executor.inner
    try:
        assert type(inner).__name__ == "Executor"
        assert (inner.amqp_port, inner.user_endpoint_config, inner.endpoint_id) == (
            443, {"account": "abc"}, uuid.UUID(ENDPOINT))
        assert type(inner.serializer.data_serializer).__name__ == "JSONData"
        assert inner.result_serializers == [remote.DATA_STRATEGY]
    finally:
        inner.shutdown(wait=False, cancel_futures=True)
    with pytest.raises(InputError, match="amqp port must be 443, 5671 or 5672"):
        remote_targets([ENDPOINT], client=client, amqp_port=8080, function_id=FUNCTION_ID)


def test_endpoint_options_are_checked_before_submission(tmp_path: Path) -> None:
    assert parse_endpoint_options(["gpus=2", "partition=debug"], schema=HPC_SCHEMA) == {
        "gpus": 2, "partition": "debug"}
    for pairs, message in [(["gpus=0"], "less than the minimum"),
                           (["walltime=30min"], "does not match"),
                           (["worker_init=curl x | sh"], "Additional properties"),
                           (["account"], "expected KEY=VALUE"),
                           (["gpus=1", "gpus=2"], "given twice")]:
        with pytest.raises(InputError, match=message):
            parse_endpoint_options(pairs, schema=HPC_SCHEMA)
    write_endpoint_directory("workstation-gpu", tmp_path, EndpointSettings(gpus=2))
    schema = tmp_path / "user_config_schema.json"
    assert parse_endpoint_options(["gpus=2"], schema=schema) == {"gpus": 2}
    with pytest.raises(InputError, match="Additional properties"):
        parse_endpoint_options(["account=abc"], schema=schema)
    with pytest.raises(InputError, match="greater than the maximum"):
        parse_endpoint_options(["gpus=3"], schema=schema)


def test_function_command_shows_and_adopts_the_id(user_config: Path) -> None:
    from typer.testing import CliRunner

    from stembench.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["endpoint", "function"])
    assert missing.exit_code == 1 and "--register" in missing.output
    adopted = runner.invoke(app, ["endpoint", "function", "--use", FUNCTION_ID.upper()])
    assert adopted.exit_code == 0 and adopted.stdout.splitlines()[0] == FUNCTION_ID
    shown = runner.invoke(app, ["endpoint", "function"])
    assert shown.stdout.splitlines()[0] == FUNCTION_ID and str(user_config) in shown.output


def test_evaluate_refuses_bad_options_before_any_request(rsps: responses.RequestsMock,
                                                        tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from stembench.cli import app

    schema = tmp_path / "user_config_schema.json"
    schema.write_text(json.dumps(HPC_SCHEMA))
    answer = CliRunner().invoke(app, ["evaluate", "--model", "log-blob", "--endpoint", ENDPOINT,
                                      "--endpoint-option", "walltime=forever",
                                      "--endpoint-schema", str(schema)])
    assert isinstance(answer.exception, InputError)
    assert "endpoint option walltime: 'forever' does not match" in str(answer.exception)
    assert len(rsps.calls) == 0


def test_real_shards_of_a_real_model_through_the_restricted_endpoint(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path,
        mini_dataset_path: Path) -> None:
    """log-blob on the mini dataset: listing, model identity and shards, all as JSON."""
    RestrictedEndpoint(rsps, tmp_path)
    (target,) = remote_targets([ENDPOINT], client=client, https_only=True,
                               function_id=FUNCTION_ID)
    dataset = DatasetRef(source="path", path=str(mini_dataset_path))
    outcome = evaluate("log-blob", results_path=tmp_path / "results.jsonl", dataset=dataset,
                       targets=[target], image_ids=None, shard_size=51, progress=False)
    target.executor.shutdown(wait=True)
    assert outcome.complete and outcome.n_shards == 2, outcome.failed_shards
    records = ResultsFile(tmp_path / "results.jsonl").records()
    assert len(records) == 102 and {(r["model"], r["framework"]) for r in records} == {
        ("log-blob", "classical")}
    # each record is the score of log-blob's own positions on that image, as computed here
    from stembench.dataset_publish.storage.stembench_layout import open_dataset
    from stembench.endpoints.models.registry import load_model
    from stembench.endpoints.shard_scoring import reported_coordinates, score_prediction

    model = load_model("log-blob")
    with open_dataset(mini_dataset_path) as opened:
        for record in records:
            image = opened[record["image_id"]]
            here = score_prediction(image, reported_coordinates(
                model.locate(image.image, image.pixel_size))).to_dict()
            assert {k: record[k] for k in ("tp", "fp", "fn", "f1", "rms_px")} == {
                k: here[k] for k in ("tp", "fp", "fn", "f1", "rms_px")}, record["image_id"]
    assert sum(r["tp"] for r in records) > 0



def test_https_only_results_come_back_as_json(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path,
        echo_operation: Callable[..., Any]) -> None:
    """``--https-only`` asks the endpoint for JSON results (defect 5 of issue 22)."""
    from globus_compute_sdk.serialize import JSONData

    service = RestrictedEndpoint(rsps, tmp_path)
    (target,) = remote_targets([ENDPOINT], client=client, https_only=True,
                               function_id=FUNCTION_ID)
    outcome = _evaluate([target], tmp_path, echo_operation)
    target.executor.shutdown(wait=True)
    assert outcome.complete, outcome.failed_shards
    assert all(s["result_serializers"] == [remote.DATA_STRATEGY] for s in service.submissions)
    stored = [r["result"] for r in service.results.values()]
    assert len(stored) == 4 and all(r.startswith(JSONData.identifier) for r in stored)


def test_a_pickled_result_is_refused_never_unpickled(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path,
        echo_operation: Callable[..., Any]) -> None:
    """An endpoint that pickles results anyway: every shard fails, nothing is unpickled."""
    from globus_compute_sdk.serialize import DillDataBase64

    service = RestrictedEndpoint(rsps, tmp_path, honour_serializers=False)
    (target,) = remote_targets([ENDPOINT], client=client, https_only=True,
                               function_id=FUNCTION_ID)
    outcome = _evaluate([target], tmp_path, echo_operation)
    target.executor.shutdown(wait=True)
    assert all(r["result"].startswith(DillDataBase64.identifier)
               for r in service.results.values())
    assert outcome.n_finished == 0 and len(outcome.failed_shards) == 4
    assert all("Result Object Deserialization" in r for r in outcome.failed_shards.values())


def test_a_numeric_looking_string_option_stays_a_string() -> None:
    """Defect 6: ``account=12345`` is a string where the schema says string."""
    assert parse_endpoint_options(["account=12345", "gpus=2"], schema=HPC_SCHEMA) == {
        "account": "12345", "gpus": 2}
    with pytest.raises(InputError, match="'lots' is not of type 'integer'"):
        parse_endpoint_options(["gpus=lots"], schema=HPC_SCHEMA)


FOREIGN_SCHEMA = {"type": "object", "additionalProperties": False, "properties": {
    "queue": {"type": "string"}, "nodes": {"type": "integer", "minimum": 1}}}


def test_options_are_checked_against_the_schema_the_endpoint_publishes(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path,
        echo_operation: Callable[..., Any]) -> None:
    """Defect 6: without --endpoint-schema, a non-stembench endpoint's own schema decides."""
    service = RestrictedEndpoint(rsps, tmp_path, schema=FOREIGN_SCHEMA)
    with pytest.raises(InputError, match="'lots' is not of type 'integer'"):
        remote_targets([ENDPOINT], client=client, options=["nodes=lots"], https_only=True,
                       function_id=FUNCTION_ID)
    (target,) = remote_targets([ENDPOINT], client=client, options=["queue=7", "nodes=2"],
                               task_timeout_s=30.5, https_only=True, function_id=FUNCTION_ID)
    outcome = _evaluate([target], tmp_path, echo_operation)
    target.executor.shutdown(wait=True)
    assert outcome.complete, outcome.failed_shards
    # its schema has no task_timeout_s: nothing the endpoint would refuse is added
    assert all(s["user_endpoint_config"] == {"queue": "7", "nodes": 2}
               for s in service.submissions)


def test_an_endpoint_without_a_schema_gets_the_options_unchecked_with_a_warning(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path) -> None:
    RestrictedEndpoint(rsps, tmp_path, schema={})
    with pytest.warns(UserWarning, match="publishes no option schema: options \\['walltime'\\] "
                                         "are sent unchecked"):
        (target,) = remote_targets([ENDPOINT], client=client, options=["walltime=forever"],
                                   https_only=True, function_id=FUNCTION_ID)
    assert target.executor.inner.user_endpoint_config == {"walltime": "forever"}
    target.executor.shutdown(wait=True)


def test_the_task_deadline_becomes_the_endpoints_own_limit(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path,
        echo_operation: Callable[..., Any]) -> None:
    """Defect 3: a stembench endpoint gets task_timeout_s (its GC_TASK_TIMEOUT)."""
    service = RestrictedEndpoint(rsps, tmp_path)
    (target,) = remote_targets([ENDPOINT], client=client, options=["account=12345"],
                               task_timeout_s=30.5, https_only=True, function_id=FUNCTION_ID)
    outcome = _evaluate([target], tmp_path, echo_operation, task_deadline_s=30.5)
    target.executor.shutdown(wait=True)
    assert outcome.complete, outcome.failed_shards
    # strictly shorter than the client's deadline (90 %, whole seconds): the endpoint stops
    # the task before the client gives it up and sends a duplicate
    assert all(s["user_endpoint_config"] == {"account": "12345", "task_timeout_s": 27}
               for s in service.submissions)


def test_a_network_error_in_the_status_check_is_one_line(rsps: responses.RequestsMock,
                                                         client: Client) -> None:
    """Defect 7: no traceback when the Compute service cannot be reached."""
    import requests

    client._compute_web_client.v2.retry_config.max_retries = 0
    rsps.add(responses.GET, f"{BASE}/v2/endpoints/{ENDPOINT}/status",
             body=requests.ConnectionError("Name or service not known"))
    with pytest.raises(EndpointOfflineError) as caught:
        remote_targets([ENDPOINT], client=client, function_id=FUNCTION_ID)
    message = str(caught.value)
    assert "\n" not in message and message == (
        f"Globus Compute endpoint {ENDPOINT}: cannot reach the Globus Compute service to "
        "check it (GlobusConnectionError); check this machine's network and retry")


def test_twins_are_rendered_and_scored_on_the_restricted_endpoint(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``assess --endpoint``: the twin operation and the shards go through the real SDK and
    the endpoint's own task execution, as JSON, and the twins are written on the endpoint."""
    import numpy as np

    from stembench.client.assess.twin.score import ModelChoice, score_on_twins
    from stembench.dataset_publish.simulate.twin import TwinModel
    from stembench.dataset_publish.simulate.twin_plan import twin_plan

    monkeypatch.setenv("STEMBENCH_TWIN_DIR", str(tmp_path / "endpoint-twins"))
    endpoint = RestrictedEndpoint(rsps, tmp_path)
    (target,) = remote_targets([ENDPOINT], client=client, https_only=True,
                               function_id=FUNCTION_ID)
    grid = np.arange(5.0, 95.0, 10.0)
    xx, yy = np.meshgrid(grid, grid)
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    model = TwinModel((96, 96), 0.2, xy, np.ones(len(xy)), np.full(len(xy), 1.8),
                      np.full((2, 2), 0.1), 0.002, 1e-4, name="square")
    plan = twin_plan(model, n_twins=2, series=False)
    scores = score_on_twins(model, plan, [ModelChoice("log-blob")], targets=[target],
                            results_dir=tmp_path / "results")
    target.executor.shutdown(wait=True)
    assert Path(scores.dataset_path).parent == tmp_path / "endpoint-twins"
    assert endpoint.sent_args()[0][0] == "build_twin_dataset"
    records = scores.records["log-blob"]
    assert sorted(r["image_id"] for r in records) == ["twin-0", "twin-1"]
    assert all(r["f1"] > 0.95 and not r["failed"] for r in records)


def _assess_app(monkeypatch: pytest.MonkeyPatch, client: Client, tmp_path: Path) -> Any:
    """``stembench assess`` with this client as the user's Compute login and log-blob alone."""
    import globus_compute_sdk
    import numpy as np

    from stembench.cli import app
    from stembench.client.assess.twin import command
    from stembench.dataset_publish.simulate.twin import TwinModel, TwinVariant, render_twin

    monkeypatch.setattr(globus_compute_sdk, "Client", lambda *args, **kwargs: client)
    monkeypatch.setattr(command, "default_models", lambda: (["log-blob"], []))
    monkeypatch.setenv("STEMBENCH_TWIN_DIR", str(tmp_path / "endpoint-twins"))
    compute_functions.use_function_id(FUNCTION_ID)
    grid = np.arange(4.0, 95.0, 10.0)
    xx, yy = np.meshgrid(grid, grid)
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    model = TwinModel((96, 96), 0.2, xy, np.ones(len(xy)), np.full(len(xy), 1.8),
                      np.full((2, 2), 0.1), 0.002, 1e-4, name="square")
    np.save(tmp_path / "square.npy", render_twin(model, TwinVariant("r", "reference", 0, 7)).image)
    return app


def test_assess_on_an_endpoint_sends_evaluates_endpoint_options(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the command: --endpoint-option and --task-deadline reach every task (the
    render, the identity, the shards) as evaluate sends them: one user endpoint, its limit."""
    from typer.testing import CliRunner

    from stembench.client.assess.twin import score

    app = _assess_app(monkeypatch, client, tmp_path)
    endpoint = RestrictedEndpoint(rsps, tmp_path)
    deadlines: list[float | None] = []  # the client's own deadline, as evaluate keeps it
    real = score.evaluate_models
    monkeypatch.setattr(score, "evaluate_models", lambda *args, **kwargs: (
        deadlines.append(kwargs["task_deadline_s"]), real(*args, **kwargs))[1])
    answer = CliRunner().invoke(app, [
        "assess", str(tmp_path / "square.npy"), "--pixel-size", "0.2", "--twins", "1",
        "--out", str(tmp_path / "out"), "--endpoint", ENDPOINT, "--https-only",
        "--endpoint-option", "account=12345", "--task-deadline", "30.5"])
    assert answer.exit_code == 0, answer.output
    assert endpoint.sent_args()[0][0] == "build_twin_dataset"
    assert len(endpoint.submissions) >= 3
    assert all(s["user_endpoint_config"] == {"account": "12345", "task_timeout_s": 27}
               for s in endpoint.submissions)
    twin = json.loads((tmp_path / "out" / "square_assess.json").read_text())["twin"]
    assert [p["model"] for p in twin["predictions"]] == ["log-blob"]
    assert deadlines == [30.5]


@pytest.mark.parametrize("flags, message", [
    (["--endpoint-option", "walltime=forever", "--endpoint-schema", "SCHEMA"],
     "endpoint option walltime: 'forever' does not match"),
    (["--amqp-port", "1234"], "amqp port must be 443, 5671 or 5672, got 1234")])
def test_assess_checks_endpoint_options_as_evaluate_does(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, flags: list[str], message: str) -> None:
    from typer.testing import CliRunner

    app = _assess_app(monkeypatch, client, tmp_path)
    schema = tmp_path / "user_config_schema.json"
    schema.write_text(json.dumps(HPC_SCHEMA))
    answer = CliRunner().invoke(app, [
        "assess", str(tmp_path / "square.npy"), "--pixel-size", "0.2", "--out",
        str(tmp_path / "out"), "--endpoint", ENDPOINT,
        *[str(schema) if f == "SCHEMA" else f for f in flags]])
    assert isinstance(answer.exception, InputError), answer.output
    assert message in str(answer.exception)
    assert len(rsps.calls) == 0


def test_an_endpoint_with_an_older_stembench_is_told_to_upgrade(
        rsps: responses.RequestsMock, client: Client, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its registered function answers "unknown stembench operation" for the twin render."""
    import numpy as np

    from stembench.client.assess.twin.score import ModelChoice, score_on_twins
    from stembench.dataset_publish.simulate.twin import TwinModel
    from stembench.dataset_publish.simulate.twin_plan import twin_plan

    older = {name: f for name, f in remote.OPERATIONS.items() if "twin" not in name}

    def older_run_operation(operation: str, arguments: list[Any]) -> Any:
        """The endpoint's run_operation as a stembench from before assess has it."""
        if operation not in older:
            raise InputError(f"unknown stembench operation {operation!r}; known: "
                             f"{sorted(older)}")
        return older[operation](*arguments)

    monkeypatch.setattr(remote, "run_operation", older_run_operation)
    RestrictedEndpoint(rsps, tmp_path)
    (target,) = remote_targets([ENDPOINT], client=client, https_only=True,
                               function_id=FUNCTION_ID)
    xy = np.array([[10.0, 10.0], [30.0, 10.0]])
    model = TwinModel((48, 48), 0.2, xy, np.ones(2), np.full(2, 1.8), np.full((2, 2), 0.1),
                      0.002, 1e-4, name="pair")
    with pytest.raises(StembenchError) as caught:
        score_on_twins(model, twin_plan(model, n_twins=1, series=False),
                       [ModelChoice("log-blob")], targets=[target],
                       results_dir=tmp_path / "results")
    target.executor.shutdown(wait=True)
    line = str(caught.value)
    assert "unknown stembench operation 'build_twin_dataset'" in line
    assert "upgrade stembench where the endpoint runs" in line and "\n" not in line
