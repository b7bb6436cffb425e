"""The main job (`stembench run`) against the sum of its parts' measured costs.

1. **Whole:** ``run_benchmark`` (what ``stembench run`` calls) on the ``--preset`` with a clean
   dataset cache and a clean output folder, ``--workers`` local workers: dataset build, every
   built-in model on every image, scoring, cutoffs, figures and the report. Set-up (venv,
   package install) is excluded.
2. **Parts**, each measured alone in this process afterwards:

   * the dataset, as the run gets it, into another clean cache (``cache.load``: it asks MDF
     for the published file first, which offline costs the SDK's retries, then builds it);
   * each model's load time and cost per image: a fresh pool of ``--workers`` workers, the
     run's own kind (:func:`stembench.client.executors.local_executor`, thread pools sized to
     the machine's cores divided among the workers), each load the model, wait for
     one another, then locate and score ``--sample`` images (every k-th id of the dataset,
     dealt out in turn) one at a time, side by side as in the run, where the cores share
     caches and memory bandwidth. The machine's cost of all images is the per-image median
     times the number of images divided by the workers;
   * the analysis: cutoffs, figures and the report from the run's own records.

   The ideal time is build + the models' (load + image costs) + analysis: no orchestration
   cost at all, so the overhead reported, whole / ideal - 1, is what orchestration, process
   start-up, imports, scheduling gaps and result writing add.

Run: ``.venv/bin/python bench/bench_main_job.py [--preset standard] [--workers 2]
[--sample 24] [--repeats 1] [--json OUT]``. The standard preset takes several minutes. On a
machine with a GPU the networks use it (PyTorch's CUDA, TensorFlow's visible GPUs); the device
is reported.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _whole(folder: Path, *, preset: str, workers: int) -> tuple[float, Path]:
    from stembench.client.run import run_benchmark

    os.environ["STEMBENCH_CACHE"] = str(folder / "cache")
    start = time.perf_counter()
    summary = run_benchmark(out_dir=folder / "out", preset=preset, workers=workers,
                            progress=False)
    return time.perf_counter() - start, summary.out_dir


def _dataset_seconds(folder: Path, *, preset: str) -> tuple[float, Path]:
    """What the run does to get its dataset from a clean cache: ask MDF, then build."""
    from stembench.dataset_publish.loading import load

    start = time.perf_counter()
    dataset = load("atom-locating-benchmark", preset=preset, cache_dir=folder / "parts-cache")
    return time.perf_counter() - start, Path(dataset.path)


def _model_times(model_name: str, path: Path, *, ids: list[str],
                 barrier: Any) -> dict[str, Any]:
    """Load the model, wait for the other workers, then locate and score ``ids`` one by one."""
    from stembench.dataset_publish.storage.stembench_layout import open_dataset
    from stembench.endpoints.models.registry import load_model
    from stembench.scoring import score_image

    start = time.perf_counter()
    model = load_model(model_name)
    load_s = time.perf_counter() - start
    barrier.wait()  # every worker times its images at the same time, as in the run
    times = []
    with open_dataset(path) as dataset:
        for image_id in ids:
            image = dataset[image_id]
            start = time.perf_counter()
            found = model.locate(image.image, image.pixel_size)
            score_image(found, image.coords, pixel_size=image.pixel_size,
                        image_shape=image.image.shape, image_id=image_id)
            times.append(time.perf_counter() - start)
    return {"load_s": load_s, "times_s": times}


def _models_like_the_workers(path: Path, *, workers: int, sample: int) -> dict[str, Any]:
    """Each built-in model's cost on the machine, measured with every worker busy."""
    from stembench.client.executors import local_executor
    from stembench.client.run import BUILTIN_MODELS
    from stembench.dataset_publish.storage.stembench_layout import open_dataset

    with open_dataset(path) as dataset:
        ids = dataset.ids
    chosen = ids[:: max(1, len(ids) // (sample * workers))][: sample * workers]
    models = {}
    with multiprocessing.get_context("spawn").Manager() as manager:
        for name in BUILTIN_MODELS:
            barrier = manager.Barrier(workers)
            with local_executor(workers) as pool:  # the run's own workers, fresh
                runs = [pool.submit(_model_times, name, path, ids=chosen[w::workers],
                                    barrier=barrier) for w in range(workers)]
                done = [run.result() for run in runs]
            per_image = statistics.median(t for d in done for t in d["times_s"])
            models[name] = {
                "load_s": max(d["load_s"] for d in done), "per_image_s": per_image,
                "images": len(ids), "timed": sum(len(d["times_s"]) for d in done),
                # the workers run side by side: the machine finishes `workers` images per
                # per-image time
                "all_images_s": per_image * len(ids) / workers,
            }
    return models


def _analysis_seconds(out_dir: Path, folder: Path) -> float:
    from stembench.client.analysis import read_records
    from stembench.client.analysis.report import load_report, write_report

    records = read_records(out_dir / "records.jsonl")
    provenance = load_report(out_dir / "report.json")["provenance"]
    start = time.perf_counter()
    write_report(records, out_dir=folder / "analysis", provenance=provenance)
    return time.perf_counter() - start


def measure(*, preset: str, workers: int, sample: int, keep: Path | None = None
            ) -> dict[str, Any]:
    """Run the whole job, then its parts; see the module docstring.

    ``keep``: copy the run's output folder (results, report) there.
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        whole_s, out_dir = _whole(folder, preset=preset, workers=workers)
        if keep is not None:
            shutil.copytree(out_dir, keep, dirs_exist_ok=True)
        build_s, path = _dataset_seconds(folder, preset=preset)
        models = _models_like_the_workers(path, workers=workers, sample=sample)
        analysis_s = _analysis_seconds(out_dir, folder)
    from stembench.endpoints.provenance import runtime_provenance

    inference_s = sum(m["load_s"] + m["all_images_s"] for m in models.values())
    ideal_s = build_s + inference_s + analysis_s
    return {"preset": preset, "workers": workers, "sample": sample, "whole_s": whole_s,
            "device": runtime_provenance()["device"],
            "build_s": build_s, "models": models, "analysis_s": analysis_s,
            "ideal_s": ideal_s, "overhead": whole_s / ideal_s - 1}


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="standard", choices=("mini", "standard"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=int, default=24,
                        help="images timed per model and worker")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None,
                        help="copy the last run's output (results, report) to this folder")
    parser.add_argument("--repeats", type=int, default=1,
                        help="measure whole and parts this many times (median and range)")
    args = parser.parse_args()
    rows = []
    for index in range(args.repeats):
        row = measure(preset=args.preset, workers=args.workers, sample=args.sample,
                      keep=args.keep if index == args.repeats - 1 else None)
        _print(row)
        rows.append(row)
    if args.json is not None:
        args.json.write_text(json.dumps({"repeats": rows}, indent=1) + "\n")


def _print(row: dict[str, Any]) -> None:
    print(f"stembench run, preset {row['preset']}, {row['workers']} workers, on "
          f"{row['device']}: {row['whole_s']:.1f} s")
    print(f"  dataset build {row['build_s']:.1f} s, analysis {row['analysis_s']:.1f} s")
    for name, model in row["models"].items():
        print(f"  {name}: {model['per_image_s']:.3f} s/image x {model['images']} = "
              f"{model['all_images_s']:.1f} s (load {model['load_s']:.1f} s)")
    print(f"  ideal {row['ideal_s']:.1f} s; overhead {100 * row['overhead']:+.1f} %", flush=True)


if __name__ == "__main__":
    main()
