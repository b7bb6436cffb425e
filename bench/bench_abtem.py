"""Cost of an abTEM base image: one unit-cell scan + tiling, against a full scan of the field.

Simulates SrTiO3 [100] over a field of ``--cells`` x ``--cells`` unit cells twice: (1) the
stembench way, scanning one unit cell in a supercell potential and evaluating the periodic
image at every beam position of the field; (2) scanning the whole field directly in the same
potential. Reports the median wall time of each (``--repeats`` runs, alternated), their ratio,
and how far the two images differ (max and RMS of the difference, relative to the peak of the
full scan). With frozen phonons the two differ by the phonon noise (each cell of the full scan
sees its own displacements); a static-lattice pair (``--static-check``) shows the tiling is exact.

Run: ``.venv/bin/python bench/bench_abtem.py [--cells 4 --phonons 2 --thickness 10]``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from stembench.dataset_publish.abtem_backend import AbtemHAADF, PeriodicImage
from stembench.dataset_publish.probe import ProbeParameters
from stembench.dataset_publish.structures import ColumnStructure, build_structure


def _tiled_field(
    backend: AbtemHAADF, structure: ColumnStructure, full: PeriodicImage
) -> tuple[np.ndarray, float, float]:
    """Simulate one cell, evaluate it at the full scan's beam positions; wall times (s)."""
    start = time.perf_counter()
    backend.unit_cell_image(structure)
    simulated = time.perf_counter()
    rows, cols = full.array.shape
    x = np.arange(cols) * full.sampling_angstrom[0] + structure.cell_origin_angstrom[0]
    y = np.arange(rows) * full.sampling_angstrom[1] + structure.cell_origin_angstrom[1]
    xx, yy = np.meshgrid(x, y)
    image = backend.intensity(structure, xx, yy)
    return image, simulated - start, time.perf_counter() - simulated


def _compare(
    probe: ProbeParameters,
    structure: ColumnStructure,
    *,
    cells: int,
    phonons: int,
    thickness: float,
    method: str,
    repeats: int,
) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "frozen_phonons": phonons,
        "thickness_angstrom": thickness,
        "method": method,
        "scan_sampling_angstrom": 0.2,
        "slice_thickness_angstrom": 2.0,
    }
    extent = structure.extent_angstrom
    unit_times, tile_times, full_times = [], [], []
    tiled = full = None
    for _ in range(repeats):
        # A fresh backend without a cache directory simulates every time.
        start = time.perf_counter()
        full = AbtemHAADF(probe, **settings).full_scan_image(structure, extent_angstrom=extent)
        full_times.append(time.perf_counter() - start)
        tiled, unit_s, tile_s = _tiled_field(AbtemHAADF(probe, **settings), structure, full)
        unit_times.append(unit_s)
        tile_times.append(tile_s)
    assert tiled is not None and full is not None
    difference = (tiled - full.array) / full.array.max()
    unit, tile, whole = (statistics.median(t) for t in (unit_times, tile_times, full_times))
    return {
        "method": method,
        "frozen_phonons": phonons,
        "field_cells": cells,
        "thickness_angstrom": thickness,
        "repeats": repeats,
        "scan_positions_unit_cell": int(full.array.size // cells**2),
        "scan_positions_full": int(full.array.size),
        "unit_cell_scan_s": unit_times,
        "tiling_s": tile_times,
        "full_scan_s": full_times,
        "median_unit_cell_plus_tiling_s": unit + tile,
        "median_full_scan_s": whole,
        "speedup_full_over_tiled": whole / (unit + tile),
        "max_abs_difference_rel_to_peak": float(np.abs(difference).max()),
        "rms_difference_rel_to_peak": float(np.sqrt(np.mean(difference**2))),
    }


def main() -> None:
    """Run the comparison and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=4, help="field of cells x cells unit cells")
    parser.add_argument("--phonons", type=int, default=2, help="frozen-phonon configurations")
    parser.add_argument("--thickness", type=float, default=10.0, help="sample thickness (A)")
    parser.add_argument("--method", choices=["prism", "multislice"], default="prism")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (median)")
    parser.add_argument(
        "--static-check",
        action="store_true",
        help="also compare one static-lattice (no phonons) pair",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    a = 3.905
    structure = build_structure("SrTiO3[100]", extent_angstrom=(args.cells * a, args.cells * a))
    # No source blur: the full scan is the raw abTEM image, so the tiled one must be too.
    probe = ProbeParameters(source_fwhm_angstrom=0.0)
    results = [
        _compare(
            probe,
            structure,
            cells=args.cells,
            phonons=args.phonons,
            thickness=args.thickness,
            method=args.method,
            repeats=args.repeats,
        )
    ]
    if args.static_check:
        results.append(
            _compare(
                probe,
                structure,
                cells=args.cells,
                phonons=0,
                thickness=args.thickness,
                method=args.method,
                repeats=1,
            )
        )
    layers = math.ceil(args.thickness / a - 1e-9)
    print(
        f"SrTiO3[100], {args.cells}x{args.cells} cells, {layers} cells thick "
        f"({layers * a:.1f} A), {args.method}, {platform.node()}"
    )
    for r in results:
        print(
            f"  phonons={r['frozen_phonons']} repeats={r['repeats']}: "
            f"unit cell {r['scan_positions_unit_cell']} positions + tiling "
            f"{r['median_unit_cell_plus_tiling_s']:.2f} s (tiling alone "
            f"{statistics.median(r['tiling_s']) * 1e3:.1f} ms) vs full scan "
            f"{r['scan_positions_full']} positions {r['median_full_scan_s']:.2f} s -> "
            f"{r['speedup_full_over_tiled']:.2f}x; difference max "
            f"{r['max_abs_difference_rel_to_peak']:.2e}, rms "
            f"{r['rms_difference_rel_to_peak']:.2e} of the peak"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
