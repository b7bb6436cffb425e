"""AtomNet or AtomSegNet on a material's noise and resolution series: PSNR and resolution cutoffs.

Usage::

    .venv/bin/python bench/eval_noise_series.py hexagonal [--weights FILE] [--dataset FILE]
        [--out results.json]
    .venv/bin/python bench/eval_noise_series.py atomsegnet --group WS2-simulated [...]

Runs one AtomNet variant (``cubic`` on the ``SrTiO3-simulated`` group, ``hexagonal`` on
``WS2-simulated``), or AtomSegNet (built with ``registry.load_model``) on the ``--group``, over
every image of the ``noise`` and ``resolution`` series (or those named by ``--series``) of a
stembench
dataset file (default: the cached standard preset), scores each image as the benchmark does
(``stembench.endpoints.shard_scoring.score_prediction``: 0.5 A, border 6 px, per column type,
faint and unsure columns don't care; ``--mode``: one-to-one, the benchmark's rule, or the
published many-to-one ``legacy`` rule) and computes the cutoffs with
``compute_cutoffs(records, bootstrap=0, methods=("pchip",))``:
PSNR in dB and resolution in pm, lower is better for both (the model still works
on noisier, blurrier images). It also scores the
clean reference image of the shipped-weights test (256x256 fast-backend
``reference_image(material)``). Prints a summary and
writes the cutoffs, the per-step mean scores and the reference score as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from stembench.client.analysis import compute_cutoffs
from stembench.dataset_publish.simulate.series import AXES, reference_image
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.endpoints.models.atomnet import AtomNet
from stembench.endpoints.models.base import Model
from stembench.endpoints.models.registry import load_model
from stembench.endpoints.requests import ScoringOptions
from stembench.endpoints.shard_scoring import score_prediction
from stembench.scoring import score_image

GROUP = {"cubic": "SrTiO3-simulated", "hexagonal": "WS2-simulated"}
MATERIAL = {"SrTiO3-simulated": "SrTiO3[100]", "WS2-simulated": "WS2"}
SERIES = ("noise", "resolution")
DEFAULT_DATASET = Path("/tmp/fresh-cache/atom-locating-benchmark/1.0.0/standard.h5")
_RECORD_SCORES = ("recall", "precision", "f1", "rms_angstrom", "tp", "fp", "fn")


def series_records(model: Model, dataset_path: Path, group: str,
                   series: tuple[str, ...] = SERIES,
                   seeds: tuple[int, ...] | None = None, *,
                   mode: str = "one-to-one") -> list[dict[str, Any]]:
    """Score ``model`` on every image of the given series (default noise, resolution).

    ``seeds`` keeps only the images of those seeds (default: every seed); ``mode`` is the
    matching rule (``"one-to-one"`` or ``"legacy"``).
    """
    options = ScoringOptions(mode=mode)  # type: ignore[arg-type]
    info = model.info
    dataset = open_dataset(dataset_path, verify=False)
    try:
        ids = [
            image_id
            for image_id in dataset.ids
            if dataset.metadata(image_id).get("group") == group
            and dataset.metadata(image_id).get("series") in series
            and (seeds is None or int(dataset.metadata(image_id).get("seed", -1)) in seeds)
        ]
        records = []
        for image_id in tqdm(ids, desc=f"{info.name} on {group}", unit="image"):
            image = dataset[image_id]
            meta = image.metadata
            found = model.locate(image.image, image.pixel_size)
            score = score_prediction(image, found, scoring=options).to_dict()
            record = {
                "model": info.name,
                "model_version": info.version,
                "weights_sha256": info.weights_sha256 or "",
                "group": meta["group"],
                "series": meta["series"],
                "step": int(meta["step"]),
                "axis_value": float(meta["axis_value"]),
                "seed": int(meta["seed"]),
                "image_id": image_id,
            }
            record.update({key: score[key] for key in _RECORD_SCORES})
            record["recall_by_type"] = {name: part["recall"]
                                        for name, part in score["by_type"].items()}
            records.append(record)
    finally:
        dataset.close()
    return records


def dataset_identity(dataset_path: Path) -> dict[str, str]:
    """The dataset's version and content hash, recorded beside its cutoffs."""
    dataset = open_dataset(dataset_path, verify=False)
    try:
        return {"version": dataset.version, "content_sha256": dataset.content_hash}
    finally:
        dataset.close()


