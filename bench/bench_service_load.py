"""Load on a local service: 50 concurrent mixed GETs (pages, JSON, figures) with /api/health
polled meanwhile; prints requests, concurrency, p50/p99/max latency, errors and the slowest
health answer.

The service (uvicorn, 127.0.0.1) runs in a child process, populated with three finished
jobs of the service tests' fake model on the mini dataset, so the client's threads do not
share the server's GIL. Run it against this checkout, or against another one to compare
(before/after a change)::

    PYTHONPATH=src python bench/bench_service_load.py
    PYTHONPATH=/other/checkout/src python bench/bench_service_load.py \\
        --fakes /other/checkout/tests/service
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Start the server, wait until populated, run the load, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fakes", type=Path, default=ROOT / "tests" / "service",
                        help="folder with service_helpers.py and service_fakes.py")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "service"))
    from service_helpers import install_dataset
    from service_load import hammer, mixed_paths, populated_server

    from stembench.dataset_publish.simulate.build import build_dataset

    with tempfile.TemporaryDirectory(prefix="stembench-load-") as folder:
        work = Path(folder)
        mini = work / "source" / "mini.h5"
        mini.parent.mkdir()
        build_dataset(mini, preset="mini", progress=False)
        install_dataset(work / "calls", mini)
        with populated_server(work, f"sqlite:///{work / 'service.db'}",
                              fakes=args.fakes) as (url, job_ids):
            paths = mixed_paths("SrTiO3-simulated", job_ids, n=args.requests)
            result = hammer(url, paths, concurrency=args.concurrency)
    slowest = max(result.health_seconds) if result.health_seconds else float("nan")
    bad_health = sum(1 for s in result.health if s != 200)
    figures = {"requests": len(result.statuses), "concurrency": args.concurrency,
               "p50_s": round(result.percentile(50), 3),
               "p99_s": round(result.percentile(99), 3),
               "max_s": round(max(result.seconds), 3), "errors": result.errors,
               "statuses": dict(sorted(Counter(map(str, result.statuses)).items())),
               "health_polls": len(result.health), "health_failed": bad_health,
               "health_max_s": round(slowest, 3)}
    print(json.dumps(figures))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
