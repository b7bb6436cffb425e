"""Faults on the remote path, each on the local Globus Compute stack.

Every fault must end the client with a one-line message (or recover), keep the shards that
finished, and leave no Slurm job or endpoint worker behind once the endpoint stops.

Work is certainly undone or running at the moment of a fault, however fast the machine:
the web-service stand-in holds shard tasks back (``hold_tasks``) and the ``gated`` model
(tests/support/stembench_slow_model.py) waits on the endpoint until the test opens its gate.
Each test prints how long the client took from the fault to its exit (``-s`` shows it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from compute_stack.endpoint import EndpointProcess
from compute_stack.plugin import ClientSide
from compute_stack.scores import differences, scored_images
from compute_stack.stack import ComputeStack
from compute_stack.waiting import wait_for
from stembench_slow_model import calls, gate_folder

from stembench.endpoints.expiry import CLOCK_SKEW_MARGIN_S

EVALUATE = ("evaluate", "--dataset", "mini", "--model", "atomap-like", "--no-report")
GATED = ("evaluate", "--dataset", "mini", "--model", "stembench_slow_model:gated",
         "--no-report")
EVERY_IMAGE = "stembench_slow_model:gated: 102 image(s) evaluated, 0 failed"
COUNTED = ("evaluate", "--dataset", "mini", "--model", "stembench_slow_model:counted",
           "--no-report", "--shard-size", "17")


def finished_shards(results: Path) -> list[str]:
    """Ids of the shards the results file holds as finished (a failed shard's line is not)."""
    if not results.exists():
        return []
    lines = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    return [line["shard_id"] for line in lines if line.get("ok")]


def communicate(process: subprocess.Popen[str], seconds: float) -> tuple[int, str, str]:
    """Exit code and output of ``process``; fails the test if it does not exit in time."""
    try:
        out, err = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the client did not exit within {seconds:.0f} s; its output:\n"
                    f"{out[-2000:]}\n{err[-2000:]}")
    return process.returncode, out, err


def running_client(process: subprocess.Popen[str]) -> Callable[[], bool]:
    """A check that fails the test with the client's output once the client has exited."""
    def check() -> bool:
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the client exited early ({process.returncode}):\n{out[-2000:]}\n"
                        f"{err[-3000:]}")
        return True
    return check


def shard_lines(results: Path) -> list[str]:
    """Shard id of every line of the results file, failed ones too, in order."""
    return [json.loads(line)["shard_id"] for line in
            results.read_text(encoding="utf-8").splitlines() if line.strip()]


class Gate:
    """The ``gated`` model's gate folder (shared with the endpoint's workers)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def close(self) -> None:
        (self.folder / "closed").touch()

    def open(self) -> None:
        (self.folder / "closed").unlink(missing_ok=True)

    def marks(self, kind: str) -> dict[str, str]:
        """``entered`` (name -> Slurm job id) or ``left`` (name -> how the wait ended)."""
        return {p.name.removeprefix(f"{kind}-"): p.read_text(encoding="utf-8")
                for p in self.folder.glob(f"{kind}-*")}


@pytest.fixture
def gate(endpoint_cache: Path) -> Iterator[Gate]:
    folder = gate_folder(endpoint_cache)
    folder.mkdir(exist_ok=True)
    os.chmod(folder, 0o777)  # the workers run as the endpoint's account
    for mark in folder.iterdir():
        mark.unlink()
    yield Gate(folder)
    (folder / "closed").unlink(missing_ok=True)


def assert_nothing_left(endpoint: EndpointProcess) -> None:
    """No Slurm job and no process of the endpoint's account remains after it stopped."""
    account = endpoint.account.pw_name
    wait_for(lambda: not [j for j in endpoint.stack.slurm.jobs() if j[2] == account]
             and not endpoint.processes(), "the endpoint's jobs and processes ending", 60)


def test_transient_5xx_on_submit_is_retried(
        slurm_endpoint: EndpointProcess, compute_client: ClientSide) -> None:
    stack = compute_client.stack
    injected = stack.compute.inject("submit", 503, times=2)
    code, out, err = communicate(compute_client.popen(
        *EVALUATE, "--endpoint", slurm_endpoint.endpoint_id, "--results", "results.jsonl"),
        600)
    assert injected.seen == 2
    assert code == 0, err[-3000:]
    assert "atomap-like: 102 image(s) evaluated, 0 failed" in out


