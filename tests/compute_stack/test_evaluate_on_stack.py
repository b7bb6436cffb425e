"""``stembench evaluate --endpoint UUID`` on the local Globus Compute stack.

The client is the real ``stembench`` command (globus-compute-sdk's ``Executor`` and
``Client`` unchanged), the endpoint the real ``globus-compute-endpoint`` from the
directory ``stembench endpoint config slurm-gpu`` writes, its shards run in Slurm jobs;
only the Compute web service and Globus Auth are stand-ins (tests/support/compute_stack).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from compute_stack.endpoint import EndpointProcess
from compute_stack.plugin import ClientSide


def to_12_digits(value: Any) -> Any:
    """``value`` with every float rounded to 12 significant digits (nested lists, dicts)."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {key: to_12_digits(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_12_digits(item) for item in value]
    return value


def scored_images(results: Path) -> dict[str, Any]:
    """Per image: its error, score and coordinates (what a run measures, not how long).

    Float score fields are compared to 12 significant digits: the same computation on the
    endpoint's worker differs from the local one in the last binary digit of some sums
    (e.g. an RMS of 0.38043843327032356 against 0.3804384332703225); coordinates, counts,
    recall, precision and F1 are identical.
    """
    images = {}
    for line in results.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for image in record["images"]:
            images[image["image_id"]] = (image["error"], to_12_digits(image["score"]),
                                         image["coordinates"])
    return images


@pytest.mark.parametrize("model", ["atomap-like"])
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
    differing = {image: [field for field in remote_images[image][1] or {}
                         if (remote_images[image][1] or {}).get(field)
                         != (local_images[image][1] or {}).get(field)]
                 for image in remote_images if remote_images[image] != local_images[image]}
    assert not differing, f"{len(differing)} image(s) differ: {sorted(differing.items())[:3]}"
