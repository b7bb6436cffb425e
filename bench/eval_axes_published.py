"""The published cubic AtomNet on the SrTiO3 quality series, axis by axis (issue 24).

Usage::

    nice -n 10 .venv/bin/python bench/eval_axes_published.py --weights FILE \
        --out /tmp/published-cubic-SrTiO3.cache.json \
        --summary docs/paper-findings-data/published-cubic-SrTiO3.json

Renders the ``SrTiO3-simulated`` series of the ``standard`` preset in memory (fast backend,
256x256, the standard steps, seeds 0-2: the very images ``build_dataset`` writes), runs the
network once on every image and keeps its predictions, then scores them four ways and computes
the PCHIP cutoffs of each (``compute_cutoffs``, no bootstrap):

``ours``
    the benchmark's rule: one-to-one within 0.5 A, border 6 px, labels where the columns
    appear in the image (drift and fly-back move each label by the mean displacement of the
    lines that image its column).
``paper labels``
    drift and fly-back scored against the labels of the undistorted scan, as the paper's
    degraded series reuse the labels of their clean image; other axes as ``ours``.
``paper rule``
    ``paper labels`` with the published many-to-one ("legacy") matching.
``dose``
    the noise series read on its dose axis (e-/A^2) instead of PSNR.
``gamma``
    the contrast series' targets reached by a gamma curve (the paper's other way of lowering
    contrast) instead of a constant offset, noise-free, labels unchanged.

The predictions are cached in the output file with the weights' hash, the generator version
and the seeds; a later run with the same three only re-scores them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from stembench.client.analysis import compute_cutoffs
from stembench.dataset_publish.build import PRESETS
from stembench.dataset_publish.simulate import degradations as deg
from stembench.dataset_publish.simulate.fast_backend import FastHAADF
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.simulate.scan import ScanParameters
from stembench.dataset_publish.simulate.series import (
    AXES,
    GENERATOR_VERSION,
    MATERIALS,
    material_series,
    render,
    seed_for,
)
from stembench.dataset_publish.simulate.visibility import column_pixels
from stembench.endpoints.models.registry import load_model
from stembench.scoring import score_image

MATERIAL = "SrTiO3[100]"
_SCORES = ("recall", "precision", "f1", "rms_angstrom", "tp", "fp", "fn")


def _inside(pixels: Any, shape: tuple[int, int]) -> Any:
    rows, cols = shape
    with np.errstate(invalid="ignore"):
        return (np.isfinite(pixels).all(axis=1) & (pixels[:, 0] >= -0.5)
                & (pixels[:, 0] <= cols - 0.5) & (pixels[:, 1] >= -0.5)
                & (pixels[:, 1] <= rows - 0.5))


def _undistorted_labels(axis: str, step: int, seed: int, value: float,
                        probe: ProbeParameters, shape: tuple[int, int],
                        image: Any) -> tuple[list[Any], list[Any]]:
    """Visible and faint labels of a drift or fly-back image on the undistorted scan."""
    pixel = MATERIALS[MATERIAL].reference_pixel_size_angstrom
    scan = ScanParameters(shape, pixel, flyback_px=value if axis == "flyback" else 0.0,
                          drift_px_per_line=value if axis == "drift" else 0.0,
                          seed=seed_for(MATERIAL, axis, step, seed))
    rendered = render(MATERIAL, FastHAADF(probe), scan, structure_seed=seed_for(MATERIAL, seed),
                      probe=probe)
    if not np.allclose(rendered.raw.astype(np.float32), image.raw):
        raise RuntimeError(f"{image.image_id}: re-rendered image differs from the series'")
    positions = rendered.structure.positions_angstrom
    placed = rendered.scan
    visible_columns = rendered.structure.visible
    seen = column_pixels(positions, placed, probe=probe)
    if not np.allclose(seen[_inside(seen, shape) & visible_columns], image.coords):
        raise RuntimeError(f"{image.image_id}: labels differ from the series'")
    straight = ScanParameters(shape, pixel, placed.origin_angstrom, placed.rotation_deg)
    clean = column_pixels(positions, straight, probe=probe)
    inside = _inside(clean, shape)  # the columns of the clean image's field
    visible = clean[inside & visible_columns]
    faint = clean[inside & ~visible_columns]
    return np.round(visible, 4).tolist(), np.round(faint, 4).tolist()


def predict_axis(model: Any, axis: str, seeds: list[int]) -> list[dict[str, Any]]:
    """Run ``model`` on every image of the SrTiO3 ``axis`` series; keep what scoring needs."""
    probe = ProbeParameters()
    shape = PRESETS["standard"].shape
    rows = []
    for image in material_series(MATERIAL, axis, steps=MATERIALS[MATERIAL].steps[axis],
                                 seeds=seeds, backend=FastHAADF(probe), probe=probe, shape=shape):
        meta = image.metadata
        row = {"image_id": image.image_id, "series": axis, "step": int(meta["step"]),
               "seed": int(meta["seed"]), "axis_value": float(meta["axis_value"]),
               "dose_e_per_A2": float(meta["dose_e_per_A2"]), "pixel_size": image.pixel_size,
               "shape": list(image.image.shape),
               "predicted": np.round(model.locate(image.image, image.pixel_size), 3).tolist(),
               "truth": np.round(image.coords, 4).tolist(), "types": list(image.column_types),
               "faint": np.round(image.faint_coords, 4).tolist()}
        if axis in ("drift", "flyback"):
            value = float(meta["drift"] if axis == "drift" else meta["flyback"])
            row["truth_paper"], row["faint_paper"] = _undistorted_labels(
                axis, row["step"], row["seed"], value, probe, shape, image)
        rows.append(row)
    return rows


def predict_gamma_contrast(model: Any, seeds: list[int]) -> list[dict[str, Any]]:
    """The contrast series' targets reached by a gamma curve instead of a constant offset.

    ``contrast = 1 - (min / max) ** gamma`` of the clean reference (step 0 of the contrast
    series, labels unchanged); a target at or above the clean image's contrast keeps it.
    """
    probe = ProbeParameters()
    shape = PRESETS["standard"].shape
    clean_images = [image for image in material_series(
        MATERIAL, "contrast", steps=MATERIALS[MATERIAL].steps["contrast"][:1], seeds=seeds,
        backend=FastHAADF(probe), probe=probe, shape=shape) if image.metadata["step"] == 0]
    rows = []
    for image in clean_images:
        clean = image.raw.astype(np.float64)
        ratio = float(clean.min() / clean.max())
        for step, target in enumerate([1.0, *MATERIALS[MATERIAL].steps["contrast"]]):
            if step and target >= 1 - ratio:
                continue  # not below the clean image's contrast: the clean image is step 0
            gamma = np.log1p(-target) / np.log(ratio) if step else 1.0
            shown = deg.apply_gamma(clean, gamma=gamma)
            rows.append({"image_id": f"{image.image_id}:gamma{step:02d}", "series": "contrast",
                         "step": step, "seed": int(image.metadata["seed"]),
                         "axis_value": deg.contrast(shown), "pixel_size": image.pixel_size,
                         "shape": list(shape), "gamma": float(gamma),
                         "predicted": np.round(model.locate(shown, image.pixel_size),
                                               3).tolist(),
                         "truth": np.round(image.coords, 4).tolist(),
                         "faint": np.round(image.faint_coords, 4).tolist()})
    return rows


def scored(rows: list[dict[str, Any]], info: dict[str, str], *, paper_labels: bool,
           mode: str = "one-to-one") -> list[dict[str, Any]]:
    """Score records of the cached predictions under one rule."""
    records = []
    for row in rows:
        truth = row.get("truth_paper", row["truth"]) if paper_labels else row["truth"]
        faint = row.get("faint_paper", row["faint"]) if paper_labels else row["faint"]
        score = score_image(np.reshape(row["predicted"], (-1, 2)), np.reshape(truth, (-1, 2)),
                            pixel_size=row["pixel_size"], image_shape=row["shape"],
                            image_id=row["image_id"], mode=mode,  # type: ignore[arg-type]
                            faint=np.reshape(faint, (-1, 2))).to_dict()
        records.append({**info, "group": "SrTiO3-simulated", "series": row["series"],
                        "step": row["step"], "seed": row["seed"],
                        "axis_value": row["axis_value"], "image_id": row["image_id"],
                        **{k: score[k] for k in _SCORES}})
    return records


def evidence(predictions: dict[str, list[dict[str, Any]]], noise_cutoff: dict[str, Any],
             dose_cutoff: dict[str, Any]) -> dict[str, Any]:
    """The numbers behind the explanations in docs/paper-findings.md."""
    contrast = predictions["contrast"]
    shifts = []
    for row in contrast:
        clean = next(r for r in contrast if r["seed"] == row["seed"] and r["step"] == 0)
        a, b = np.reshape(row["predicted"], (-1, 2)), np.reshape(clean["predicted"], (-1, 2))
        shifts.append(float(np.abs(np.sort(a, axis=0) - np.sort(b, axis=0)).max())
                      if len(a) == len(b) else float("inf"))
    noise = sorted((r for r in predictions["noise"] if r["step"] > 0),
                   key=lambda r: r["dose_e_per_A2"])
    doses = np.log10([r["dose_e_per_A2"] for r in noise])
    psnr = [r["axis_value"] for r in noise]
    pixel = noise[0]["pixel_size"]
    by_type: dict[str, list[float]] = {}
    for row in predictions["resolution"]:
        score = score_image(np.reshape(row["predicted"], (-1, 2)),
                            np.reshape(row["truth"], (-1, 2)), pixel_size=row["pixel_size"],
                            image_shape=row["shape"], image_id=row["image_id"],
                            column_types=row["types"], faint=np.reshape(row["faint"], (-1, 2)))
        for name, part in score.by_type.items():
            by_type.setdefault(f"{row['axis_value']:.0f} pm {name}", []).append(part.recall)
    dose = dose_cutoff["value"]
    return {
        "contrast: most any prediction moves between the clean image and an offset step (px)":
            max(shifts),
        "noise: our PSNR (dB) at the paper's SrTiO3 doses 271 and 6514 e-/A^2":
            [round(float(np.interp(np.log10(d), doses, psnr)), 2) for d in (271.0, 6514.0)],
        "noise: expected electrons at the brightest pixel at our PSNR cutoff":
            None if dose is None else round(dose * pixel**2, 2),
        "noise: our PSNR cutoff (dB) and dose cutoff (e-/A^2)": [noise_cutoff["value"], dose],
        "resolution: mean recall per column type": {k: round(float(np.mean(v)), 3)
                                                   for k, v in sorted(by_type.items())},
    }


def _finite(value: float) -> float | None:
    """Rounded for the summary; an infinite value (the PSNR of a noise-free image) is None."""
    return round(float(value), 4) if np.isfinite(value) else None


def cutoff_table(records: list[dict[str, Any]]) -> dict[str, Any]:
    """PCHIP cutoffs of the records and the per-step means over seeds, keyed by axis."""
    cutoffs = compute_cutoffs(records, bootstrap=0, methods=("pchip",), progress=False)
    table = {}
    for c in cutoffs:
        rows = [r for r in records if r["series"] == c.axis]
        means = []
        for step in sorted({r["step"] for r in rows}):
            at = [r for r in rows if r["step"] == step]
            rms = [r["rms_angstrom"] for r in at if r["rms_angstrom"] is not None
                   and np.isfinite(r["rms_angstrom"])]
            means.append([_finite(np.mean([r[k] for r in at]))
                          for k in ("axis_value", "recall", "precision")]
                         + [_finite(np.mean(rms)) if rms else None])
        table[c.axis] = {"value": c.value, "status": c.status, "criterion": c.criterion,
                         "step_means [axis_value, recall, precision, rms_angstrom]": means}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, required=True,
                        help="cache of the predictions and the scores (JSON, large)")
    parser.add_argument("--summary", type=Path, default=None,
                        help="cutoffs and per-step means only (JSON, for the docs)")
    args = parser.parse_args()
    model = load_model("atomnet-cubic", weights=str(args.weights))
    info = {"model": "atomnet-cubic-published", "model_version": model.info.version,
            "weights_sha256": model.info.weights_sha256 or ""}
    key = {"weights_sha256": info["weights_sha256"], "generator_version": GENERATOR_VERSION,
           "seeds": args.seeds}
    cached: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if {k: cached.get(k) for k in key} != key:
        cached = {**key, "predictions": {}}
    for axis in AXES:
        if axis not in cached["predictions"]:
            cached["predictions"][axis] = predict_axis(model, axis, args.seeds)
    if "contrast_gamma" not in cached["predictions"]:
        cached["predictions"]["contrast_gamma"] = predict_gamma_contrast(model, args.seeds)
    rows = [row for axis in AXES for row in cached["predictions"][axis]]
    noise = [r for r in rows if r["series"] == "noise"]
    dose = [{**r, "series": "dose", "axis_value": r["dose_e_per_A2"]} for r in noise]
    table = {
        "ours": cutoff_table(scored(rows, info, paper_labels=False)),
        "paper labels": cutoff_table(scored(rows, info, paper_labels=True)),
        "paper rule": cutoff_table(scored(rows, info, paper_labels=True, mode="legacy")),
        "dose": cutoff_table(scored(dose, info, paper_labels=False)),
        "gamma": cutoff_table(scored(cached["predictions"]["contrast_gamma"], info,
                                     paper_labels=False)),
    }
    cached["cutoffs"] = table
    cached["evidence"] = evidence(cached["predictions"], table["ours"]["noise"],
                                  table["dose"]["dose"])
    args.out.write_text(json.dumps(cached) + "\n")
    if args.summary is not None:
        args.summary.write_text(json.dumps({**key, "weights": args.weights.name,
                                            "cutoffs": table, "evidence": cached["evidence"]},
                                           indent=1, allow_nan=False) + "\n")
    for variant, cutoffs in table.items():
        for axis, cutoff in cutoffs.items():
            value = "-" if cutoff["value"] is None else f"{cutoff['value']:.4g}"
            print(f"{variant:12s} {axis:10s} {cutoff['status']:12s} {value:>8s} "
                  f"({cutoff['criterion']})")
    for what, value in cached["evidence"].items():
        print(f"{what}: {value}")


if __name__ == "__main__":
    main()
