"""How far the twin fit's quality estimates lie from the truth, on development lattices only.

The development images (``bench_assess_twin.py --set development`` and ``--set complex``'s
lattices, and here also doses between and below theirs) are Poisson counts of a known
noise-free image, so the truth of each twin parameter is known:

* **noise**: the variance of Poisson counts is their mean, so the fitted noise variance
  averaged over the pixels, ``gain * mean + read_variance``, is the mean count (ratio 1);
* **amplitudes, width, background**: the same column model fitted (same code) to the noise-free
  image at the exact column positions: the best a fit can do, so any difference is the noise's;
* **positions**: the exact positions (RMS distance of each twin column to its true column).

It reports, per dose (median over the lattices), the ratio of fitted to reference amplitude
(median over the labelled columns matched), their spread (standard deviation over the mean
reference amplitude) against the reference's, the ratios of fitted to reference width and
background mean and of fitted to true noise variance, and the positions' RMS error, px.

Run: ``cd bench && PYTHONPATH=../src python twin_bias.py [--doses 150,300,600,5000]
[--out results/twin_bias.json]``. Never run on a held-out set or the benchmark.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree


def reference_fit(raw: np.ndarray, truth: np.ndarray, grid: tuple[int, int], start: float
                  ) -> tuple[np.ndarray, float, np.ndarray]:
    """Amplitudes, width and background of the column model fitted to the noise-free image
    at the exact positions (the width searched from half to twice ``start``, px)."""
    from stembench.client.assess.twin.fit import _shared_width, _solve

    sigma = _shared_width(raw, truth, start)
    coef, _, _ = _solve(raw, truth, sigma, grid, np.arange(raw.size))
    return coef[:len(truth)], sigma, coef[len(truth):]


def measure(image, name: str) -> dict:
    """Fitted twin parameters of ``image`` against the truth."""
    from stembench.client.assess.assessment import assess_image
    from stembench.client.assess.twin.fit import fit_twin

    assessment = assess_image(image.image, pixel_size_angstrom=image.pixel_size, name=name)
    fit = fit_twin(image.image, pixel_size=image.pixel_size, assessment=assessment, name=name)
    model = fit.model
    raw = np.asarray(image.raw, np.float64)
    truth = np.asarray(image.coords, np.float64)
    ref_amp, ref_sigma, ref_bg = reference_fit(raw, truth, model.background.shape,
                                               float(np.median(model.sigma_px)))
    distance, index = cKDTree(truth).query(model.xy_px)
    near = distance <= 0.25 * float(np.median(cKDTree(truth).query(truth, k=2)[0][:, 1]))
    near &= model.labelled
    ratio = model.amplitude[near] / np.maximum(ref_amp[index[near]], 1e-9)
    return {"image": name, "n": int(near.sum()), "of": len(truth),
            "amp_ratio": float(np.median(ratio)) if near.any() else None,
            "amp_spread": float(np.std(model.amplitude[near]) / np.mean(ref_amp[index[near]]))
            if near.any() else None,
            "ref_amp_spread": float(np.std(ref_amp[index[near]]) / np.mean(ref_amp[index[near]]))
            if near.any() else None,
            "sigma_ratio": float(np.median(model.sigma_px) / ref_sigma),
            "bg_ratio": float(np.mean(model.background) / np.mean(ref_bg)),
            "gain": model.gain, "read_variance": model.read_variance,
            "mean_counts": float(raw.mean()),
            "noise_ratio": (model.gain * float(raw.mean()) + model.read_variance)
            / float(raw.mean()),
            "pos_rms_px": float(np.sqrt(np.mean(distance[near] ** 2))) if near.any() else None}


def main() -> None:
    from bench_assess_twin import lattices
    from stembench.client.assess.validation import Condition, lattice_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doses", default="150,300,600,5000")
    parser.add_argument("--set", default="development", choices=("development", "complex"))
    parser.add_argument("--only", default="")
    parser.add_argument("--out", type=Path, default=Path("twin-bias.json"))
    args = parser.parse_args()
    rows = []
    for name, lat in lattices(args.set).items():
        if args.only and name not in args.only.split(","):
            continue
        for dose in (float(d) for d in args.doses.split(",")):
            condition = Condition(f"dose{dose:g}", 10.0, dose, 0.5)
            image = lattice_image(lat, name, condition, shape=(256, 256), seed=0)
            try:
                row = measure(image, f"{name} {condition.name}")
            except Exception as exc:  # a refusal is listed, never dropped
                row = {"image": f"{name} {condition.name}", "error": str(exc)}
            row["dose"] = dose
            rows.append(row)
            print(json.dumps(row), flush=True)
            args.out.write_text(json.dumps(rows, indent=1))
    for dose in sorted({r["dose"] for r in rows}):
        ok = [r for r in rows if r["dose"] == dose and r.get("amp_ratio") is not None]
        print(f"dose {dose:g}: " + "; ".join(
            f"{key} {np.median([r[key] for r in ok]):.3f}"
            for key in ("amp_ratio", "amp_spread", "ref_amp_spread", "sigma_ratio", "bg_ratio",
                        "noise_ratio", "pos_rms_px")))


if __name__ == "__main__":
    main()
