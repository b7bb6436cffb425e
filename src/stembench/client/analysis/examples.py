"""Synthetic score records that resemble the published cutoffs, for examples and demos.

The curves are smooth logistic steps plus seed noise, built so that the per-step mean
crosses the benchmark thresholds near the published notebook cutoffs of AtomSegNet and
AtomNet (``docs/paper-notes.md``). They are *not* measurements. Dose was not in the
published cutoff table; its SrTiO3 cutoffs here are illustrative only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from stembench.client.analysis.axes import AXES
from stembench.client.analysis.cutoffs import compute_cutoffs
from stembench.client.analysis.failures import plot_failure
from stembench.client.analysis.radar import plot_radar
from stembench.client.analysis.trends import plot_trends

__all__ = [
    "PUBLISHED_CUTOFFS",
    "TESTED_RANGES",
    "failure_example",
    "published_like_records",
    "write_example_figures",
]

TESTED_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "SrTiO3-simulated": {
        "pixel_size": (2.8, 15.7),
        "contrast": (1.0, 0.005),
        "noise": (18.3, 3.9),
        "resolution": (128.0, 206.0),
        "flyback": (0.0, 2.5),
        "drift": (0.0, 0.18),
        "dose": (6514.0, 271.0),
    },
    "WS2-simulated": {
        "pixel_size": (5.4, 19.0),
        "noise": (27.6, 2.0),
        "resolution": (106.0, 301.0),
        "flyback": (0.5, 3.9),
        "drift": (0.02, 0.30),
    },
}
"""(clean end, worse end) of each simulated series, from the published dataset."""

PUBLISHED_CUTOFFS: dict[str, dict[str, dict[str, float | None]]] = {
    "SrTiO3-simulated": {
        "AtomSegNet": {
            "pixel_size": 8.3,
            "contrast": None,
            "noise": 14.3,
            "resolution": 147.8,
            "flyback": 1.16,
            "drift": 0.104,
            "dose": 900.0,
        },
        "AtomNet": {
            "pixel_size": None,
            "contrast": 0.23,
            "noise": 5.5,
            "resolution": 194.3,
            "flyback": 2.17,
            "drift": 0.165,
            "dose": 450.0,
        },
    },
    "WS2-simulated": {
        "AtomSegNet": {
            "pixel_size": 9.83,
            "noise": 16.3,
            "resolution": 261.2,
            "flyback": 1.89,
            "drift": 0.139,
        },
        "AtomNet": {
            "pixel_size": 13.9,
            "noise": 5.87,
            "resolution": 271.4,
            "flyback": 3.82,
            "drift": 0.284,
        },
    },
}
"""Published notebook cutoffs (None = not reached); dose values are illustrative."""

_RMS_DRIVEN = ("flyback", "drift")
_LOG_NINE = math.log(9.0)


def _record(
    model: str,
    group: str,
    series: str,
    step: int,
    value: float,
    seed: int,
    recall: float,
    precision: float,
    rms: float,
) -> dict[str, Any]:
    n_truth = 400
    tp = round(recall * n_truth)
    fp = round(tp / precision) - tp if precision > 0 else 0
    return {
        "model": model,
        "model_version": "1.0",
        "weights_sha256": f"{abs(hash(model)):064x}"[:64],
        "group": group,
        "series": series,
        "step": step,
        "axis_value": value,
        "seed": seed,
        "image_id": f"{group}/{series}/{step:02d}/{seed}",
        "recall": recall,
        "precision": precision,
        "f1": 2 * recall * precision / (recall + precision),
        "rms_angstrom": rms,
        "tp": tp,
        "fp": fp,
        "fn": n_truth - tp,
    }


def published_like_records(
    *, n_steps: int = 8, n_seeds: int = 3, noise: float = 0.012, seed: int = 0
) -> list[dict[str, Any]]:
    """Score records whose cutoffs sit near the published ones.

    Pixel size, contrast, noise, resolution and dose curves fail by recall (a logistic drop
    crossing 0.90 at the cutoff); fly-back and drift fail by RMS (a logistic rise crossing
    0.30 angstrom). "Not reached" curves drop only beyond the tested range. Also adds twelve
    ``"generality"`` images per model.

    Parameters
    ----------
    n_steps, n_seeds : int, optional
        Steps per series and seeds per step.
    noise : float, optional
        Standard deviation of the Gaussian seed noise on every metric.
    seed : int, optional
        Seed of the random generator.
    """
    rng = np.random.default_rng(seed)
    records = []
    for group, models in PUBLISHED_CUTOFFS.items():
        for model, cutoffs in models.items():
            for series, cutoff in cutoffs.items():
                axis = AXES[series]
                clean, worst = (axis.badness(v) for v in TESTED_RANGES[group][series])
                width = (worst - clean) / 10.0
                crossing = worst + 3.0 * width if cutoff is None else axis.badness(cutoff)
                for step, badness in enumerate(np.linspace(clean, worst, n_steps)):
                    for realisation in range(n_seeds):
                        jitter = rng.normal(0.0, noise, 3)
                        if series in _RMS_DRIVEN:
                            middle = crossing + 0.241 * width
                            recall = 0.985
                            rms = 0.08 + 0.5 * float(expit((badness - middle) / width))
                        else:
                            middle = crossing + _LOG_NINE * width
                            recall = float(expit(-(badness - middle) / width))
                            rms = 0.08 + 0.1 * (1.0 - recall)
                        records.append(
                            _record(
                                model,
                                group,
                                series,
                                step,
                                axis.from_badness(float(badness)),
                                realisation,
                                float(np.clip(recall + jitter[0], 0.0, 1.0)),
                                float(np.clip(0.985 + jitter[1], 0.0, 1.0)),
                                max(rms + jitter[2], 0.0),
                            )
                        )
    for model, (recall, precision) in {"AtomSegNet": (0.84, 0.98), "AtomNet": (0.86, 0.90)}.items():
        for index in range(12):
            records.append(
                _record(
                    model,
                    "generality",
                    "generality",
                    0,
                    math.nan,
                    0,
                    float(np.clip(recall + rng.normal(0, 0.08), 0, 1)),
                    float(np.clip(precision + rng.normal(0, 0.04), 0, 1)),
                    float(abs(0.15 + rng.normal(0, 0.05))),
                )
                | {"image_id": f"generality/{index:02d}"}
            )
    return records


def failure_example(*, seed: int = 0) -> dict[str, Any]:
    """A synthetic lattice image with a plausible failure, in ``write_report``'s format.

    A 128 x 128 px square lattice (spacing 12 px, 0.3 A/px) of Gaussian columns with Poisson
    noise; the "prediction" misses a few columns, is offset by sub-pixel jitter, and adds
    false positives in the background. The matching is known by construction.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:128, 0:128]
    centres = np.arange(8.0, 124.0, 12.0)
    truth = np.array([(x, y) for y in centres for x in centres])
    image = np.full((128, 128), 0.15)
    for x, y in truth:
        image += np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * 2.2**2))
    image = rng.poisson(image * 20.0) / 20.0
    found = np.flatnonzero(rng.random(len(truth)) > 0.12)
    predicted = truth[found] + rng.normal(0.0, 0.6, (found.size, 2))
    predicted = np.vstack([predicted, rng.uniform(10.0, 118.0, (5, 2))])
    return {
        "image": image,
        "truth": truth,
        "predicted": predicted,
        "matched_truth_index": found,
        "matched_predicted_index": np.arange(found.size),
        "image_id": "SrTiO3-simulated/noise/06/0",
        "model": "AtomSegNet",
        "pixel_size": 0.3,
    }


def write_example_figures(out_dir: str | Path) -> list[Path]:
    """Write the example radar, trend and failure figures from synthetic records.

    Files: ``analysis_radar.png``, ``analysis_trends.png``, ``analysis_failure.png``.
    Returns their paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = published_like_records()
    cutoffs = compute_cutoffs(records, bootstrap=0, methods=("pchip",), progress=False)
    failure = failure_example()
    figures = {
        "analysis_radar.png": plot_radar(cutoffs),
        "analysis_trends.png": plot_trends(records, group="SrTiO3-simulated", cutoffs=cutoffs),
        "analysis_failure.png": plot_failure(
            failure["image"],
            failure["truth"],
            failure["predicted"],
            matched_truth_index=failure["matched_truth_index"],
            matched_predicted_index=failure["matched_predicted_index"],
            image_id=failure["image_id"],
            model=failure["model"],
            pixel_size=failure["pixel_size"],
        ),
    }
    paths = []
    for name, figure in figures.items():
        figure.savefig(out / name, dpi=90)
        paths.append(out / name)
    return paths
