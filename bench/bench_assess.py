"""Accuracy of the assessment estimators on benchmark images whose true values are known.

Builds a dataset with
:func:`stembench.dataset_publish.simulate.build.build_dataset` into a temporary folder
(or reads one given with ``--dataset``), assesses every series image from the image alone
(:func:`stembench.client.assess.assessment.assess_image`, with uncertainties) and prints
per-axis errors: median and worst, relative for atoms/100 px and resolution, dB for PSNR,
absolute otherwise, and the coverage (fraction of errors within one sigma). Images the
assessment refuses (no lattice, too few cells) count as failures of every axis.

The clean-to-moderate range, over which the targets hold, is defined per image:

* PSNR >= 8 dB (noise-free images count): below it the averaged unit cell of SrTiO3 picks
  up noise columns and the column width is unreliable;
* resolution <= 170 pm: beyond it the probe FWHM exceeds ~0.6 of the column spacing of both
  materials (SrTiO3 2.76 A, WS2 1.82 A), only first-order reflections survive, and a column's
  width can no longer be told from the image alone;
* at least 4 periods of the crystal's primitive lattice across the image's shorter side (the
  assessment refuses images with fewer);
* fly-back <= 1 px and drift <= 0.04 px per line: the random-walk drift of larger steps
  smears the averaged unit cell of WS2 enough to add spurious columns.

Each axis is scored on the images that vary it or leave it at its clean value (PSNR, fly-back
and drift only on their own series: elsewhere their truth is infinite or zero).

    python bench/bench_assess.py [--preset mini|standard] [--dataset FILE.h5] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from stembench.client.assess.assessment import assess_image
from stembench.dataset_publish.simulate.build import build_dataset
from stembench.dataset_publish.simulate.structures import lattice
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.errors import StembenchError

TRUTH = {"pixel_size": "atoms_per_100px", "resolution": "resolution_pm", "noise": "psnr_db",
         "contrast": "contrast", "flyback": "flyback", "drift": "drift"}
RELATIVE = {"pixel_size", "resolution"}
TARGETS = {"pixel_size": "15 %", "resolution": "15 %", "noise": "2 dB"}
#: Limits of the clean-to-moderate range (see the module docstring).
MODERATE = {"min_psnr_db": 8.0, "max_resolution_pm": 170.0, "min_cells": 4.0,
            "max_flyback_px": 1.0, "max_drift": 0.04}


def cells_across(meta: Mapping[str, Any], side_px: int) -> float:
    """Periods of the material's primitive lattice across ``side_px`` pixels."""
    lat = lattice(str(meta["material"]))
    period = min(math.hypot(*lat.a1), math.hypot(*lat.a2))
    return side_px * float(meta["pixel_size_angstrom"]) / period


def is_moderate(row: dict[str, Any]) -> bool:
    """Whether an image lies in the clean-to-moderate range."""
    truth = row["truth"]
    return bool(truth["noise"] >= MODERATE["min_psnr_db"]
                and truth["resolution"] <= MODERATE["max_resolution_pm"]
                and row["cells"] >= MODERATE["min_cells"]
                and truth["flyback"] <= MODERATE["max_flyback_px"]
                and truth["drift"] <= MODERATE["max_drift"])


def _assess_dataset(path: Path) -> list[dict[str, Any]]:
    dataset = open_dataset(path)
    ids = [i for i in dataset.ids if not i.startswith("generality")]
    rows = []
    for image_id in tqdm(ids, desc="assessing"):
        image = dataset[image_id]
        meta = image.metadata
        pixels = np.asarray(image.image, np.float64)
        row: dict[str, Any] = {"id": image_id, "series": meta["series"],
                               "step": int(meta["step"]),
                               "cells": cells_across(meta, min(pixels.shape)),
                               "truth": {a: float(meta[f]) for a, f in TRUTH.items()}}
        try:
            result = assess_image(pixels, pixel_size_angstrom=image.pixel_size, name=image_id)
        except StembenchError as exc:
            row["error"] = str(exc)
        else:
            row["estimate"] = {a: e.value for a, e in result.estimates.items()}
            row["sigma"] = {a: e.uncertainty for a, e in result.estimates.items()}
        rows.append(row)
    return rows


