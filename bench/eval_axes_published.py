"""The published cubic AtomNet on the SrTiO3 quality series, axis by axis (issue 24).

Usage::

    nice -n 10 .venv/bin/python bench/eval_axes_published.py --weights FILE \
        [--axes pixel_size contrast noise resolution flyback drift] [--seeds 0 1 2] \
        [--out docs/paper-findings-data/published-cubic-SrTiO3.json]

Renders the ``SrTiO3-simulated`` series of the ``standard`` preset in memory (fast backend,
256x256, the standard steps, seeds 0-2: the very images ``build_dataset`` writes), runs the
network on each image, scores it with ``stembench.scoring.score_image`` (one-to-one, 0.5 A,
border 6 px) and computes the PCHIP cutoffs (``compute_cutoffs``, no bootstrap). Records are
cached per axis in the output file: an axis already there with the same weights, generator
version and seeds is not evaluated again. Besides our ``psnr_db`` the noise records carry the
PSNR by the paper's definition (``psnr_paper_db``, see
:func:`stembench.dataset_publish.simulate.degradations.psnr_8bit_db`), so the noise cutoff is
reported on both scales.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from stembench.client.analysis import compute_cutoffs
from stembench.dataset_publish.simulate.build import PRESETS
from stembench.dataset_publish.simulate.fast_backend import FastHAADF
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.simulate.series import (
    AXES,
    GENERATOR_VERSION,
    MATERIALS,
    material_series,
)
from stembench.endpoints.models.registry import load_model
from stembench.scoring import score_image

MATERIAL = "SrTiO3[100]"
_SCORES = ("recall", "precision", "f1", "rms_angstrom", "tp", "fp", "fn")


def axis_records(model: Any, axis: str, seeds: list[int]) -> list[dict[str, Any]]:
    """Score ``model`` on every image of the SrTiO3 ``axis`` series (standard steps)."""
    probe = ProbeParameters()
    spec = MATERIALS[MATERIAL]
    steps = spec.steps[axis]
    shape = PRESETS["standard"].shape
    info = model.info
    records = []
    for image in material_series(MATERIAL, axis, steps=steps, seeds=seeds,
                                 backend=FastHAADF(probe), probe=probe, shape=shape):
        meta = image.metadata
        found = model.locate(image.image, image.pixel_size)
        score = score_image(found, image.coords, pixel_size=image.pixel_size,
                            image_shape=image.image.shape, image_id=image.image_id,
                            column_types=image.column_types or None,
                            faint=image.faint_coords).to_dict()
        record = {"model": info.name, "model_version": info.version,
                  "weights_sha256": info.weights_sha256 or "", "group": meta["group"],
                  "series": axis, "step": int(meta["step"]),
                  "axis_value": float(meta["axis_value"]), "seed": int(meta["seed"]),
                  "image_id": image.image_id, **{k: score[k] for k in _SCORES}}
        records.append(record)
    return records


def cutoff_table(records: list[dict[str, Any]]) -> dict[str, Any]:
    """PCHIP cutoffs of the records, keyed by axis."""
    cutoffs = compute_cutoffs(records, bootstrap=0, methods=("pchip",), progress=False)
    return {c.axis: {"value": c.value, "status": c.status, "criterion": c.criterion}
            for c in cutoffs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--axes", nargs="+", choices=AXES, default=list(AXES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    model = load_model("atomnet-cubic", weights=str(args.weights))
    key = {"weights_sha256": model.info.weights_sha256, "generator_version": GENERATOR_VERSION,
           "seeds": args.seeds}
    cached: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if {k: cached.get(k) for k in key} != key:
        cached = {**key, "records": {}}
    for axis in args.axes:
        if axis not in cached["records"]:
            cached["records"][axis] = axis_records(model, axis, args.seeds)
            args.out.write_text(json.dumps(cached, indent=1) + "\n")
    records = [r for axis in args.axes for r in cached["records"][axis]]
    table = cutoff_table(records)
    cached["cutoffs"] = table
    args.out.write_text(json.dumps(cached, indent=1) + "\n")
    for axis, cutoff in table.items():
        print(f"{axis}: {cutoff['status']} {cutoff['value']} ({cutoff['criterion']})")


if __name__ == "__main__":
    main()
