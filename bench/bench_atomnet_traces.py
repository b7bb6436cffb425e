"""How often each AtomNet is traced over a whole preset, through the real shard function.

Every image of the preset goes through :func:`stembench.endpoints.shard.evaluate_shard` in the
shards a run plans (``plan_shards`` for 4 tasks in flight), in one process, as on one
endpoint worker. Afterwards the model's ``tf.function`` reports how many times it was traced;
TensorFlow's "triggered tf.function retracing" warnings would show on stderr.

Run: ``.venv/bin/python bench/bench_atomnet_traces.py [--preset standard] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from stembench.client.orchestrate import plan_shards
from stembench.dataset_publish.loading import load
from stembench.endpoints.requests import DatasetRef, ModelSpec, ShardRequest
from stembench.endpoints.shard import _load_model, evaluate_shard


def traces(variant: str, preset: str) -> dict[str, object]:
    """Run every image of ``preset`` through ``atomnet-<variant>``; count its traces."""
    dataset = load("atom-locating-benchmark", preset=preset)
    reference, spec = DatasetRef(preset=preset), ModelSpec(f"atomnet-{variant}")
    failed = 0
    for shard in plan_shards(dataset.ids, n_workers=4):
        result = evaluate_shard(ShardRequest(dataset=reference, model=spec,
                                             image_ids=shard).to_dict())
        failed += sum(1 for entry in result["images"] if entry["error"])
    model = _load_model(json.dumps(asdict(spec), sort_keys=True))[0]
    return {"model": spec.spec, "images": len(dataset.ids),
            "image_shapes": sorted({dataset[i].shape for i in dataset.ids}),
            "traces": int(model._forward.experimental_get_tracing_count()),
            "image_errors": failed}


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="standard", choices=("mini", "standard"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = [traces(variant, args.preset) for variant in ("cubic", "hexagonal")]
    for row in rows:
        print(json.dumps(row), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
