"""A slurm-gpu block checks that Slurm's GPUs for it are the devices its workers use.

parsl pins the workers of ``available_accelerators: N`` to ``CUDA_VISIBLE_DEVICES`` 0 to
N-1 (parsl/executors/high_throughput/process_worker_pool.py:737-742); without Slurm's
device fencing a job given GPUs 2 and 3 would use 0 and 1, another job's. The user template
is rendered by the endpoint package's own code for the user's options; its ``worker_init``
then runs in bash with the environment Slurm gives a batch job.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from endpoint_render import render_as_endpoint

from stembench.endpoints.endpoint_config import EndpointSettings, write_endpoint_directory

pytest.importorskip("globus_compute_endpoint")


def _worker_init(tmp_path: Path, gpus: int, **settings: Any) -> str:
    folder = tmp_path / "ep"
    write_endpoint_directory("slurm-gpu", folder, EndpointSettings(
        gpus=4, worker_init="echo worker-init-ran", **settings))
    provider = render_as_endpoint(folder, {"gpus": gpus}).engine.executor.provider
    return str(provider.worker_init)


def _job(worker_init: str, **slurm: str) -> subprocess.CompletedProcess[str]:
    """``worker_init`` as a batch job's script runs it, with what Slurm set."""
    return subprocess.run(["bash", "-c", worker_init], env={"PATH": "/usr/bin:/bin", **slurm},
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize(("gpus", "slurm"), [
    (2, {"CUDA_VISIBLE_DEVICES": "0,1", "SLURM_JOB_GPUS": "2,3"}),  # fenced: numbered from 0
    (1, {"CUDA_VISIBLE_DEVICES": "0", "SLURM_JOB_GPUS": "0"}),
    (4, {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}),
])
def test_a_fenced_allocation_passes_and_the_admins_commands_run(
        tmp_path: Path, gpus: int, slurm: dict[str, str]) -> None:
    ran = _job(_worker_init(tmp_path, gpus), **slurm)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "worker-init-ran\n"


@pytest.mark.parametrize(("gpus", "slurm", "seen"), [
    (2, {"CUDA_VISIBLE_DEVICES": "2,3", "SLURM_JOB_GPUS": "2,3"}, "=2,3 (SLURM_JOB_GPUS=2,3)"),
    (1, {"CUDA_VISIBLE_DEVICES": "1", "SLURM_JOB_GPUS": "1"}, "=1 (SLURM_JOB_GPUS=1)"),
    (2, {"CUDA_VISIBLE_DEVICES": "0"}, "=0 (SLURM_JOB_GPUS=)"),
    (1, {}, "=(unset) (SLURM_JOB_GPUS=)"),  # no device named: which GPUs are the job's?
])
def test_an_unfenced_allocation_ends_the_block_with_one_line(
        tmp_path: Path, gpus: int, slurm: dict[str, str], seen: str) -> None:
    ran = _job(_worker_init(tmp_path, gpus), **slurm)
    assert ran.returncode == 1 and ran.stdout == ""  # the admin's commands never ran
    (line,) = ran.stderr.splitlines()
    devices = ",".join(map(str, range(gpus)))
    assert line.startswith(f"stembench: Slurm gave this job GPUs CUDA_VISIBLE_DEVICES{seen}, "
                           f"not devices {devices}, which its workers are pinned to")
    assert "ConstrainDevices=yes" in line


def test_the_check_can_be_left_out(tmp_path: Path) -> None:
    """``--no-gpu-fence-check``, for a cluster whose GPUs no worker uses (the stack's)."""
    ran = _job(_worker_init(tmp_path, 2, gpu_fence_check=False),
               CUDA_VISIBLE_DEVICES="2,3")
    assert ran.returncode == 0 and ran.stdout == "worker-init-ran\n"


def test_the_workstation_and_pbs_templates_have_no_slurm_check(tmp_path: Path) -> None:
    for template in ("workstation-gpu", "pbs-gpu"):
        folder = tmp_path / template
        write_endpoint_directory(template, folder, EndpointSettings(gpus=2))
        assert "CUDA_VISIBLE_DEVICES" not in (folder / "user_config_template.yaml.j2"
                                              ).read_text()
