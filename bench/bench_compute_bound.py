"""AtomSegNet against this CPU's compute bound: FLOPs per image, sustained rate, ratio.

For each image size the script

1. counts the network's floating-point operations per image with
   :class:`torch.utils.flop_counter.FlopCounterMode` (a multiply-add counts as 2 FLOPs;
   convolutions, the only significant term, are counted exactly);
2. measures the sustained FLOP rate of this machine on the same work: every convolution of the
   network run alone, with its own input shape, weights and memory format, timed as the median
   of ``--repeats`` runs; the sum of those medians is the compute-bound time of one forward pass
   (what the convolutions cost with nothing else around them), and FLOPs / that time the rate;
3. times the full forward pass (``AtomSegNet.probability_maps`` minus the post-processing: the
   8-bit scaling, padding, network and cropping) and the whole ``locate`` (with the watershed);
4. reports forward time / compute-bound time (the ratio of the medians, and the range of the
   ratios of the ``--repeats`` alternating pairs): 1.0 means the network runs exactly at the
   speed of its own convolutions, the rest (ReLU, pooling, upsampling, concatenation, the
   BatchNorms that follow a concatenation, copies) costing nothing.

The model is built first, so the convolutions alone run with what it set for the process
(freed memory kept: :mod:`stembench.endpoints.models.cpu_memory`), as its forward pass does.

All timings alternate between the parts in the same run, so machine load affects each alike.
Run: ``.venv/bin/python bench/bench_compute_bound.py [--sizes 256 1024] [--repeats 5]
[--threads 2] [--batch 1] [--default-allocator] [--json OUT]``; ``--default-allocator``
leaves glibc's allocator as it is, to show what keeping freed memory saves.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _alternating_seconds(runs: dict[str, Callable[[], object]],
                         repeats: int) -> dict[str, list[float]]:
    """Wall times of each run, the runs alternating, after one warm-up of each."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def _conv_calls(network: Any, batch: Any) -> list[tuple[Any, Any]]:
    """Every convolution of one forward pass with the input it received."""
    import torch

    calls: list[tuple[Any, Any]] = []
    hooks = [
        module.register_forward_pre_hook(lambda mod, args: calls.append((mod, args[0].clone())))
        for module in network.modules()
        if isinstance(module, torch.nn.Conv2d)
    ]
    try:
        with torch.inference_mode():
            network(batch)
    finally:
        for hook in hooks:
            hook.remove()
    return calls


def measure(size: int, *, repeats: int, batch: int = 1) -> dict[str, Any]:
    """Measure one image size, ``batch`` images per forward pass; times are per image."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from stembench.endpoints.models.atomsegnet import AtomSegNet
    from stembench.endpoints.models.postprocess import coordinates_from_watershed

    model = AtomSegNet(device="cpu", batch_size=batch)
    network = model._network
    rng = np.random.default_rng(0)
    images = [rng.random((size, size)) for _ in range(batch)]
    tensor = torch.rand(batch, 1, size, size).to(memory_format=torch.channels_last)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        network(tensor)
    flops = int(counter.get_total_flops()) / batch
    calls = _conv_calls(network, tensor)

    def convs_alone() -> None:
        with torch.inference_mode():
            for module, inputs in calls:
                module(inputs)

    def forward() -> None:
        model.probability_maps(images)

    maps = model.probability_maps(images)
    times = {name: [t / batch for t in values] for name, values in _alternating_seconds({
        "convs": convs_alone, "forward": forward,
        "watershed": lambda: [coordinates_from_watershed(m) for m in maps]}, repeats).items()}
    conv_s, forward_s, locate_s = (statistics.median(times[k])
                                   for k in ("convs", "forward", "watershed"))
    ratios = [f / c for f, c in zip(times["forward"], times["convs"], strict=True)]
    return {
        "size": size,
        "batch": batch,
        "gflop_per_image": flops / 1e9,
        "convolutions": len(calls),
        "compute_bound_s": conv_s,
        "sustained_gflop_s": flops / conv_s / 1e9,
        "forward_s": forward_s,
        "forward_gflop_s": flops / forward_s / 1e9,
        "ratio_forward_to_bound": forward_s / conv_s,
        "ratio_per_repeat": ratios,
        "times_s": times,
        "postprocess_s": locate_s,
        "ratio_locate_to_bound": (forward_s + locate_s) / conv_s,
    }


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--batch", type=int, default=1,
                        help="images per forward pass (times are reported per image)")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's allocator as it is (what freed memory kept saves)")
    args = parser.parse_args()
    import torch

    if args.default_allocator:
        import stembench.endpoints.models.atomsegnet as atomsegnet

        atomsegnet.keep_freed_memory = lambda: False  # type: ignore[assignment]

    torch.set_num_threads(args.threads)
    rows = [measure(size, repeats=args.repeats, batch=args.batch) for size in args.sizes]
    allocator = "glibc default" if args.default_allocator else "freed memory kept"
    print(f"AtomSegNet, {args.threads} threads, median of {args.repeats} runs, {allocator}")
    print("| image | GFLOP/image | convs alone (s) | sustained GFLOP/s | forward (s) | "
          "forward / bound | + watershed (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['size']}^2 | {row['gflop_per_image']:.1f} | {row['compute_bound_s']:.3f} | "
              f"{row['sustained_gflop_s']:.1f} | {row['forward_s']:.3f} | "
              f"{row['ratio_forward_to_bound']:.2f}x | {row['postprocess_s']:.3f} |")
    for row in rows:
        row["allocator"] = allocator
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
