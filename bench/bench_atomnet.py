"""AtomNet: scores on the clean reference images, prediction figures, and CPU throughput.

Usage::

    .venv/bin/python bench/bench_atomnet.py [--runs 5] [--weights-dir DIR] [--skip-speed]

1. Scores each shipped network on the clean reference image of its material (cubic on
   SrTiO3[100], hexagonal on WS2; 256x256, fast backend, the series module's reference pixel
   size, seed 0) with ``stembench.scoring.score_image`` (one-to-one, 0.5 A).
2. Draws the predictions on the images: ``docs/figures/model_atomnet_<variant>.png``.
3. Times ``AtomNet.locate_batch`` (network and post-processing) on batches of 4 images at
   256x256 and 1024x1024: images per second, the median of ``--runs`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import matplotlib
import numpy as np

from stembench.dataset_publish.simulate.series import reference_image
from stembench.endpoints.models.atomnet import AtomNet
from stembench.scoring import score_image

matplotlib.use("Agg")
import matplotlib.pyplot as plt

MATERIAL = {"cubic": "SrTiO3[100]", "hexagonal": "WS2"}
FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"


def evaluate(variant: str, weights: Path | None) -> dict[str, float]:
    """Score ``variant`` on its reference image and save the figure."""
    model = AtomNet(variant, weights)  # type: ignore[arg-type]
    ref = reference_image(MATERIAL[variant])
    found = model.locate(ref.image, ref.pixel_size)
    score = score_image(
        found,
        ref.coords,
        pixel_size=ref.pixel_size,
        image_shape=ref.image.shape,
        image_id=ref.image_id,
    )
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(ref.image, cmap="gray")
    ax.plot(
        ref.coords[:, 0], ref.coords[:, 1], "o", mfc="none", mec="lime", ms=9, label="ground truth"
    )
    ax.plot(found[:, 0], found[:, 1], "r+", ms=8, label="AtomNet")
    ax.set_title(
        f"atomnet-{variant} on {ref.image_id}\nrecall {score.recall:.3f}, "
        f"precision {score.precision:.3f}, "
        f"RMS {score.rms_angstrom:.3f} A",
        fontsize=9,
    )
    ax.legend(loc="lower right", fontsize=8)
    ax.set_axis_off()
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / f"model_atomnet_{variant}.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return {
        "image_id": ref.image_id,
        "recall": score.recall,
        "precision": score.precision,
        "rms_angstrom": score.rms_angstrom,
        "n_truth": score.n_truth,
        "n_predicted": score.n_predicted,
    }


def images_per_second(
    variant: str, weights: Path | None, size: int, runs: int, batch: int = 4
) -> float:
    """Median images per second of ``locate_batch`` on ``batch`` random images of ``size``."""
    model = AtomNet(variant, weights, batch_size=batch)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    images = [rng.random((size, size)).astype(np.float32) for _ in range(batch)]
    model.locate_batch(images, [0.1] * batch)  # warm-up: traces the graph for this shape
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        model.locate_batch(images, [0.1] * batch)
        rates.append(batch / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--weights-dir", type=Path, default=None)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict[str, object]] = {}
    for variant in ("cubic", "hexagonal"):
        weights = (args.weights_dir / f"atomnet-{variant}.keras") if args.weights_dir else None
        results[variant] = {"reference": evaluate(variant, weights)}
        if not args.skip_speed:
            for size in (256, 1024):
                rate = images_per_second(variant, weights, size, args.runs)
                results[variant][f"images_per_s_{size}"] = round(rate, 3)
        print(json.dumps({variant: results[variant]}), flush=True)


if __name__ == "__main__":
    main()
