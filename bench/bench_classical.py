"""Bench: the atomap-like baseline against Atomap itself, same images, same scorer.

Atomap (GPL-3) is a peer, not a dependency: run this in the separate venv that has it::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install atomap==0.4.2 scikit-image h5py six
    .venv-bench/bin/pip install -e . --no-deps
    .venv-bench/bin/python bench/bench_classical.py

Images: synthetic SrTiO3 [100] HAADF-like frames (256x256 and 512x512 at 0.12 A/px): Sr and
Ti-O columns weighted by Z^1.7, weak O columns, a Gaussian probe (sigma 0.45 A), a small
random rotation and origin, Poisson noise. Ground truth: the cation (Sr, Ti-O) columns.
Both methods get the same minimum separation in pixels (the atomap-like default derived
from the pixel size); Atomap then runs ``get_atom_positions`` and a ``Sublattice`` centre of
mass and 2D Gaussian refinement with its defaults (percent_to_nn 0.4). Times are the median
of ``--runs`` runs per image, each method timed from the numpy image to positions, runs
interleaved so both see the same machine load; scores by ``stembench.scoring.score_image``
(one-to-one, 0.5 A, 6 px border).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from stembench.endpoints.models.classical import AtomapLike
from stembench.scoring import score_image

LATTICE_ANGSTROM = 3.905
PROBE_SIGMA_ANGSTROM = 0.45
PIXEL_SIZE = 0.12
FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures"


def render_srtio3(
    size_px: int, *, seed: int, pixel_size: float = PIXEL_SIZE, peak_counts: float = 60.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A noisy SrTiO3 [100] frame and its cation columns as (N, 2) x, y pixels."""
    rng = np.random.default_rng(seed)
    a = LATTICE_ANGSTROM
    cells = np.arange(-2, int(size_px * pixel_size / a) + 3)
    grid = np.array([(i, j) for i in cells for j in cells], dtype=np.float64) * a
    sr_weight, tio_weight, o_weight = 38**1.7, 22**1.7 + 8**1.7, 8**1.7
    offsets = [((0.0, 0.0), sr_weight), ((a / 2, a / 2), tio_weight),
               ((a / 2, 0.0), o_weight), ((0.0, a / 2), o_weight)]
    sites = np.concatenate([grid + np.array(o) for o, _ in offsets])
    weights = np.concatenate([np.full(len(grid), w) for _, w in offsets]) / sr_weight
    angle = np.deg2rad(rng.uniform(-8, 8))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    xy = (sites @ rotation.T + rng.uniform(0, a, 2)) / pixel_size
    sigma = PROBE_SIGMA_ANGSTROM / pixel_size
    reach = int(np.ceil(4 * sigma))
    image = np.zeros((size_px + 4 * reach, size_px + 4 * reach))  # frame starts at 2 * reach
    offsets_px = np.arange(-reach, reach + 1)
    for (x, y), w in zip(xy, weights, strict=True):
        col, row = round(x), round(y)
        if not (-reach <= col < size_px + reach and -reach <= row < size_px + reach):
            continue
        gx = np.exp(-((col + offsets_px - x) ** 2) / (2 * sigma**2))
        gy = np.exp(-((row + offsets_px - y) ** 2) / (2 * sigma**2))
        image[row + reach: row + 3 * reach + 1, col + reach: col + 3 * reach + 1] += w * np.outer(
            gy, gx
        )
    clean = image[2 * reach: -2 * reach, 2 * reach: -2 * reach] + 0.05
    noisy = rng.poisson(clean / clean.max() * peak_counts).astype(np.float64)
    cations = xy[: 2 * len(grid)]
    inside = (cations >= 0).all(1) & (cations <= size_px - 1).all(1)
    return noisy, cations[inside]