@pytest.mark.parametrize("after", [0, 1], ids=["listing", "shard"])
def test_4xx_on_submit_fails_the_shard_not_the_run(
        after: int, slurm_endpoint: EndpointProcess, compute_client: ClientSide) -> None:
    """A 400 on the first submit (the dataset listing) or on a later one (a shard)."""
    stack = compute_client.stack
    injected = stack.compute.inject("submit", 400, times=1, after=after)
    code, out, err = communicate(compute_client.popen(
        *EVALUATE, "--endpoint", slurm_endpoint.endpoint_id, "--results", "results.jsonl"),
        600)
    assert injected.seen == 1
    assert code == 0, err[-3000:]
    assert "atomap-like: 102 image(s) evaluated, 0 failed" in out


def test_endpoint_stopped_mid_run_ends_the_client_with_one_line(
        slurm_endpoint: EndpointProcess, compute_client: ClientSide) -> None:
    """The stand-in holds every shard task after the first, so the endpoint stops with shards
    certainly undone, however fast the machine runs them. The client's status watch (every
    2 s here: ``--status-interval``) sees it offline and gives up its unfinished shards at
    once; nothing is sent to the stopped endpoint to record them, so their images stay
    without a result and the same command tries them again."""
    endpoint, compute = slurm_endpoint, compute_client.stack.compute
    results = compute_client.folder / "results.jsonl"
    held = compute.hold_tasks("evaluate_shard", after=1)
    try:
        client = compute_client.popen(*EVALUATE, "--endpoint", endpoint.endpoint_id,
                                      "--results", str(results), "--status-interval", "2")
        running = running_client(client)
        wait_for(lambda: running() and finished_shards(results), "a first finished shard")
        wait_for(lambda: running() and held.waiting, "a held shard")
        stopping = time.monotonic()
        endpoint.stop()
        before = finished_shards(results)
        code, out, err = communicate(client, 180)
        print(f"\n[fault endpoint stopped] endpoint.stop() -> client exit: "
              f"{time.monotonic() - stopping:.1f} s")
        assert_nothing_left(endpoint)
    finally:
        compute.release_tasks(send=False)
    assert code == 1, out[-2000:] + err[-3000:]
    assert before and set(before) <= set(finished_shards(results))
    assert shard_lines(results) == finished_shards(results)  # no failed shard recorded
    assert not [line for line in err.splitlines() if "Traceback" in line], err[-3000:]
    gone = [line for line in err.splitlines()
            if f"endpoint {endpoint.endpoint_id} went offline mid-run" in line]
    assert len(gone) == 1, err[-3000:]
    assert "image(s) have no result" in err and "run the same command" in err, err[-3000:]


def _lose_job(stack: ComputeStack, job_id: str, fault: str) -> None:
    """End Slurm job ``job_id`` by ``scancel``, or by Slurm at its walltime (lowered to one
    minute while it runs, as its owner or an administrator may)."""
    slurm = stack.slurm
    command = (["scancel", job_id] if fault == "scancel" else
               ["scontrol", "update", f"JobId={job_id}", "TimeLimit=1"])
    subprocess.run(command, env={**os.environ, **slurm.env}, check=True, timeout=30,
                   capture_output=True)
    state = {"scancel": "CANCELLED", "walltime": "TIMEOUT"}[fault]
    wait_for(lambda: (job_id, state) in {(j[0], j[1]) for j in slurm.history()},
             f"job {job_id} {state}", 150)


