"""Accuracy of the assessment estimators on benchmark images whose true values are known.

Builds a dataset with :func:`stembench.dataset_publish.build.build_dataset` into a temporary
folder, estimates every axis of every series image from the image alone, and prints per-axis
errors (median and worst; relative for atoms/100 px and resolution, dB for PSNR, absolute
otherwise) over all images and over the clean-to-moderate range (the worst step of each
series left out; PSNR also restricted to >= 5 dB). Images whose lattice is not found are
counted as failures.

    python bench/bench_assess.py [--preset mini|standard] [--seeds N] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from stembench.client.assess.assessment import raw_estimates
from stembench.dataset_publish.build import build_dataset
from stembench.dataset_publish.storage import open_dataset
from stembench.errors import StembenchError

TRUTH = {"pixel_size": "atoms_per_100px", "resolution": "resolution_pm", "noise": "psnr_db",
         "contrast": "contrast", "flyback": "flyback", "drift": "drift"}
RELATIVE = {"pixel_size", "resolution"}
TARGETS = {"pixel_size": "15 %", "resolution": "15 %", "noise": "2 dB"}


def collect(preset: str, seeds: int | None) -> list[dict[str, Any]]:
    """One row per series image: true and estimated values of every axis."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = build_dataset(Path(folder) / "bench.h5", preset=preset,  # type: ignore[arg-type]
                             seeds=seeds, progress=False)
        dataset = open_dataset(path)
        ids = [i for i in dataset.ids if not i.startswith("generality")]
        last_step = max(int(dataset[i].metadata["step"]) for i in ids)
        for image_id in tqdm(ids, desc="assessing"):
            image = dataset[image_id]
            meta = image.metadata
            row: dict[str, Any] = {"id": image_id, "series": meta["series"],
                                   "step": int(meta["step"]), "last_step": last_step,
                                   "truth": {a: float(meta[f]) for a, f in TRUTH.items()}}
            try:
                _, values, _ = raw_estimates(np.asarray(image.image, np.float64),
                                             pixel_size_angstrom=image.pixel_size,
                                             name=image_id)
                row["estimate"] = values
            except StembenchError as exc:
                row["error"] = str(exc)
            rows.append(row)
    return rows


def _relevant(axis: str, row: dict[str, Any], moderate: bool) -> bool:
    truth = row["truth"][axis]
    if not math.isfinite(truth):
        return False
    if axis in ("noise", "flyback", "drift") and row["series"] != axis:
        return False
    if moderate and row["series"] == axis and row["step"] == row["last_step"]:
        return False
    return not (moderate and axis == "noise" and truth < 5.0)


def error_table(rows: list[dict[str, Any]], *, moderate: bool) -> dict[str, dict[str, Any]]:
    """Per axis: number of images, failures, median and worst error."""
    table = {}
    for axis in TRUTH:
        chosen = [r for r in rows if _relevant(axis, r, moderate)]
        errors = []
        failures = 0
        for row in chosen:
            value = row.get("estimate", {}).get(axis, math.nan)
            if not math.isfinite(value):
                failures += 1
                continue
            truth = row["truth"][axis]
            errors.append(abs(value / truth - 1) * 100 if axis in RELATIVE else abs(value - truth))
        arr = np.asarray(errors)
        table[axis] = {"n": len(chosen), "failed": failures,
                       "median": float(np.median(arr)) if arr.size else math.nan,
                       "worst": float(arr.max()) if arr.size else math.nan,
                       "unit": "%" if axis in RELATIVE else ("dB" if axis == "noise" else "abs")}
    return table


def print_table(title: str, table: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    print("| axis | images | no lattice | median error | worst error | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    for axis, row in table.items():
        unit = row["unit"] if row["unit"] != "abs" else ""
        print(f"| {axis} | {row['n']} | {row['failed']} | {row['median']:.2f} {unit} | "
              f"{row['worst']:.2f} {unit} | {TARGETS.get(axis, '-')} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mini", choices=("mini", "standard"))
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = collect(args.preset, args.seeds)
    tables = {"all": error_table(rows, moderate=False),
              "clean-to-moderate": error_table(rows, moderate=True)}
    print_table(f"{args.preset}: all series images", tables["all"])
    print_table(f"{args.preset}: clean-to-moderate (worst step left out, PSNR >= 5 dB)",
                tables["clean-to-moderate"])
    worst = sorted((r for r in rows if "error" in r), key=lambda r: r["id"])
    print(f"\nno lattice found in {len(worst)} image(s): " + ", ".join(r["id"] for r in worst))
    if args.json:
        args.json.write_text(json.dumps({"tables": tables, "rows": rows}, indent=1,
                                        default=float) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
