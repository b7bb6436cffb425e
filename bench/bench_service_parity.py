"""Local scores against the service's scores of the same coordinates (issue 27, item 1).

Evaluates a model on a preset with ``evaluate`` (local workers, the real shard function),
then re-scores the results file's coordinates as the service does
(:func:`stembench.service.rescore.rescore`) and prints, per data group, the mean F1 both
ways, how many images got an identical score record (every field), and the mean F1 the
service gave before it scored through the shard's function (no faint columns, no
don't-care labels)::

    PYTHONPATH=src python bench/bench_service_parity.py --preset standard --model atomap-like
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np


def main() -> None:
    """Evaluate, re-score, compare, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--model", default="atomap-like")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=None, help="dataset cache folder")
    args = parser.parse_args()
    from stembench.client.executors import local_executor
    from stembench.client.orchestrate import Target, evaluate
    from stembench.client.results_file import ResultsFile
    from stembench.dataset_publish.loading import load
    from stembench.endpoints.requests import DatasetRef
    from stembench.scoring import score_image
    from stembench.service.rescore import dataset_identity, rescore

    with tempfile.TemporaryDirectory(prefix="stembench-parity-") as folder:
        cache = args.cache or Path(folder) / "cache"
        dataset = load(preset=args.preset, cache_dir=cache)
        results = Path(folder) / "results.jsonl"
        pool = local_executor(args.workers)
        outcome = evaluate(args.model, results_path=results, progress=False,
                           dataset=DatasetRef(preset=args.preset, cache_dir=str(cache)),
                           targets=[Target("local", pool, max_in_flight=2 * args.workers)])
        pool.shutdown()
        shards = ResultsFile(results).current_shards(outcome.shard_ids)
        with dataset:
            records = {r["image_id"]: r for r in rescore(shards, dataset,
                                                         dataset_identity(dataset.path))}
            local, before = {}, {}
            for shard in shards:
                for entry in shard["images"]:
                    local[entry["image_id"]] = entry["score"]
                    image = dataset[entry["image_id"]]
                    before[entry["image_id"]] = score_image(
                        np.asarray(entry.get("coordinates") or np.zeros((0, 2))).reshape(-1, 2),
                        image.coords, pixel_size=image.pixel_size, image_shape=image.shape,
                        image_id=image.image_id, column_types=image.column_types or None).f1
    groups: dict[str, list[str]] = defaultdict(list)
    for image_id in local:
        groups[image_id.split(":")[0]].append(image_id)
    table = {}
    for group, ids in sorted(groups.items()):
        same = sum(all(records[i][k] == v for k, v in local[i].items()) for i in ids)
        table[group] = {"images": len(ids), "identical_records": same,
                        "local_f1": round(float(np.mean([local[i]["f1"] for i in ids])), 4),
                        "service_f1": round(float(np.mean([records[i]["f1"] for i in ids])), 4),
                        "service_f1_before": round(float(np.mean([before[i] for i in ids])),
                                                   4)}
    print(json.dumps({"preset": args.preset, "model": args.model, "groups": table}, indent=1))


if __name__ == "__main__":
    main()