@pytest.mark.parametrize("fault", ["scancel", "walltime"])
def test_slurm_job_lost_mid_shard_loses_nothing(
        fault: str, slurm_endpoint: EndpointProcess, compute_client: ClientSide,
        gate: Gate) -> None:
    """The job of the block running a shard ends (cancelled, or past its walltime): the
    interchange takes its manager for lost after the heartbeat threshold (a few seconds on
    the stack) and the engine runs the shard again on a new block; nothing is lost."""
    stack = compute_client.stack
    results = compute_client.folder / "results.jsonl"
    held = stack.compute.hold_tasks("evaluate_shard", after=1)
    try:
        client = compute_client.popen(*GATED, "--shard-size", "17", "--endpoint",
                                      slurm_endpoint.endpoint_id, "--results", str(results))
        running = running_client(client)
        wait_for(lambda: running() and finished_shards(results), "a first finished shard")
        wait_for(lambda: running() and held.waiting, "a held shard")
        gate.close()
    finally:
        stack.compute.release_tasks()
    wait_for(lambda: running() and gate.marks("entered"),
             "a shard waiting at the gate on the endpoint")
    (job_id,) = set(gate.marks("entered").values())
    before = finished_shards(results)
    _lose_job(stack, job_id, fault)
    lost = time.monotonic()
    gate.open()
    code, out, err = communicate(client, 300)
    print(f"\n[fault {fault}] job {job_id} ended -> client exit: "
          f"{time.monotonic() - lost:.1f} s")
    assert code == 0, err[-3000:]
    assert EVERY_IMAGE in out, out[-2000:]
    assert set(before) <= set(finished_shards(results))
    assert sorted(shard_lines(results)) == sorted(set(shard_lines(results)))  # no duplicate
    assert len(shard_lines(results)) == 6
    assert job_id not in {job[0] for job in stack.slurm.jobs()}


def test_task_past_its_deadline_is_stopped_on_the_endpoint(
        slurm_endpoint: EndpointProcess, compute_client: ClientSide, gate: Gate) -> None:
    """The endpoint stops the task (GC_TASK_TIMEOUT, 90 % of --task-deadline) as well as the
    client giving up its future; the shard's next attempt finishes the run.

    Upstream stops a task by raising parsl's AppTimeout in the worker's task thread (the
    worker process then takes the next task): the gated model's wait must end with it.
    """
    stack = compute_client.stack
    results = compute_client.folder / "results.jsonl"
    gate.close()
    client = compute_client.popen(*GATED, "--shard-size", "102", "--task-deadline", "45",
                                  "--endpoint", slurm_endpoint.endpoint_id,
                                  "--results", str(results))
    running = running_client(client)
    wait_for(lambda: running() and gate.marks("left"), "the endpoint stopping the waiting shard",
             240)
    stopped = time.monotonic()
    gate.open()
    code, out, err = communicate(client, 240)
    print(f"\n[fault deadline] task stopped on the endpoint -> client exit: "
          f"{time.monotonic() - stopped:.1f} s")
    assert "AppTimeout" in gate.marks("left").values(), gate.marks("left")
    assert set(gate.marks("entered")) == set(gate.marks("left"))  # none still waiting
    reasons = [t.exception for t in stack.compute.tasks.values() if t.exception
               and "the endpoint's per-task limit (GC_TASK_TIMEOUT=40 s) stopped the shard "
               "after 0 of 102 images" in t.exception]
    assert len(reasons) == 1, [t.exception for t in stack.compute.tasks.values()]
    assert code == 0, err[-3000:]
    assert EVERY_IMAGE in out, out[-2000:]
    assert "Traceback" not in err


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_client_killed_mid_run_then_resumed(
        signal_name: str, slurm_endpoint: EndpointProcess, compute_client: ClientSide,
        gate: Gate) -> None:
    """Killed with shards still to run, the client exits; the same command resumes: every
    image once, the kept shard not run again."""
    stack = compute_client.stack
    results = compute_client.folder / "results.jsonl"
    command = (*GATED, "--shard-size", "17", "--endpoint", slurm_endpoint.endpoint_id,
               "--results", str(results))
    held = stack.compute.hold_tasks("evaluate_shard", after=1)
    try:
        client = compute_client.popen(*command)
        running = running_client(client)
        wait_for(lambda: running() and finished_shards(results), "a first finished shard")
        wait_for(lambda: running() and held.waiting, "a held shard")
        client.send_signal(getattr(signal, signal_name))
        killed = time.monotonic()
        code, out, err = communicate(client, 60)
        print(f"\n[fault {signal_name}] signal -> client exit: "
              f"{time.monotonic() - killed:.1f} s")
    finally:  # the abandoned shards run on the endpoint, as the service would send them
        stack.compute.release_tasks()
    kept = finished_shards(results)
    assert len(kept) == 1
    if signal_name == "SIGINT":
        assert code == 130, err[-3000:]
        assert ("Interrupted: finished shards are kept; run the same command to resume."
                in out), out[-2000:]
        assert "Traceback" not in err, err[-3000:]
    else:
        assert code == -signal.SIGKILL
    code, out, err = communicate(compute_client.popen(*command), 300)
    assert code == 0, err[-3000:]
    assert "5 shard(s) finished, 1 already done, 0 failed" in out, out[-2000:]
    assert EVERY_IMAGE in out, out[-2000:]
    assert sorted(shard_lines(results)) == sorted(set(finished_shards(results)))
    assert len(shard_lines(results)) == 6 and set(kept) <= set(shard_lines(results))


