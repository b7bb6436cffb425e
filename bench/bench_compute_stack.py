"""Shards through Globus Compute (endpoint + Slurm) against local workers, on the same shards.

Starts the local Globus Compute stack of the tests (tests/support/compute_stack: real
RabbitMQ, one-node Slurm and ``globus-compute-endpoint``; stand-ins for the Compute web
service and Globus Auth), then times the ``stembench evaluate`` command on the ``mini``
preset with ``--model atomap-like``:

* local: ``--workers W`` (local processes), ``--repeats`` times;
  both with ``--shard-size`` (the same shards);
* remote: ``--endpoint UUID --endpoint-option gpus=W`` (W workers in one Slurm job), the
  first run cold (the user endpoint and its Slurm job start), the others warm.

Reported: wall time per run, shards per minute, per-shard overhead of the remote path
(``(remote - local) / shards``, medians), and the time from the first task submitted to
the first result received, as the web-service stand-in records them. Needs root (it
starts Slurm and RabbitMQ). Run from the repository root::

    .venv/bin/python bench/bench_compute_stack.py --repeats 3 \
        --json bench/results/compute_stack.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from compute_stack.endpoint import VENV_BIN, EndpointProcess, endpoint_user  # noqa: E402
from compute_stack.stack import ComputeStack  # noqa: E402


def _evaluate(env: dict[str, str], folder: Path, *args: str) -> tuple[float, int]:
    """Wall seconds and shard count of one ``stembench evaluate`` into a fresh results file."""
    results = folder / f"results-{time.monotonic_ns()}.jsonl"
    start = time.perf_counter()
    done = subprocess.run([str(VENV_BIN / "stembench"), "evaluate", "--dataset", "mini",
                           "--model", "atomap-like", "--no-report", "--results", str(results),
                           *args], env=env, cwd=folder, capture_output=True, text=True,
                          check=False, timeout=1800)
    seconds = time.perf_counter() - start
    if done.returncode != 0 or "0 failed" not in done.stdout:
        raise SystemExit(f"stembench evaluate {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return seconds, len(results.read_text(encoding="utf-8").splitlines())


def _first_result_s(stack: ComputeStack, known: set[str]) -> float:
    """Seconds from the first submitted to the first finished task not in ``known``."""
    tasks = [t for t in stack.compute.tasks.values() if t.task_id not in known]
    finished = [t.finished_at for t in tasks if t.finished_at is not None]
    return min(finished) - min(t.submitted_at for t in tasks)


def measure(repeats: int, workers: int, shard_size: int) -> dict[str, Any]:
    """Run the comparison; the raw numbers."""
    os.environ.setdefault("STEMBENCH_OFFLINE", "1")  # the mini preset is built here, not fetched
    folder = Path(tempfile.mkdtemp(prefix="stembench-stack-bench-"))
    stack = ComputeStack(folder)
    try:
        stack.start()
        from stembench.dataset_publish.loading import load

        cache = folder / "cache"
        load(preset="mini", cache_dir=cache)
        account = endpoint_user()
        for path in (cache, *cache.rglob("*")):
            os.chown(path, account.pw_uid, account.pw_gid)
        endpoint = EndpointProcess(stack, folder / "endpoint", config_options=(
            "--gpus", str(workers), "--walltime", "01:00:00"),
            env={"STEMBENCH_CACHE": str(cache)})
        began = time.perf_counter()
        endpoint_id = endpoint.start()
        endpoint_start_s = time.perf_counter() - began
        client = folder / "client"
        stack.login(client / "globus_compute", "alice@example.org")
        env = {**os.environ, **stack.env(client / "globus_compute"),
               "STEMBENCH_CONFIG": str(client / "config.json"), "STEMBENCH_CACHE": str(cache),
               "STEMBENCH_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
        local, remote, first = [], [], []
        shards = 0
        for _ in range(repeats):
            seconds, shards = _evaluate(env, client, "--workers", str(workers),
                                        "--shard-size", str(shard_size))
            local.append(seconds)
        for _ in range(repeats + 1):  # the first remote run is cold
            known = set(stack.compute.tasks)
            seconds, remote_shards = _evaluate(env, client, "--endpoint", endpoint_id,
                                               "--endpoint-option", f"gpus={workers}",
                                               "--shard-size", str(shard_size))
            remote.append(seconds)
            first.append(_first_result_s(stack, known))
        endpoint.stop()
        return {"workers": workers, "shard_size": shard_size, "shards_local": shards,
                "shards_remote": remote_shards, "images": 102, "stack_start_s": stack.start_seconds,
                "endpoint_start_s": endpoint_start_s, "local_s": local,
                "remote_cold_s": remote[0], "remote_warm_s": remote[1:],
                "first_result_cold_s": first[0], "first_result_warm_s": first[1:],
                "slurm_jobs": len([j for j in stack.slurm.history()
                                   if j[2] == account.pw_name])}
    finally:
        stack.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=7, help="images per shard (both)")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()
    data = measure(args.repeats, args.workers, args.shard_size)
    local, warm = statistics.median(data["local_s"]), statistics.median(data["remote_warm_s"])
    rate = 60 * data["shards_local"] / local
    print(f"local {args.workers} workers: {local:.1f} s ({rate:.1f} shards/min); endpoint + "
          f"Slurm warm {warm:.1f} s ({60 * data['shards_remote'] / warm:.1f} shards/min), cold "
          f"{data['remote_cold_s']:.1f} s; first result {data['first_result_cold_s']:.1f} s "
          f"cold, {statistics.median(data['first_result_warm_s']):.1f} s warm")
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
