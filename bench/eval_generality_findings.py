"""Scores of one model on the generality images behind two published findings.

Usage::

    .venv/bin/python bench/eval_generality_findings.py MODEL [--weights FILE] [--dataset FILE]
        [--out results.json]

MODEL is a registry name (``atomsegnet``, ``atomnet-cubic``, ``atomnet-hexagonal``...). The
images are the generality images of the dataset whose structure has closely spaced dumbbells
(``GaAs[110]``, ``Si[110]``: overlapping intensity peaks) or a thickness gradient, step or bump
(strong contrast variation across the field). Each is scored with
``stembench.scoring.score_image`` (one-to-one, 0.5 A, border 6 px, faint columns not
scored, as the benchmark scores); without ``--dataset`` the standard preset's generality images
are rendered in memory (the images ``build_dataset`` writes). The recall, precision and
RMS of every image are printed and written as JSON.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.simulate.build import GENERALITY_NAMES, PRESETS, generality_images
from stembench.dataset_publish.simulate.fast_backend import FastHAADF
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.endpoints.models.registry import load_model
from stembench.scoring import score_image

FINDINGS = {"overlapping columns": ("GaAs[110]", "Si[110]"),
            "contrast variation": ("thickness",)}


def _generality_images(dataset: Path | None) -> Iterator[BenchmarkImage]:
    """The generality images of a dataset file, or those the standard preset builds."""
    if dataset is None:
        probe = ProbeParameters()
        yield from generality_images(GENERALITY_NAMES, backend=FastHAADF(probe), probe=probe,
                                     shape=PRESETS["standard"].shape)
        return
    with open_dataset(dataset, verify=False) as opened:
        for image_id in opened.ids:
            if image_id.startswith("generality:"):
                yield opened[image_id]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--weights", type=Path, default=None, help="default: shipped weights")
    parser.add_argument("--dataset", type=Path, default=None,
                        help="default: render the standard preset's generality images in memory")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    model = load_model(args.model, **({"weights": str(args.weights)} if args.weights else {}))
    rows = []
    for image in _generality_images(args.dataset):
        structure = image.image_id.split(":")[1]
        finding = next((f for f, keys in FINDINGS.items()
                        if any(k in structure for k in keys)), None)
        if finding is None:
            continue
        found = model.locate(image.image, image.pixel_size)
        score = score_image(found, image.coords, pixel_size=image.pixel_size,
                            image_shape=image.image.shape, image_id=image.image_id,
                            faint=image.faint_coords)
        rows.append({"finding": finding, "image_id": image.image_id,
                     "recall": round(score.recall, 4), "precision": round(score.precision, 4),
                     "rms_angstrom": round(score.rms_angstrom, 4)})
        print(json.dumps(rows[-1]))
    if args.out is not None:
        args.out.write_text(json.dumps({"model": args.model, "weights_sha256":
                                        model.info.weights_sha256, "images": rows}, indent=1))


if __name__ == "__main__":
    main()
