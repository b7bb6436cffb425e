"""Regenerate ``src/stembench/client/assess/data/builtin_cutoffs.json``.

Two sources:

* ``python bench/make_builtin_cutoffs.py --report REPORT.json``: the cutoffs of any
  ``stembench run`` report (schema ``stembench-report/1``);
* ``python bench/make_builtin_cutoffs.py --compute-mini``: build the mini dataset into a
  temporary folder, run the built-in classical models (``log-blob``, ``atomap-like``)
  through the scorer, and compute the cutoffs with :mod:`stembench.client.analysis`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from tqdm import tqdm

from stembench.client.analysis import compute_cutoffs
from stembench.client.analysis.records import json_safe
from stembench.client.analysis.report import load_report
from stembench.client.assess.recommend import BUILTIN_CUTOFFS_PATH
from stembench.dataset_publish.simulate.build import DATASET_VERSION

MODELS = ("log-blob", "atomap-like")


def records_from_mini(models: tuple[str, ...] = MODELS) -> list[dict[str, Any]]:
    """Score records of ``models`` on a freshly built mini dataset."""
    from stembench.dataset_publish.simulate.build import build_dataset
    from stembench.dataset_publish.storage.stembench_layout import open_dataset
    from stembench.endpoints.models.registry import load_model
    from stembench.scoring import score_image

    records = []
    with tempfile.TemporaryDirectory() as folder:
        path = build_dataset(Path(folder) / "mini.h5", preset="mini", progress=False)
        dataset = open_dataset(path)
        ids = [i for i in dataset.ids if not i.startswith("generality")]
        for spec in models:
            model = load_model(spec)
            info = model.info
            for image_id in tqdm(ids, desc=spec):
                image = dataset[image_id]
                found = model.locate(image.image, image.pixel_size)
                score = score_image(found, image.coords, pixel_size=image.pixel_size,
                                    image_shape=image.image.shape, image_id=image_id)
                meta = image.metadata
                records.append({**score.to_dict(), "group": meta["group"],
                                "series": meta["series"], "step": int(meta["step"]),
                                "axis_value": float(meta["axis_value"]),
                                "seed": int(meta["seed"]), "material": meta["material"],
                                "model": info.name, "model_version": info.version,
                                "framework": info.framework,
                                "weights_sha256": info.weights_sha256 or ""})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--report", type=Path, help="a stembench report JSON file")
    source.add_argument("--compute-mini", action="store_true",
                        help="score the classical models on the mini dataset")
    parser.add_argument("--out", type=Path, default=BUILTIN_CUTOFFS_PATH)
    args = parser.parse_args()
    if args.report is not None:
        report = load_report(args.report)
        cutoffs = report["cutoffs"]
        provenance = report["provenance"]
        origin = (f"report {args.report.name} of {provenance['dataset_name']} "
                  f"sha256 {provenance['dataset_sha256']}")
        version = provenance["dataset_version"]
    else:
        cutoffs = compute_cutoffs(records_from_mini(), bootstrap=50, methods=("pchip",))
        origin = f"mini dataset, models {', '.join(MODELS)}, pchip, 50 bootstrap samples"
        version = DATASET_VERSION
    data = {"schema": "stembench-cutoffs/1", "source": origin, "dataset_version": version,
            "cutoffs": [c.to_dict() for c in cutoffs if c.method == "pchip"]}
    args.out.write_text(json.dumps(json_safe(data), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(data['cutoffs'])} cutoffs to {args.out}")


if __name__ == "__main__":
    main()
