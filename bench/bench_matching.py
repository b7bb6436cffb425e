"""Throughput of :func:`stembench.matching.match_positions` against a dense assignment.

For each number of ground-truth columns N, a square lattice (12 px spacing) is jittered
(Gaussian, 0.4 px) to make the predictions; 1 % of the columns get no prediction and
1 % extra predictions are scattered uniformly over the image. The match radius is
0.5 A at 0.13 A/px (3.85 px), a typical benchmark image. Both methods see the same
inputs; the dense reference builds the full N x N distance matrix and solves it with
:func:`scipy.optimize.linear_sum_assignment`, with a cardinality-first cost (distance for
pairs within the radius, a constant above the sum of all those distances otherwise), and
is skipped above ``--dense-max`` columns. The table reports the median of ``--repeats``
runs, columns per second (per wall second and per CPU second of this process), the
speed ratio, and whether both found the same number of pairs and the same total
distance.

Run single-threaded::

    OMP_NUM_THREADS=1 python bench/bench_matching.py
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402
from scipy.spatial.distance import cdist  # noqa: E402

from stembench.matching import match_positions  # noqa: E402

SPACING_PX = 12.0
JITTER_PX = 0.4
RADIUS_PX = 0.5 / 0.13
FloatArray = NDArray[np.float64]


def make_inputs(n_truth: int, seed: int) -> tuple[FloatArray, FloatArray]:
    """Predictions and ground truth: lattice, jitter, 1 % missing, 1 % extra."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_truth)))
    steps = SPACING_PX * (1.0 + np.arange(side))
    xx, yy = np.meshgrid(steps, steps)
    truth = np.column_stack([xx.ravel(), yy.ravel()])[:n_truth]
    found = rng.random(n_truth) >= 0.01
    predicted = truth[found] + rng.normal(0.0, JITTER_PX, (int(found.sum()), 2))
    extra = rng.uniform(0.0, SPACING_PX * (side + 1), (max(1, n_truth // 100), 2))
    return rng.permutation(np.vstack([predicted, extra])), truth


def dense_match(predicted: FloatArray, truth: FloatArray) -> tuple[int, float]:
    """Dense all-pairs assignment; returns (pairs, total distance in px)."""
    distance = cdist(predicted, truth)
    allowed = distance <= RADIUS_PX
    cost = np.where(allowed, distance, distance[allowed].sum() + 1.0)
    rows, cols = linear_sum_assignment(cost)
    keep = allowed[rows, cols]
    return int(keep.sum()), float(distance[rows, cols][keep].sum())


def sparse_match(predicted: FloatArray, truth: FloatArray) -> tuple[int, float]:
    """The benchmarked matcher; returns (pairs, total distance in px)."""
    m = match_positions(predicted, truth, max_distance_px=RADIUS_PX)
    return m.n_matched, float(m.distance_px.sum())


def median_seconds(
    func: Callable[[FloatArray, FloatArray], tuple[int, float]],
    predicted: FloatArray,
    truth: FloatArray,
    repeats: int,
) -> tuple[float, float, tuple[int, float]]:
    """Median wall time and median process CPU time of ``repeats`` calls, and the result.

    The CPU time is what one core spent on the call; on a shared machine it is the
    steadier of the two figures.
    """
    wall, cpu = [], []
    result = (0, 0.0)
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        result = func(predicted, truth)
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu), result


def main() -> None:
    """Print the throughput table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dense-max", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args()
    record: list[dict[str, object]] = []

    print(f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, median of {args.repeats} runs")
    print(f"radius {RADIUS_PX:.2f} px, spacing {SPACING_PX} px, jitter {JITTER_PX} px")
    header = (
        "| N truth | sparse ms | sparse cols/s | sparse cols/CPU-s | dense ms | dense cols/s "
        "| ratio (wall) | same result |"
    )
    print(header)
    print("|---" * 8 + "|")
    for n in args.sizes:
        predicted, truth = make_inputs(n, args.seed)
        sparse_s, sparse_cpu, sparse_result = median_seconds(
            sparse_match, predicted, truth, args.repeats
        )
        row = f"| {n} | {1e3 * sparse_s:.2f} | {n / sparse_s:,.0f} | {n / sparse_cpu:,.0f} |"
        entry: dict[str, object] = {"columns": n, "sparse_s": sparse_s, "sparse_cpu_s": sparse_cpu}
        record.append(entry)
        if n <= args.dense_max:
            dense_s, _, dense_result = median_seconds(dense_match, predicted, truth, args.repeats)
            same = sparse_result[0] == dense_result[0] and np.isclose(
                sparse_result[1], dense_result[1], rtol=1e-9
            )
            row += f" {1e3 * dense_s:.1f} | {n / dense_s:,.0f} | {dense_s / sparse_s:,.0f}x |"
            entry.update(dense_s=dense_s, same_result=bool(same))
            row += f" {'yes' if same else 'NO'} |"
        else:
            row += f" skipped (N > {args.dense_max}) | - | - | - |"
        print(row)
    if args.json is not None:
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