def test_a_copy_given_up_in_the_queue_does_no_work_when_it_runs_at_last(
        slurm_endpoint: EndpointProcess, compute_client: ClientSide, gate: Gate) -> None:
    """Issue 22: Globus Compute cannot cancel a task, and a shard still queued past the task
    deadline is sent again. The stand-in keeps every shard after the first in the queue (a
    busy cluster), the client's second copies too; once past their ``not_after_unix`` plus
    the clock margin, the first copies are sent to the endpoint while the client waits for
    the second ones: they stop before loading the model (the counted model records every
    call), their expired results are ignored, and the second copies finish the run: every
    shard once, one model call per image, scores as a local run's."""
    compute = compute_client.stack.compute
    results = compute_client.folder / "remote" / "results.jsonl"
    held = compute.hold_tasks("evaluate_shard", after=1)
    try:
        client = compute_client.popen(*COUNTED, "--task-deadline", "45", "--endpoint",
                                      slurm_endpoint.endpoint_id, "--results", str(results))
        running = running_client(client)
        wait_for(lambda: running() and len(held.waiting) == 10,
                 "5 shards held past their deadline and sent again (held too)", 300)
        first = dict(list(held.arguments().items())[:5])  # held in the order sent
        not_after = max(request["not_after_unix"] for _, (request,) in first.values())
        wait_for(lambda: running() and time.time() > not_after + CLOCK_SKEW_MARGIN_S,
                 "the first copies' time plus the margin (one clock: this host's)", 60)
        sent = time.time()
        assert compute.send_held(first) == 5
        wait_for(lambda: running() and all(compute.tasks[t].status == "success"
                                           for t in first), "the first copies' results", 120)
        answered = time.time()
        model_calls_before = len(calls(gate.folder.parent))
    finally:
        compute.release_tasks()
    code, out, err = communicate(client, 300)
    print(f"\n[expired copies] 5 first copies sent {sent - not_after:.1f} s past their "
          f"not_after_unix, all 5 expired results {answered - sent:.1f} s later; client exit "
          f"{time.time() - answered:.1f} s after that")

    from globus_compute_sdk.serialize import ComputeSerializer

    assert model_calls_before == 17  # the first shard's only: the late copies ran no model
    late = [ComputeSerializer().deserialize(compute.tasks[t].result) for t in first]
    assert all(r.get("expired") and not r["ok"] and r["images"] == [] for r in late), late
    assert all("before its first model call" in r["error"] for r in late), late
    assert not any("identity" in r or "model" in r for r in late)  # nothing was opened
    assert code == 0, err[-3000:]
    assert "6 shard(s) finished, 0 already done, 0 failed" in out, out[-2000:]
    assert len(calls(gate.folder.parent)) == 102  # one model call per image in all
    assert sorted(shard_lines(results)) == sorted(set(finished_shards(results)))
    assert len(shard_lines(results)) == 6
    local = compute_client.run(*COUNTED, "--results", "local/results.jsonl")
    assert local.returncode == 0, local.stderr[-3000:]
    found = differences(scored_images(results),
                        scored_images(compute_client.folder / "local" / "results.jsonl"))
    assert not found, f"{len(found)} difference(s): {found[:5]}"