def atomap_pipeline(image: NDArray[np.float64], separation: int) -> NDArray[np.float64]:
    """Atomap's peak finding and Sublattice refinement, as its documentation shows."""
    import atomap.api as am
    import hyperspy.api as hs

    signal = hs.signals.Signal2D(image)
    peaks = am.get_atom_positions(signal, separation=separation, threshold_rel=0.02, pca=False,
                                  subtract_background=False, normalize_intensity=False)
    sublattice = am.Sublattice(peaks, image=image)
    sublattice.find_nearest_neighbors()
    sublattice.refine_atom_positions_using_center_of_mass(percent_to_nn=0.4,
                                                          show_progressbar=False)
    sublattice.refine_atom_positions_using_2d_gaussian(percent_to_nn=0.4, show_progressbar=False)
    return np.asarray(sublattice.atom_positions, dtype=np.float64)


def timed(function: Callable[[], NDArray[np.float64]]) -> tuple[float, NDArray[np.float64]]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def bench_image(size: int, seed: int, runs: int) -> dict[str, object]:
    image, truth = render_srtio3(size, seed=seed)
    ours = AtomapLike()
    separation = round(ours.separation_px(PIXEL_SIZE))
    times: dict[str, list[float]] = {"atomap-like": [], "atomap": []}
    found: dict[str, NDArray[np.float64]] = {}
    ours.locate(image, PIXEL_SIZE)  # warm-up: imports and first-call costs are not timed
    atomap_pipeline(image, separation)
    for _ in range(runs):
        seconds, found["atomap-like"] = timed(lambda: ours.locate(image, PIXEL_SIZE))
        times["atomap-like"].append(seconds)
        seconds, found["atomap"] = timed(lambda: atomap_pipeline(image, separation))
        times["atomap"].append(seconds)
    row: dict[str, object] = {"size": size, "seed": seed, "n_truth": len(truth),
                              "separation_px": separation}
    for name, xy in found.items():
        score = score_image(xy, truth, pixel_size=PIXEL_SIZE, image_shape=image.shape,
                            image_id=f"srtio3-{size}-{seed}")
        row[name] = {"median_s": float(np.median(times[name])), "times_s": times[name],
                     "recall": score.recall, "precision": score.precision, "f1": score.f1,
                     "rms_px": score.rms_px, "n_found": len(xy)}
    row["speedup"] = row["atomap"]["median_s"] / row["atomap-like"]["median_s"]  # type: ignore[index]
    if size == 256 and seed == 0:
        draw(image, truth, found)
    return row


def draw(image: NDArray[np.float64], truth: NDArray[np.float64],
         found: dict[str, NDArray[np.float64]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 5.8), layout="constrained")
    for axis, (name, xy) in zip(axes, found.items(), strict=True):
        axis.imshow(image, cmap="gray")
        axis.plot(truth[:, 0], truth[:, 1], "o", ms=7, mfc="none", mec="#2ca02c", label="truth")
        axis.plot(xy[:, 0], xy[:, 1], "+", ms=6, color="#d62728", label=name)
        axis.set_title(f"{name}: {len(xy)} columns")
        axis.set_xlim(0, 128)
        axis.set_ylim(128, 0)
        axis.set_xlabel("x (px, 0.12 A/px)")
        axis.legend(loc="lower right", fontsize=8)
    fig.suptitle("Synthetic SrTiO3 [100], Poisson noise: cation columns found (top-left 128 px)")
    FIGURE.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE / "model_classical_vs_atomap.png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per image (median)")
    parser.add_argument("--seeds", type=int, default=2, help="images per size")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    rows = [bench_image(size, seed, args.runs) for size in (256, 512) for seed in range(args.seeds)]
    header = (f"{'image':>14} {'cols':>5} | {'method':>11} {'median s':>9} {'recall':>7} "
              f"{'prec':>6} {'F1':>6} {'RMS px':>7}")
    print(header)
    for row in rows:
        for name in ("atomap-like", "atomap"):
            r = row[name]
            print(f"{row['size']}x{row['size']} s{row['seed']:<5} {row['n_truth']:>5} | {name:>11} "
                  f"{r['median_s']:9.3f} {r['recall']:7.3f} {r['precision']:6.3f} {r['f1']:6.3f} "
                  f"{r['rms_px']:7.3f}")
        print(f"{'':>22}speed-up (Atomap / atomap-like, medians): {row['speedup']:.1f}x")
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
