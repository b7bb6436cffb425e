"""Benchmark of the dataset generator: fast-backend images per second and the standard build.

Run: ``python bench/bench_dataset.py [--repeats 5] [--skip-build]``. Prints a small table:
the median (and min/max) over ``repeats`` runs of rendering one labelled 256x256 image with
the fast backend (structure, beam positions, intensity, labels), the intensity evaluation
alone, and the wall time of
``build_dataset(preset="standard")`` into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from stembench.dataset_publish.simulate.build import build_dataset
from stembench.dataset_publish.simulate.catalogue import build_structure
from stembench.dataset_publish.simulate.fast_backend import FastHAADF
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.simulate.scan import ScanParameters, beam_positions
from stembench.dataset_publish.simulate.series import render


def time_renders(material: str, pixel_size: float, repeats: int) -> tuple[list[float], int]:
    """Seconds per labelled 256x256 render, ``repeats`` times, and the number of columns."""
    backend = FastHAADF(ProbeParameters())
    times = []
    n_columns = 0
    for seed in range(repeats):
        start = time.perf_counter()
        rendered = render(material, backend, ScanParameters((256, 256), pixel_size, seed=seed),
                          structure_seed=seed)
        times.append(time.perf_counter() - start)
        n_columns = len(rendered.structure.weights)
    return times, n_columns


def time_intensity(material: str, pixel_size: float, repeats: int) -> list[float]:
    """Seconds per call of FastHAADF.intensity alone on a 256x256 scan."""
    backend = FastHAADF(ProbeParameters())
    scan = ScanParameters((256, 256), pixel_size)
    x, y = beam_positions(scan)
    structure = build_structure(material, extent_angstrom=(float(x.max()) + 5,
                                                           float(y.max()) + 5), seed=0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        backend.intensity(structure, x, y)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write the timings here")
    args = parser.parse_args()
    rows = []
    record: dict[str, object] = {"repeats": args.repeats, "renders": [], "build_s": None}
    for material, pixel in (("SrTiO3[100]", 0.12), ("WS2", 0.16)):
        times = time_intensity(material, pixel, args.repeats)
        med = statistics.median(times)
        rows.append((f"FastHAADF.intensity {material} 256x256 @ {pixel} A/px",
                     f"{med * 1e3:.1f} ms (min {min(times) * 1e3:.1f}); {1 / med:.1f} images/s"))
    for material, pixel in (("SrTiO3[100]", 0.12), ("WS2", 0.16), ("WS2", 0.40)):
        times, n = time_renders(material, pixel, args.repeats)
        med = statistics.median(times)
        record["renders"].append(  # type: ignore[attr-defined]
            {"material": material, "pixel_size": pixel, "columns": n, "seconds": times})
        rows.append((f"render {material} 256x256 @ {pixel} A/px ({n} columns)",
                     f"{med * 1e3:.1f} ms (min {min(times) * 1e3:.1f}, max "
                     f"{max(times) * 1e3:.1f}); {1 / med:.1f} images/s"))
    if not args.skip_build:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            path = build_dataset(Path(folder) / "standard.h5", preset="standard",
                                 progress=False)
            wall = time.perf_counter() - start
            size = path.stat().st_size / 2**20
        record["build_s"] = wall
        rows.append(("build_dataset(preset='standard')", f"{wall:.1f} s wall ({size:.0f} MiB)"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':{width}s}  result")
    for name, result in rows:
        print(f"{name:{width}s}  {result}")
    if args.json is not None:
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
