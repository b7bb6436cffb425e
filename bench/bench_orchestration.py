"""Orchestration cost of the client: overhead, worker scaling, and client memory.

Three measurements, each the median of ``--repeats`` runs on the same images:

1. overhead: ``stembench.client.orchestrate.evaluate`` with one local worker against
   calling the model and the scorer directly in this process on the same images (read
   from the same dataset file, verified), reported as a ratio; also the same with a
   warm worker pool (the one-time cost of starting a worker excluded);
2. scaling: the same evaluation with 1 and 2 local workers;
3. client memory: the peak Python heap of the client (tracemalloc) while it orchestrates
   1,000 / 10,000 / 100,000 images through a shard function that returns synthetic scores,
   so that only the client's own bookkeeping is measured.

Run:  .venv/bin/python bench/bench_orchestration.py [--images 200] [--model atomap-like]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from stembench.client.executors import local_executor
from stembench.client.orchestrate import Target, evaluate
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.endpoints.requests import DatasetRef, ShardRequest


def synthetic_shard(request: dict[str, Any]) -> dict[str, Any]:
    """A shard function that scores nothing: a fixed score per image (for memory)."""
    parsed = ShardRequest.from_dict(request)
    score = {"recall": 1.0, "precision": 1.0, "f1": 1.0, "rms_angstrom": 0.01,
             "tp": 100, "fp": 0, "fn": 0}
    return {"shard_id": parsed.shard_id, "ok": True, "error": None,
            "images": [{"image_id": i, "error": None, "seconds": 0.0,
                        "conditions": {"group": "g", "series": "noise", "step": 0,
                                       "axis_value": 1.0, "seed": 0},
                        "score": {**score, "image_id": i},
                        "coordinates": [[1.0, 2.0]] * 100} for i in parsed.image_ids],
            "model": {"name": "synthetic", "version": "1", "framework": "python",
                      "weights_sha256": None},
            "dataset": {"name": "d", "version": "1", "manifest_sha256": None},
            "runtime": {"host": "h", "device": "cpu"}}


def direct(path: Path, ids: list[str], model_name: str) -> float:
    """Seconds to read, run and score every image in this process."""
    from stembench.endpoints.models.registry import load_model
    from stembench.scoring import score_image

    start = time.perf_counter()
    model = load_model(model_name)
    with open_dataset(path) as dataset:
        for image_id in ids:
            image = dataset[image_id]
            found = model.locate(image.image, image.pixel_size)
            score_image(found, image.coords, pixel_size=image.pixel_size,
                        image_shape=image.shape, image_id=image_id)
    return time.perf_counter() - start


def orchestrated(path: Path, ids: list[str], model_name: str, workers: int,
                 target: Target | None = None) -> float:
    """Seconds for ``evaluate`` on a fresh results file (pool started inside unless given)."""
    own = target is None
    target = target or Target("local", local_executor(workers), max_in_flight=2 * workers)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        outcome = evaluate(model_name, results_path=Path(folder) / "r.jsonl",
                           dataset=DatasetRef(source="path", path=str(path)),
                           targets=[target], image_ids=ids, shard_size=16, progress=False)
        seconds = time.perf_counter() - start
    if own:
        target.executor.shutdown()
    assert outcome.complete, outcome.failed_shards
    return seconds


def warm_target(path: Path, ids: list[str], model_name: str, workers: int) -> Target:
    """A pool whose workers have imported stembench and loaded the model and dataset."""
    target = Target("local", local_executor(workers), max_in_flight=2 * workers)
    orchestrated(path, ids[: 2 * workers], model_name, workers, target)
    return target


def client_heap_peak(n_images: int) -> float:
    """Peak Python heap (MiB) of the client orchestrating ``n_images`` synthetic images."""
    ids = [f"image-{i:06d}" for i in range(n_images)]
    target = Target("local", local_executor(2), max_in_flight=4)
    with tempfile.TemporaryDirectory() as folder:
        tracemalloc.start()
        evaluate("synthetic", results_path=Path(folder) / "r.jsonl", dataset=DatasetRef(),
                 targets=[target], image_ids=ids, shard_size=64, progress=False,
                 shard_function=synthetic_shard, identify=None)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    target.executor.shutdown()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=None,
                        help="benchmark .h5 file (default: the cached standard preset)")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--model", default="atomap-like")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    if args.dataset is None:
        import stembench

        with stembench.load("atom-locating-benchmark", preset="standard") as dataset:
            path = dataset.path
    else:
        path = args.dataset
    with open_dataset(path) as dataset:
        ids = dataset.ids[: args.images]

    def median(fn: Any, *a: Any) -> float:
        return statistics.median(fn(*a) for _ in range(args.repeats))

    rows: dict[str, Any] = {"images": len(ids), "model": args.model, "repeats": args.repeats}
    rows["direct_s"] = median(direct, path, ids, args.model)
    rows["one_worker_s"] = median(orchestrated, path, ids, args.model, 1)
    rows["two_workers_s"] = median(orchestrated, path, ids, args.model, 2)
    warm = warm_target(path, ids, args.model, 1)
    rows["one_warm_worker_s"] = median(orchestrated, path, ids, args.model, 1, warm)
    warm.executor.shutdown()
    rows["overhead_cold"] = rows["one_worker_s"] / rows["direct_s"] - 1
    rows["overhead_warm"] = rows["one_warm_worker_s"] / rows["direct_s"] - 1
    rows["speedup_2_workers"] = rows["one_worker_s"] / rows["two_workers_s"]
    rows["client_heap_peak_mib"] = {n: round(client_heap_peak(n), 2)
                                    for n in (1_000, 10_000, 100_000)}

    print(f"{len(ids)} images, model {args.model}, median of {args.repeats} runs")
    print(f"  direct (read + locate + score in process): {rows['direct_s']:.2f} s")
    print(f"  evaluate, 1 worker (cold pool):           {rows['one_worker_s']:.2f} s  "
          f"overhead {100 * rows['overhead_cold']:+.1f} %")
    print(f"  evaluate, 1 worker (warm pool):           {rows['one_warm_worker_s']:.2f} s  "
          f"overhead {100 * rows['overhead_warm']:+.1f} %")
    print(f"  evaluate, 2 workers (cold pool):          {rows['two_workers_s']:.2f} s  "
          f"speed-up x{rows['speedup_2_workers']:.2f}")
    for n, mib in rows["client_heap_peak_mib"].items():
        print(f"  client heap peak, {n:>7} images: {mib:.2f} MiB")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
