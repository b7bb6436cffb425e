"""Cost of an abTEM base image: one unit-cell scan + tiling, against a full scan of the field.

Simulates SrTiO3 [100] over a field of ``--cells`` x ``--cells`` unit cells twice: (1) the
stembench way, scanning one unit cell in a supercell potential and evaluating the periodic
image at every beam position of the field; (2) scanning the whole field directly in the same
potential. Reports the median wall time and process CPU time (all threads) of each
(``--repeats`` runs, alternated), their ratio, and how far the two images differ (max and RMS
of the difference, relative to the peak of the full scan). With frozen phonons the two differ
by the phonon noise (each cell of the full scan sees its own displacements); a static-lattice
pair (``--static-check``) shows that the tiling itself is exact. No source blur is applied.

Run: ``.venv/bin/python bench/bench_abtem.py [--cells 4 --phonons 2 --thickness 10]``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from stembench.dataset_publish.simulate.abtem_backend import AbtemHAADF, PeriodicImage
from stembench.dataset_publish.simulate.catalogue import build_structure
from stembench.dataset_publish.simulate.columns import ColumnStructure
from stembench.dataset_publish.simulate.probe import ProbeParameters

A_STO = 3.905


def _timed(task: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run ``task``; return its result, wall seconds and process CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = task()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _beam_grid(structure: ColumnStructure, full: PeriodicImage) -> tuple[np.ndarray, np.ndarray]:
    """Beam positions (A) of the full scan, in the structure's frame."""
    rows, cols = full.array.shape
    x = np.arange(cols) * full.sampling_angstrom[0] + structure.cell_origin_angstrom[0]
    y = np.arange(rows) * full.sampling_angstrom[1] + structure.cell_origin_angstrom[1]
    return np.meshgrid(x, y)


def _save_figure(path: Path, tiled: np.ndarray, full: PeriodicImage, title: str) -> None:
    """Tiled image, full scan and their difference side by side (x right, y down, A)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    extent = (0.0, full.extent_angstrom[0], full.extent_angstrom[1], 0.0)
    difference = (tiled - full.array) / full.array.max()
    limit = float(np.abs(difference).max())
    figure, axes = plt.subplots(1, 3, figsize=(13, 4.2), constrained_layout=True)
    panels = [
        (tiled, "unit cell scan, tiled", "magma", None),
        (full.array, "full scan", "magma", None),
        (difference, "(tiled - full) / peak of full", "coolwarm", limit),
    ]
    for axis, (image, label, cmap, bound) in zip(axes, panels, strict=True):
        vmin, vmax = (-bound, bound) if bound else (None, None)
        shown = axis.imshow(image, extent=extent, cmap=cmap, vmin=vmin, vmax=vmax)
        axis.set(title=label, xlabel="x (A)", ylabel="y (A)")
        figure.colorbar(shown, ax=axis, shrink=0.85)
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _compare(
    probe: ProbeParameters,
    structure: ColumnStructure,
    settings: dict[str, Any],
    *,
    repeats: int,
    figure: Path | None,
) -> dict[str, Any]:
    extent = structure.extent_angstrom
    times: dict[str, list[float]] = {
        key: []
        for key in ("unit_wall", "unit_cpu", "tile_wall", "tile_cpu", "full_wall", "full_cpu")
    }
    tiled = full = None
    for _ in range(repeats):
        # Fresh backends without a cache directory simulate every time.
        reference = AbtemHAADF(probe, **settings)
        full, wall, cpu = _timed(
            partial(reference.full_scan_image, structure, extent_angstrom=extent)
        )
        times["full_wall"].append(wall)
        times["full_cpu"].append(cpu)
        backend = AbtemHAADF(probe, **settings)
        _, wall, cpu = _timed(partial(backend.unit_cell_image, structure))
        times["unit_wall"].append(wall)
        times["unit_cpu"].append(cpu)
        xx, yy = _beam_grid(structure, full)
        tiled, wall, cpu = _timed(partial(backend.intensity, structure, xx, yy))
        times["tile_wall"].append(wall)
        times["tile_cpu"].append(cpu)
    assert tiled is not None and full is not None
    difference = (tiled - full.array) / full.array.max()
    if figure is not None:
        _save_figure(
            figure,
            tiled,
            full,
            f"SrTiO3[100] {settings['method']}, {settings['frozen_phonons']} frozen phonons",
        )
    median = {key: statistics.median(values) for key, values in times.items()}
    cells = round(extent[0] / A_STO) * round(extent[1] / A_STO)
    return {
        **{key: settings[key] for key in ("method", "frozen_phonons", "thickness_angstrom")},
        "repeats": repeats,
        "scan_positions_unit_cell": int(full.array.size // cells),
        "scan_positions_full": int(full.array.size),
        "times_s": times,
        "median_s": median,
        "wall_ratio_full_over_tiled": median["full_wall"]
        / (median["unit_wall"] + median["tile_wall"]),
        "cpu_ratio_full_over_tiled": median["full_cpu"] / (median["unit_cpu"] + median["tile_cpu"]),
        "max_abs_difference_rel_to_peak": float(np.abs(difference).max()),
        "rms_difference_rel_to_peak": float(np.sqrt(np.mean(difference**2))),
    }


def _report(result: dict[str, Any]) -> str:
    m = result["median_s"]
    return (
        f"  phonons={result['frozen_phonons']}, median of {result['repeats']}: "
        f"unit cell ({result['scan_positions_unit_cell']} positions) {m['unit_wall']:.1f} s wall "
        f"/ {m['unit_cpu']:.1f} s CPU + tiling {m['tile_wall'] * 1e3:.1f} ms; full scan "
        f"({result['scan_positions_full']} positions) {m['full_wall']:.1f} s wall / "
        f"{m['full_cpu']:.1f} s CPU; full/tiled = {result['wall_ratio_full_over_tiled']:.2f}x "
        f"wall, {result['cpu_ratio_full_over_tiled']:.2f}x CPU; difference max "
        f"{result['max_abs_difference_rel_to_peak']:.2e}, rms "
        f"{result['rms_difference_rel_to_peak']:.2e} of the peak"
    )


def main() -> None:
    """Run the comparison and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=4, help="field of cells x cells unit cells")
    parser.add_argument("--phonons", type=int, default=2, help="frozen-phonon configurations")
    parser.add_argument("--thickness", type=float, default=10.0, help="sample thickness (A)")
    parser.add_argument("--method", choices=["prism", "multislice"], default="prism")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (median)")
    parser.add_argument(
        "--static-check", action="store_true", help="also compare one static-lattice pair"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--figure", type=Path, default=None, help="save the images (PNG)")
    args = parser.parse_args()

    field = (args.cells * A_STO, args.cells * A_STO)
    structure = build_structure("SrTiO3[100]", extent_angstrom=field)
    probe = ProbeParameters(source_fwhm_angstrom=0.0)
    settings = {
        "frozen_phonons": args.phonons,
        "thickness_angstrom": args.thickness,
        "method": args.method,
        "scan_sampling_angstrom": 0.2,
        "slice_thickness_angstrom": 2.0,
    }
    results = [_compare(probe, structure, settings, repeats=args.repeats, figure=args.figure)]
    if args.static_check:
        static = {**settings, "frozen_phonons": 0}
        results.append(_compare(probe, structure, static, repeats=1, figure=None))
    layers = math.ceil(args.thickness / A_STO - 1e-9)
    print(
        f"SrTiO3[100], {args.cells}x{args.cells} cells, {layers} cells thick "
        f"({layers * A_STO:.1f} A), {args.method}, host {platform.node()}"
    )
    for result in results:
        print(_report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
