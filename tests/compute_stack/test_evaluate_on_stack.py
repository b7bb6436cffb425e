"""``stembench evaluate --endpoint UUID`` on the local Globus Compute stack.

The client is the real ``stembench`` command (globus-compute-sdk's ``Executor`` and
``Client`` unchanged), the endpoint the real ``globus-compute-endpoint`` from the
directory ``stembench endpoint config slurm-gpu`` writes, its shards run in Slurm jobs;
only the Compute web service and Globus Auth are stand-ins (tests/support/compute_stack).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from compute_stack.endpoint import EndpointProcess
from compute_stack.plugin import ClientSide


def differences(remote: Any, local: Any, where: str = "") -> list[str]:
    """Where ``remote`` and ``local`` differ: floats by more than 1e-6, anything else at all.

    The same shard computed in the endpoint's worker and in a local worker gives the same
    coordinates (3 decimals, as stored), counts, recall, precision and F1; float statistics
    (RMS, mean offsets, in pixels or angstrom) differ by up to 3.4e-9 (an O2 RMS of
    0.4650827970477866 against 0.4650828004337237 px, measured on the mini preset): the
    worker processes differ (parsl's worker pool against a local spawn pool, each run to run
    stable), and ulp-level differences in numpy's reductions move the iterative Gaussian
    fits below the stored precision. 1e-6 is 1000 times below that precision.
    """
    if isinstance(remote, float) and isinstance(local, float):
        same = math.isclose(remote, local, rel_tol=0, abs_tol=1e-6) or (
            math.isnan(remote) and math.isnan(local))
        return [] if same else [f"{where}: {remote!r} != {local!r}"]
    if isinstance(remote, dict) and isinstance(local, dict) and remote.keys() == local.keys():
        return [d for key in remote for d in differences(remote[key], local[key],
                                                          f"{where}/{key}")]
    if isinstance(remote, list) and isinstance(local, list) and len(remote) == len(local):
        return [d for i, (a, b) in enumerate(zip(remote, local, strict=True))
                for d in differences(a, b, f"{where}[{i}]")]
    return [] if remote == local else [f"{where}: {remote!r} != {local!r}"]


def scored_images(results: Path) -> dict[str, Any]:
    """Per image: its error, score and coordinates (what a run measures, not how long)."""
    images = {}
    for line in results.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for image in record["images"]:
            images[image["image_id"]] = {"error": image["error"], "score": image["score"],
                                         "coordinates": image["coordinates"]}
    return images


@pytest.mark.parametrize("model", ["atomap-like", "atomsegnet"])
def test_evaluate_through_endpoint_and_slurm_scores_like_a_local_run(
        model: str, slurm_endpoint: EndpointProcess, compute_client: ClientSide) -> None:
    stack = compute_client.stack
    remote = compute_client.run("evaluate", "--endpoint", slurm_endpoint.endpoint_id,
                                "--dataset", "mini", "--model", model, "--results",
                                "remote/results.jsonl", "--no-report", timeout=600)
    assert remote.returncode == 0, remote.stderr[-3000:] + slurm_endpoint.log_tail()
    assert "0 already done, 0 failed" in remote.stdout
    assert f"{model}: 102 image(s) evaluated, 0 failed" in remote.stdout

    # every task went to the endpoint and came back over RabbitMQ from a Slurm job
    tasks = [t for t in stack.compute.tasks.values()
             if t.endpoint_id == slurm_endpoint.endpoint_id and t.status == "success"]
    assert len(tasks) >= 15
    assert any(job[2] == slurm_endpoint.account.pw_name for job in stack.slurm.history())

    local = compute_client.run("evaluate", "--dataset", "mini", "--model", model,
                               "--results", "local/results.jsonl", "--no-report")
    assert local.returncode == 0, local.stderr[-3000:]
    remote_images = scored_images(compute_client.folder / "remote" / "results.jsonl")
    local_images = scored_images(compute_client.folder / "local" / "results.jsonl")
    assert len(remote_images) == 102
    found = differences(remote_images, local_images)
    assert not found, f"{len(found)} difference(s): {found[:5]}"