def collect(preset: str, dataset: Path | None) -> list[dict[str, Any]]:
    """One row per series image: true values, estimates and their uncertainties."""
    if dataset is not None:
        return _assess_dataset(dataset)
    with tempfile.TemporaryDirectory() as folder:
        path = build_dataset(Path(folder) / "bench.h5", preset=preset,  # type: ignore[arg-type]
                             progress=False)
        return _assess_dataset(path)


def _relevant(axis: str, row: dict[str, Any], moderate: bool) -> bool:
    if not math.isfinite(row["truth"][axis]):
        return False
    if axis in ("noise", "flyback", "drift") and row["series"] != axis:
        return False
    return is_moderate(row) if moderate else True


def axis_error(axis: str, row: dict[str, Any]) -> float:
    """Error of the estimate of ``axis`` (percent for RELATIVE axes); NaN when refused."""
    value = row.get("estimate", {}).get(axis, math.nan)
    truth = row["truth"][axis]
    if not math.isfinite(value):
        return math.nan
    return (value / truth - 1) * 100 if axis in RELATIVE else value - truth


def error_table(rows: list[dict[str, Any]], *, moderate: bool) -> dict[str, dict[str, Any]]:
    """Per axis: images, failures, median and worst absolute error, one-sigma coverage."""
    table = {}
    for axis in TRUTH:
        chosen = [r for r in rows if _relevant(axis, r, moderate)]
        errors, covered = [], []
        for row in chosen:
            error = axis_error(axis, row)
            if not math.isfinite(error):
                continue
            errors.append(abs(error))
            sigma = row["sigma"][axis]
            if axis in RELATIVE:
                sigma = sigma / row["truth"][axis] * 100
            covered.append(abs(error) <= sigma)
        arr = np.asarray(errors)
        table[axis] = {"n": len(chosen), "failed": len(chosen) - len(errors),
                       "median": float(np.median(arr)) if arr.size else math.nan,
                       "worst": float(arr.max()) if arr.size else math.nan,
                       "coverage": float(np.mean(covered)) if covered else math.nan,
                       "unit": "%" if axis in RELATIVE else ("dB" if axis == "noise" else "")}
    return table


def print_table(title: str, table: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    print("| axis | images | refused | median error | worst error | within 1 sigma | target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for axis, row in table.items():
        unit = row["unit"]
        print(f"| {axis} | {row['n']} | {row['failed']} | {row['median']:.2f} {unit} | "
              f"{row['worst']:.2f} {unit} | {row['coverage']:.0%} | "
              f"{TARGETS.get(axis, '-')} |")


def print_worst(rows: list[dict[str, Any]], *, count: int = 4) -> None:
    """The largest errors per target axis outside the clean-to-moderate range."""
    print("\nlargest errors outside the clean-to-moderate range")
    for axis in TARGETS:
        outside = [(abs(axis_error(axis, r)), r["id"]) for r in rows
                   if _relevant(axis, r, False) and not is_moderate(r)
                   and math.isfinite(axis_error(axis, r))]
        worst = sorted(outside, reverse=True)[:count]
        print(f"  {axis}: " + ", ".join(f"{i} {e:.1f}" for e, i in worst))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mini", choices=("mini", "standard"))
    parser.add_argument("--dataset", type=Path, default=None,
                        help="an existing dataset .h5 to assess instead of building one")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = collect(args.preset, args.dataset)
    name = args.dataset.name if args.dataset else args.preset
    tables = {"all": error_table(rows, moderate=False),
              "clean-to-moderate": error_table(rows, moderate=True)}
    print_table(f"{name}: all series images", tables["all"])
    limits = ", ".join(f"{k} {v:g}" for k, v in MODERATE.items())
    print_table(f"{name}: clean-to-moderate ({limits})", tables["clean-to-moderate"])
    print_worst(rows)
    refused = sorted(r["id"] for r in rows if "error" in r)
    print(f"\nrefused {len(refused)} image(s): " + ", ".join(refused))
    if args.json:
        args.json.write_text(json.dumps({"moderate": MODERATE, "tables": tables, "rows": rows},
                                        indent=1, default=float) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
