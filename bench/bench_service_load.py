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
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SERVER = r"""
import sys, json, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import uvicorn
from service_helpers import make_settings
from stembench.service.app import create_app
from stembench.service.worker import Worker
from stembench.service import store
work, port = Path(sys.argv[2]), int(sys.argv[3])
settings = make_settings(work, f"sqlite:///{work / 'service.db'}",
                         dataset_cache_dir=str(work / "calls"))
app = create_app(settings)
with app.state.sessions() as session:
    ids = [store.create_job(session, owner="alice", owner_name="alice", model="log-blob",
                            options={"quality": q}, dataset_name="atom-locating-benchmark",
                            dataset_preset="mini", dataset_version="1.0.0",
                            endpoint_id=None)[0].id for q in (0.97, 0.9, 0.85)]
worker = Worker(settings, app.state.sessions)
while worker.run_once():
    pass
(work / "jobs.json").write_text(json.dumps(ids))
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


def main() -> None:
    """Start the server, wait until populated, run the load, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fakes", type=Path, default=ROOT / "tests" / "service",
                        help="folder with service_helpers.py and service_fakes.py")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "service"))
    from service_helpers import free_port, install_dataset
    from service_load import hammer, mixed_paths

    from stembench.dataset_publish.build import build_dataset

    with tempfile.TemporaryDirectory(prefix="stembench-load-") as folder:
        work = Path(folder)
        mini = work / "source" / "mini.h5"
        mini.parent.mkdir()
        build_dataset(mini, preset="mini", progress=False)
        install_dataset(work / "calls", mini)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(args.fakes), os.environ.get("PYTHONPATH", "")])}
        server = subprocess.Popen([sys.executable, "-c", _SERVER, str(args.fakes), folder,
                                   str(port)], env=env)
        try:
            deadline = time.monotonic() + 900
            while not (work / "jobs.json").exists() or not _up(port):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the service did not start")
                time.sleep(0.5)
            job_ids = json.loads((work / "jobs.json").read_text())
            paths = mixed_paths("SrTiO3-simulated", job_ids, n=args.requests)
            result = hammer(f"http://127.0.0.1:{port}", paths, concurrency=args.concurrency)
        finally:
            server.terminate()
            server.wait(30)
    slowest = max(result.health_seconds) if result.health_seconds else float("nan")
    bad_health = sum(1 for s in result.health if s != 200)
    print(json.dumps({"requests": len(result.statuses), "concurrency": args.concurrency,
                      "p50_s": round(result.percentile(50), 3),
                      "p99_s": round(result.percentile(99), 3),
                      "max_s": round(max(result.seconds), 3), "errors": result.errors,
                      "statuses": sorted({str(s) for s in result.statuses}),
                      "health_polls": len(result.health), "health_failed": bad_health,
                      "health_max_s": round(slowest, 3)}))


def _up(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
