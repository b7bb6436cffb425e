"""Run every benchmark at the settings the README quotes and write the README's performance table.

Each benchmark script runs in its own process with ``--json``; its raw results go to
``bench/results/<name>.json`` and one or more table rows are made from them here. The table,
headed by the machine, the library versions and the date, replaces the text between the
``<!-- performance-table:begin -->`` and ``<!-- performance-table:end -->`` markers of README.md:
the README's table is this output, never edited by hand.

Run from the repository root::

    .venv/bin/python bench/run_all.py                  # everything (takes about an hour)
    .venv/bin/python bench/run_all.py --only matching models
    .venv/bin/python bench/run_all.py --table-only     # rebuild the table from bench/results

Peers that live in the separate ``.venv-bench`` (AtomAI, Atomap; see the scripts' docstrings)
are run when that venv exists; otherwise their rows say so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
BEGIN, END = "<!-- performance-table:begin -->", "<!-- performance-table:end -->"
PEER_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
Row = tuple[str, str, str]


@dataclass(frozen=True)
class Benchmark:
    """One script, the arguments the README quotes, and how its JSON becomes table rows."""

    name: str
    script: str
    args: tuple[str, ...]
    rows: Callable[[Any], list[Row]]
    json_flag: str = "--json"
    peer_venv: bool = False
    single_thread: bool = False


def _spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """Median and range of run-to-run values: ``m (lo-hi)``."""
    median = statistics.median(values)
    return f"{fmt.format(median)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def _matching_rows(data: list[dict[str, Any]]) -> list[Row]:
    rates = ", ".join(f"{r['columns'] / r['sparse_s'] / 1e6:.2f} M/s at {r['columns']:,} "
                      f"({r['columns'] / r['sparse_cpu_s'] / 1e6:.2f} M per CPU-s)" for r in data)
    against = "; ".join(f"{r['dense_s'] / r['sparse_s']:.1f}x faster at {r['columns']:,}"
                        f"{'' if r['same_result'] else ' (DIFFERENT matches)'}"
                        for r in data if "dense_s" in r)
    return [("`bench_matching.py`: one-to-one matching, 1 core, median of 7", rates,
             f"dense all-pairs assignment: {against}")]


def _dataset_rows(data: dict[str, Any]) -> list[Row]:
    renders = "; ".join(
        f"{r['material']} {r['pixel_size']} A/px ({r['columns']} columns) "
        f"{_spread([t * 1e3 for t in r['seconds']], '{:.0f}')} ms" for r in data["renders"])
    rows = [(f"`bench_dataset.py`: fast backend, one labelled 256x256 image, median (range) of "
             f"{data['repeats']}", renders, "-")]
    if data.get("build_s") is not None:
        rows.append(("`bench_dataset.py`: `dataset build --preset standard`",
                     f"{data['build_s']:.1f} s", "target < 2 min"))
    return rows


def _abtem_rows(data: list[dict[str, Any]]) -> list[Row]:
    rows = []
    for result in data:
        if result["frozen_phonons"] == 0:
            continue
        m = result["median_s"]
        rows.append((f"`bench_abtem.py`: SrTiO3 [100] 4x4 cells, {result['frozen_phonons']} frozen "
                     f"phonons, {result['method']}, median of {result['repeats']}",
                     f"unit-cell scan + tiling {m['unit_cpu'] + m['tile_cpu']:.1f} CPU-s",
                     f"full scan of the field: {result['cpu_ratio_full_over_tiled']:.1f}x the "
                     f"CPU time"))
    static = [r for r in data if r["frozen_phonons"] == 0]
    if static:
        rows.append(("`bench_abtem.py`: static lattice, tiled against full scan",
                     f"max difference {static[0]['max_abs_difference_rel_to_peak']:.1e} of the "
                     f"peak", "-"))
    return rows


def _models_rows(data: dict[str, Any]) -> list[Row]:
    ours_rounds, peer_rounds, gflop = data["ours_rounds"], data["peer_rounds"], data["gflop"]
    how = f"median (range) of {data['rounds']} rounds x median of {data['repeats']}"
    rows = []
    pairs = [(m, m) for m in ours_rounds[0]] + [("atomsegnet", "atomsegnet (same network)")]
    for ours_name, peer_name in pairs:
        for label in ours_rounds[0][ours_name]:
            ours = [1 / r[ours_name][label] for r in ours_rounds]
            peers = [p[peer_name] for p in peer_rounds if peer_name in p]
            theirs = [1 / p["seconds"][label] for p in peers]
            if peer_name != ours_name:
                if theirs:
                    ratio = [o / t for o, t in zip(ours, theirs, strict=True)]
                    rows.append((f"`bench_models.py`: atomsegnet, {label}, same network and "
                                 f"weights, {how}", f"{_spread(ours, '{:.3f}')} img/s",
                                 f"AtomAI SegPredictor {_spread(theirs, '{:.3f}')} img/s: ours "
                                 f"{_spread(ratio)}x as fast"))
                continue
            flops = f"{gflop[ours_name][label]:.1f} GFLOP"
            against = data["note"]
            if theirs:
                ratio = [o / t for o, t in zip(ours, theirs, strict=True)]
                against = (f"{peers[0]['network']} ({peers[0]['parameters'] / 1e6:.2f} M "
                           f"parameters, {peers[0]['gflop'][label]:.1f} GFLOP): "
                           f"{_spread(theirs, '{:.3f}')} img/s; ours {_spread(ratio)}x as fast")
            rows.append((f"`bench_models.py`: {ours_name}, {label}, image in, coordinates out, "
                         f"2 threads, {how}", f"{_spread(ours, '{:.3f}')} img/s ({flops})",
                         against))
    for model, by_size in data["xla_over_plain"].items():
        ratios = ", ".join(f"{ratio:.2f}x at {label}" for label, ratio in by_size.items())
        rows.append((f"`bench_models.py`: {model} forward pass with XLA (`jit_compile=True`)",
                     f"time {ratios}", "the same pass without XLA (what stembench runs)"))
    return rows


def _traces_rows(data: list[dict[str, Any]]) -> list[Row]:
    return [(f"`bench_atomnet_traces.py`: {r['model']}, every standard image through the shard "
             f"function ({r['images']} images, shapes {r['image_shapes']})",
             f"traced {r['traces']} time(s); {r['image_errors']} image errors",
             "one trace per padded shape and batch size") for r in data]


def _compute_bound_rows(data: list[dict[str, Any]]) -> list[Row]:
    return [(f"`bench_compute_bound.py`: AtomSegNet forward pass, {r['size']}^2, 2 threads, "
             f"median of {len(r['ratio_per_repeat'])}, {r.get('allocator', 'freed memory kept')}"
             f"{'' if r.get('batch', 1) == 1 else ', batches of ' + str(r['batch'])}",
             f"{r['gflop_per_image']:.1f} GFLOP/image in {r['forward_s']:.3f} s "
             f"({r['forward_gflop_s']:.1f} GFLOP/s)",
             f"its convolutions alone: {r['compute_bound_s']:.3f} s "
             f"({r['sustained_gflop_s']:.1f} GFLOP/s sustained): "
             f"{r['ratio_forward_to_bound']:.2f}x the compute bound (per repeat "
             f"{min(r['ratio_per_repeat']):.2f}-{max(r['ratio_per_repeat']):.2f}x)")
            for r in data]


def _classical_rows(data: list[dict[str, Any]]) -> list[Row]:
    rows = []
    for size in sorted({r["size"] for r in data}):
        chosen = [r for r in data if r["size"] == size]
        ours = [r["atomap-like"]["median_s"] for r in chosen]
        speed = [r["speedup"] for r in chosen]
        f1_ours = [r["atomap-like"]["f1"] for r in chosen]
        f1_theirs = [r["atomap"]["f1"] for r in chosen]
        rows.append((f"`bench_classical.py`: atomap-like, synthetic SrTiO3 {size}^2",
                     f"{_spread(ours, '{:.3f}')} s, F1 {min(f1_ours):.3f}-{max(f1_ours):.3f}",
                     f"Atomap 0.4.2 peaks + 2D Gaussians: {_spread(speed, '{:.0f}')}x slower, "
                     f"F1 {min(f1_theirs):.3f}-{max(f1_theirs):.3f}"))
    return rows


def _orchestration_rows(data: dict[str, Any]) -> list[Row]:
    heap = ", ".join(f"{v:.1f}" for v in data["client_heap_peak_mib"].values())
    return [(f"`bench_orchestration.py`: {data['images']} standard images, {data['model']}, "
             f"median of {data['repeats']}",
             f"evaluate with 1 worker: {100 * data['overhead_cold']:+.1f} % (warm pool "
             f"{100 * data['overhead_warm']:+.1f} %); 2 workers "
             f"{data['speedup_2_workers']:.2f}x faster; client heap {heap} MiB at 1k/10k/100k "
             f"images", "calling model and scorer directly")]


def _assess_rows(data: dict[str, Any]) -> list[Row]:
    tables = data["tables"]
    table = tables.get("clean-to-moderate") or tables.get("moderate") or tables["all"]
    parts = [f"{axis} {row['median']:.2f} {row['unit']} median / {row['worst']:.2f} worst"
             for axis, row in table.items() if row["n"]]
    return [("`bench_assess.py`: estimators on the standard series images, clean-to-moderate",
             "; ".join(parts), "targets 15 %, 15 %, 2 dB")]


def _assess_twin_time_rows(data: dict[str, Any]) -> list[Row]:
    this, runs = data["this"], data["this"]["runs"]
    loads = [r["load_before"] for r in runs]
    against = "-"
    if "against" in data:
        base = data["against"]
        against = (f"commit {data['against_commit']} (one {data['workers']}-worker pool), "
                   f"each run right after one of these: "
                   f"{_spread([r['wall_s'] for r in base['runs']], '{:.1f}')} s wall, "
                   f"{_spread([r['cpu_s'] for r in base['runs']], '{:.1f}')} CPU-s")
    return [(f"`bench_assess_twin_time.py`: `stembench assess` on a {data['shape']}x"
             f"{data['shape']} image, built-in models, 4 twins + series, {data['workers']} "
             f"local lanes, median (range) of {len(runs)}; load average "
             f"{min(loads):.1f}-{max(loads):.1f} at the starts",
             f"{_spread([r['wall_s'] for r in runs], '{:.1f}')} s wall, "
             f"{_spread([r['cpu_s'] for r in this['runs']], '{:.1f}')} CPU-s (all processes); "
             f"target < 60 s", against)]


def _service_load_rows(data: dict[str, Any]) -> list[Row]:
    ok = data["statuses"].get("200", 0)
    return [(f"`bench_service_load.py`: {data['requests']} concurrent mixed GETs (pages, JSON, "
             f"figures) on a local service, /api/health polled meanwhile",
             f"p50 {data['p50_s']:.2f} s, p99 {data['p99_s']:.2f} s, {ok} of "
             f"{data['requests']} answered 200; health slowest {data['health_max_s']:.2f} s, "
             f"{data['health_failed']} of {data['health_polls']} polls failed", "-")]


def _main_job_rows(data: dict[str, Any]) -> list[Row]:
    runs = data.get("repeats", [data])
    first = runs[0]
    whole = [r["whole_s"] / 60 for r in runs]
    ideal = [r["ideal_s"] / 60 for r in runs]
    overhead = [100 * r["overhead"] for r in runs]
    return [(f"`bench_main_job.py`: `stembench run`, {first['preset']} preset, "
             f"{first['workers']} workers, clean cache, {first.get('device', 'CPU')}, "
             f"median (range) of {len(runs)}",
             f"{_spread(whole, '{:.2f}')} min",
             f"sum of its parts {_spread(ideal, '{:.2f}')} min: overhead "
             f"{_spread(overhead, '{:+.1f}')} %; target < 10 %, whole < 8 min")]


def _compute_stack_rows(data: dict[str, Any]) -> list[Row]:
    local = statistics.median(data["local_s"])
    warm = statistics.median(data["remote_warm_s"])
    shards = data["shards_local"]
    overhead = (warm - local) / shards
    return [(f"`bench_compute_stack.py`: `evaluate --endpoint` on the local Globus Compute stack "
             f"(real endpoint, RabbitMQ, Slurm; stand-in web service), mini preset, atomap-like, "
             f"{shards} shards of {data['shard_size']}, {data['workers']} workers, median of "
             f"{len(data['remote_warm_s'])}",
             f"warm {60 * shards / warm:.1f} shards/min ({_spread(data['remote_warm_s'], '{:.1f}')}"
             f" s), per-shard overhead {overhead:+.2f} s; cold (user endpoint and Slurm job "
             f"start) {data['remote_cold_s']:.1f} s; first result "
             f"{statistics.median(data['first_result_warm_s']):.1f} s after submit warm, "
             f"{data['first_result_cold_s']:.1f} s cold",
             f"local workers on the same shards: {60 * shards / local:.1f} shards/min "
             f"({_spread(data['local_s'], '{:.1f}')} s)")]


BENCHMARKS = (
    Benchmark("matching", "bench_matching.py",
              ("--sizes", "1000", "5000", "10000", "100000", "--repeats", "7"), _matching_rows,
              single_thread=True),
    Benchmark("dataset", "bench_dataset.py", ("--repeats", "5"), _dataset_rows),
    Benchmark("abtem", "bench_abtem.py", ("--cells", "4", "--phonons", "2", "--static-check"),
              _abtem_rows),
    Benchmark("models", "bench_models.py", ("--repeats", "5"), _models_rows),
    Benchmark("atomnet_traces", "bench_atomnet_traces.py", ("--preset", "standard"),
              _traces_rows),
    Benchmark("compute_bound", "bench_compute_bound.py", ("--repeats", "5"),
              _compute_bound_rows),
    Benchmark("compute_bound_default_allocator", "bench_compute_bound.py",
              ("--repeats", "5", "--default-allocator"), _compute_bound_rows),
    Benchmark("compute_bound_batch4", "bench_compute_bound.py",
              ("--repeats", "5", "--sizes", "256", "--batch", "4"), _compute_bound_rows),
    Benchmark("classical", "bench_classical.py", ("--runs", "3"), _classical_rows,
              json_flag="--out", peer_venv=True),
    Benchmark("orchestration", "bench_orchestration.py", ("--images", "200", "--repeats", "3"),
              _orchestration_rows),
    Benchmark("assess", "bench_assess.py", ("--preset", "standard"), _assess_rows),
    Benchmark("assess_twin_time", "bench_assess_twin_time.py", ("--repeats", "3"),
              _assess_twin_time_rows),
    Benchmark("service_load", "bench_service_load.py", ("--requests", "50"),
              _service_load_rows),
    Benchmark("main_job", "bench_main_job.py", ("--preset", "standard", "--repeats", "3"),
              _main_job_rows),
    Benchmark("compute_stack", "bench_compute_stack.py", ("--repeats", "3"),
              _compute_stack_rows),
)


def _run(bench: Benchmark) -> None:
    python = PEER_PYTHON if bench.peer_venv else Path(sys.executable)
    if not python.is_file():
        print(f"skip {bench.name}: {python} missing (see bench/{bench.script})")
        return
    env = dict(os.environ)
    if bench.single_thread:
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = RESULTS / f"{bench.name}.json"
    command = [str(python), str(ROOT / "bench" / bench.script), *bench.args, bench.json_flag,
               str(out)]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT, env=env)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()}"


def _versions() -> str:
    names = ("stembench", "numpy", "scipy", "torch", "tensorflow-cpu", "keras", "scikit-image")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return f"Python {platform.python_version()}, " + ", ".join(found)


def table() -> str:
    """The README's performance table from the JSON files in ``bench/results``."""
    lines = [f"Written by `python bench/run_all.py` on "
             f"{datetime.now(UTC).strftime('%Y-%m-%d')}; machine: {_machine()}; {_versions()}.",
             "", "| benchmark (script in `bench/`) | result | against |", "| --- | --- | --- |"]
    for bench in BENCHMARKS:
        path = RESULTS / f"{bench.name}.json"
        if not path.is_file():
            lines.append(f"| `{bench.script}` | not run on this machine | - |")
            continue
        for row in bench.rows(json.loads(path.read_text())):
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def write_readme(text: str) -> None:
    """Replace the text between the markers of README.md with ``text``."""
    readme = README.read_text(encoding="utf-8")
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} markers")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[b.name for b in BENCHMARKS])
    parser.add_argument("--table-only", action="store_true",
                        help="rebuild the table from bench/results without running anything")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for bench in BENCHMARKS:
            if args.only is None or bench.name in args.only:
                _run(bench)
    text = table()
    write_readme(text)
    print(text)


if __name__ == "__main__":
    main()
