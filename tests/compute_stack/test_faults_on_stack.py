"""Faults on the remote path, each on the local Globus Compute stack.

Every fault must end the client with a one-line message (or recover), keep the shards that
finished, and leave no Slurm job or endpoint worker behind once the endpoint stops.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from compute_stack.endpoint import EndpointProcess
from compute_stack.plugin import ClientSide

EVALUATE = ("evaluate", "--dataset", "mini", "--model", "atomap-like", "--no-report")


def finished_shards(results: Path) -> list[str]:
    """Ids of the shards the results file holds as finished (a failed shard's line is not)."""
    if not results.exists():
        return []
    lines = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    return [line["shard_id"] for line in lines if line.get("ok")]


def wait_for(condition: Callable[[], object], what: str, seconds: float = 300) -> None:
    """Wait until ``condition()`` is true; fail naming ``what`` after ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} did not happen within {seconds:.0f} s")


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


def assert_nothing_left(endpoint: EndpointProcess) -> None:
    """No Slurm job and no process of the endpoint's account remains after it stopped."""
    account = endpoint.account.pw_name
    wait_for(lambda: not [j for j in endpoint.stack.slurm.jobs() if j[2] == account]
             and not endpoint.processes(), "the endpoint's jobs and processes ending", 60)


def test_slurm_job_cancelled_mid_run_loses_no_shard(
        slurm_endpoint: EndpointProcess, compute_client: ClientSide) -> None:
    stack, account = compute_client.stack, slurm_endpoint.account.pw_name
    results = compute_client.folder / "results.jsonl"
    client = compute_client.popen(*EVALUATE, "--endpoint", slurm_endpoint.endpoint_id,
                                  "--results", str(results))
    wait_for(lambda: finished_shards(results), "a first finished shard")
    running = [job[0] for job in stack.slurm.jobs() if job[2] == account]
    assert running, stack.slurm.history()
    for job_id in running:
        stack.slurm.run("scancel", job_id)
    before = finished_shards(results)
    code, out, err = communicate(client, 600)
    assert not set(running) & {job[0] for job in stack.slurm.jobs()}
    assert set(before) <= set(finished_shards(results))
    assert code == 0, err[-3000:]
    assert "atomap-like: 102 image(s) evaluated, 0 failed" in out


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
    certainly undone, however fast the machine runs them."""
    endpoint, compute = slurm_endpoint, compute_client.stack.compute
    results = compute_client.folder / "results.jsonl"
    held = compute.hold_tasks("evaluate_shard", after=1)
    try:
        client = compute_client.popen(*EVALUATE, "--endpoint", endpoint.endpoint_id,
                                      "--results", str(results), "--task-deadline", "20")
        running = running_client(client)
        wait_for(lambda: running() and finished_shards(results), "a first finished shard")
        wait_for(lambda: running() and held.waiting, "a held shard")
        endpoint.stop()
        before = finished_shards(results)
        assert_nothing_left(endpoint)
        code, out, err = communicate(client, 120)
    finally:
        compute.release_tasks(send=False)
    assert code == 1, err[-3000:]
    assert set(before) <= set(finished_shards(results))
    assert len(finished_shards(results)) < 102
    message = [line for line in err.splitlines() if "Traceback" in line]
    assert not message, err[-3000:]
    assert "failed" in out + err, out[-2000:] + err[-2000:]
