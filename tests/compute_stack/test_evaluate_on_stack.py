"""``stembench evaluate --endpoint UUID`` on the local Globus Compute stack.

The client is the real ``stembench`` command (globus-compute-sdk's ``Executor`` and
``Client`` unchanged), the endpoint the real ``globus-compute-endpoint`` from the
directory ``stembench endpoint config slurm-gpu`` writes, its shards run in Slurm jobs;
only the Compute web service and Globus Auth are stand-ins (tests/support/compute_stack).
"""

from __future__ import annotations

import pytest
from compute_stack.endpoint import EndpointProcess
from compute_stack.plugin import ClientSide
from compute_stack.scores import differences, scored_images


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
