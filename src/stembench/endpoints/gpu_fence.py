"""The check a Slurm block makes that its GPUs are the devices its workers are pinned to.

parsl turns ``available_accelerators: N`` into the names ``"0"`` to ``"N-1"`` and sets each
worker's ``CUDA_VISIBLE_DEVICES`` to one of them (parsl/executors/high_throughput/
executor.py:313-315, process_worker_pool.py:737-742): device numbers as the block's
processes see them. Those are the job's own GPUs only where Slurm fences devices
(``ConstrainDevices=yes`` in cgroup.conf), and Slurm then numbers the job's GPUs from 0 in
``CUDA_VISIBLE_DEVICES``. Without fencing, a job given GPUs 2 and 3 sees
``CUDA_VISIBLE_DEVICES=2,3`` and its workers would use GPUs 0 and 1, another job's.

Passing Slurm's ids to parsl instead is not possible: the endpoint renders the user
template (and so ``available_accelerators``) before Slurm places the block. So the block's
``worker_init`` checks, before anything else, that ``CUDA_VISIBLE_DEVICES`` as Slurm set it
is exactly ``0,...,N-1``, and otherwise ends the job with one line on its stderr, which
parsl's block error handler puts in the error its tasks fail with.
"""

from __future__ import annotations

import json

__all__ = ["fence_line"]

#: The shell check; ``@DEVICES@`` becomes ``0,1,...,N-1`` when the endpoint renders it.
FENCE_CHECK = (
    'G="${CUDA_VISIBLE_DEVICES-(unset)}"; [ "$G" = "@DEVICES@" ] || { echo "stembench: '
    "Slurm gave this job GPUs CUDA_VISIBLE_DEVICES=$G (SLURM_JOB_GPUS=${SLURM_JOB_GPUS-}), "
    "not devices @DEVICES@, which its workers are pinned to: they would use other jobs' "
    'GPUs; the cluster must fence GPUs (ConstrainDevices=yes in cgroup.conf)" >&2; exit 1; }')


def fence_line() -> str:
    """:data:`FENCE_CHECK` as text inside a YAML double-quoted ``worker_init``, then a newline.

    The device list is left to the endpoint's own rendering (``{{ n_gpus }}``, the GPUs the
    user asked for).
    """
    devices = "{{ range(n_gpus) | join(',') }}"
    return json.dumps(FENCE_CHECK)[1:-1].replace("@DEVICES@", devices) + "\\n"
