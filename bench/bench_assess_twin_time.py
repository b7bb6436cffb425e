"""Time ``stembench assess IMAGE`` (twin mode) on a 512 x 512 image, as a user runs it.

The image: a training-world BaSnO3 [100] lattice (9 atoms/100 px, 1500 e/A^2, the fast
incoherent-HAADF backend; :func:`stembench.client.assess.validation.lattice_image`), saved as
``.npy``. Each repeat runs the ``stembench`` command in a fresh process with the built-in models
(and any published model fetched into the cache, as ``assess`` chooses them), 4 twins and the
series, 2 local workers, and records its wall time and the CPU time of the command and all its
worker processes (``getrusage`` of the children). Shards are kept apart in a fresh output
folder per repeat; the twin dataset is rendered again each time (``STEMBENCH_TWIN_DIR`` points to
a fresh folder).

``--against SRC`` also times the same command with ``PYTHONPATH=SRC`` (another checkout's
``src``, e.g. the commit before a change), each of its repeats right after one of this
checkout's, so both see the same machine state.

Run: ``.venv/bin/python bench/bench_assess_twin_time.py [--repeats 3] [--against SRC]
[--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_image(path: Path, *, shape: int = 512) -> float:
    """Write the benchmark image to ``path`` (``.npy``); return its pixel size (A/px)."""
    from stembench.client.assess.validation import Condition, lattice_image
    from stembench.endpoints.training.world import training_lattice

    image = lattice_image(training_lattice("BaSnO3[100]"), "BaSnO3[100]",
                          Condition("timing", 9.0, 1500.0), shape=(shape, shape))
    np.save(path, image.image)
    return float(image.pixel_size)


def time_once(image: Path, pixel_size: float, folder: Path,
              src: Path | None = None) -> dict[str, float]:
    """Wall and CPU seconds of one ``stembench assess`` command (``src``: its PYTHONPATH)."""
    env = dict(os.environ, STEMBENCH_TWIN_DIR=str(folder / "twins"))
    if src is not None:
        env["PYTHONPATH"] = str(src)
    command = [sys.executable, "-c", "import sys; from stembench.cli import main; "
               "sys.argv[0] = 'stembench'; sys.exit(main())", "assess", str(image),
               "--pixel-size", f"{pixel_size:.6f}", "--out", str(folder / "out")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"stembench assess failed ({done.returncode}):\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def _commit(folder: Path) -> str:
    """The short commit of the checkout holding ``folder`` (``?`` outside git)."""
    done = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shape", type=int, default=512)
    parser.add_argument("--against", type=Path, help="also time this src folder, interleaved")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    kinds: dict[str, Path | None] = {"this": None}
    if args.against is not None:
        kinds["against"] = args.against.resolve()
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="bench-assess-twin-time-") as tmp:
        root = Path(tmp)
        image = root / "basno3.npy"
        pixel_size = make_image(image, shape=args.shape)
        for repeat in range(args.repeats):
            for kind, src in kinds.items():
                load = os.getloadavg()[0]
                run = time_once(image, pixel_size, root / f"{kind}{repeat}", src)
                run["load_before"] = load
                runs[kind].append(run)
                print(kind, json.dumps(run), flush=True)
    result: dict = {"shape": args.shape, "pixel_size": pixel_size, "workers": 2,
                    "cores": os.cpu_count(), "commit": _commit(Path(__file__).parent)}
    if args.against is not None:
        result["against_commit"] = _commit(args.against)
    for kind, done in runs.items():
        result[kind] = {"runs": done,
                        "median_wall_s": statistics.median(r["wall_s"] for r in done),
                        "median_cpu_s": statistics.median(r["cpu_s"] for r in done)}
        print(kind, {k: v for k, v in result[kind].items() if k != "runs"})
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