def reference_score(model: Model, group: str) -> dict[str, Any]:
    """Recall, precision and RMS (A) on the clean reference image of the shipped-weights test."""
    ref = reference_image(MATERIAL[group])
    found = model.locate(ref.image, ref.pixel_size)
    score = score_image(
        found,
        ref.coords,
        pixel_size=ref.pixel_size,
        image_shape=ref.image.shape,
        image_id=ref.image_id,
        border_px=6.0,
    )
    return {
        "image_id": ref.image_id,
        "recall": round(float(score.recall), 4),
        "precision": round(float(score.precision), 4),
        "rms_angstrom": round(float(score.rms_angstrom), 4),
    }


def _nanmean(values: list[float | None]) -> float:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _type_means(per_image: list[dict[str, float | None]]) -> dict[str, float]:
    names = sorted({name for scores in per_image for name in scores})
    return {name: round(_nanmean([s.get(name) for s in per_image]), 4) for name in names}


def step_means(records: list[dict[str, Any]],
               series_names: tuple[str, ...] = SERIES) -> dict[str, list[dict[str, Any]]]:
    """Mean recall, precision, RMS and recall per column type over seeds at every step."""
    out: dict[str, list[dict[str, Any]]] = {}
    for series in series_names:
        rows = [r for r in records if r["series"] == series]
        steps = sorted({r["step"] for r in rows})
        out[series] = [
            {
                "step": step,
                "axis_value": round(next(r["axis_value"] for r in rows if r["step"] == step), 3),
                **{
                    key: round(_nanmean([r[key] for r in rows if r["step"] == step]), 4)
                    for key in ("recall", "precision", "rms_angstrom")
                },
                "recall_by_type": _type_means([r["recall_by_type"] for r in rows
                                               if r["step"] == step]),
            }
            for step in steps
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=[*sorted(GROUP), "atomsegnet"])
    parser.add_argument("--group", choices=sorted(MATERIAL), default=None,
                        help="default: the AtomNet variant's group; required for atomsegnet")
    parser.add_argument("--weights", type=Path, default=None, help="default: shipped weights")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    parser.add_argument("--series", nargs="+", choices=AXES, default=list(SERIES),
                        help="quality series to score (default: noise resolution)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="score only the images of these seeds (default: all)")
    parser.add_argument("--mode", choices=("one-to-one", "legacy"), default="one-to-one",
                        help="matching rule (default: one-to-one, the benchmark's)")
    args = parser.parse_args()

    group = args.group or GROUP.get(args.variant)
    if group is None:
        parser.error("atomsegnet needs --group")
    model: Model
    if args.variant == "atomsegnet":
        model = load_model("atomsegnet", **({"weights": args.weights} if args.weights else {}))
    else:
        model = AtomNet(args.variant, args.weights)
    series = tuple(args.series)
    seeds = None if args.seeds is None else tuple(args.seeds)
    records = series_records(model, args.dataset, group, series, seeds, mode=args.mode)
    cutoffs = compute_cutoffs(records, bootstrap=0, methods=("pchip",), progress=False)
    result = {
        "variant": args.variant,
        "group": group,
        "weights": str(args.weights or "shipped"),
        "weights_sha256": model.info.weights_sha256,
        "dataset": dataset_identity(args.dataset),
        "mode": args.mode,
        "reference": reference_score(model, group),
        "cutoffs": {
            c.axis: {
                "value": c.value,
                "status": c.status,
                "criterion": c.criterion,
                "criterion_values": c.criterion_values,
            }
            for c in cutoffs
        },
        "step_means": step_means(records, series),
    }
    print(json.dumps({k: result[k] for k in ("variant", "group", "weights", "reference")}))
    for axis, cutoff in result["cutoffs"].items():
        print(f"{axis}: {cutoff['status']} {cutoff['value']} ({cutoff['criterion']})")
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
