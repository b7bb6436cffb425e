"""A bounded load generator for a local service (127.0.0.1 only): concurrent mixed GETs of
pages, JSON and figures, with ``/api/health`` polled throughout (tests and bench/).

:func:`populated_server` runs the service in a child process (so the load generator's threads
do not share its GIL), with three finished jobs of the fake model on the mini dataset.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

HEALTH_TIMEOUT_S = 1.0


@dataclass
class LoadResult:
    """Status and seconds of every request, and of every health poll made meanwhile."""

    statuses: list[int | str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    health: list[int | str] = field(default_factory=list)
    health_seconds: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the request latencies, seconds."""
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]

    @property
    def errors(self) -> int:
        """Requests not answered 200."""
        return sum(1 for s in self.statuses if s != 200)


def mixed_paths(group: str, job_ids: list[str], n: int = 50) -> list[str]:
    """``n`` GET paths cycling over pages, JSON and figures of a populated service."""
    overlay = ",".join(sorted([job_ids[0], job_ids[-1]]))
    kinds = ["/", "/api/leaderboard", f"/api/leaderboard/{group}/radar.png",
             f"/api/jobs/{job_ids[0]}/radar/{group}.png", f"/api/jobs/{job_ids[-1]}/scores",
             f"/api/jobs/{job_ids[0]}/cutoffs", f"/api/jobs/{job_ids[-1]}/scores.csv",
             f"/api/leaderboard/{group}/radar.png?jobs={overlay}",
             f"/jobs/{job_ids[0]}/report", f"/entries/{job_ids[-1]}"]
    return [kinds[i % len(kinds)] for i in range(n)]


def hammer(base_url: str, paths: list[str], *, concurrency: int = 50,
           timeout_s: float = 120.0) -> LoadResult:
    """GET every path at once (``concurrency`` threads) while polling /api/health."""
    if urlsplit(base_url).hostname != "127.0.0.1":
        raise ValueError(f"load tests run against 127.0.0.1 only, not {base_url}")
    result, done = LoadResult(), threading.Event()
    start_gate = threading.Barrier(min(concurrency, len(paths)) + 1)

    def poll_health() -> None:
        with httpx.Client(base_url=base_url, timeout=HEALTH_TIMEOUT_S) as client:
            while not done.is_set():
                begin = time.perf_counter()
                try:
                    result.health.append(client.get("/api/health").status_code)
                except httpx.HTTPError as exc:
                    result.health.append(type(exc).__name__)
                result.health_seconds.append(time.perf_counter() - begin)
                time.sleep(0.05)

    def get(path: str) -> tuple[int | str, float]:
        with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
            start_gate.wait()
            begin = time.perf_counter()
            try:
                status: int | str = client.get(path).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            return status, time.perf_counter() - begin

    poller = threading.Thread(target=poll_health, daemon=True)
    poller.start()
    with cf.ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(get, path) for path in paths]
        start_gate.wait()
        for future in futures:
            status, seconds = future.result()
            result.statuses.append(status)
            result.seconds.append(seconds)
    done.set()
    poller.join()
    return result


_SERVER = r"""
import sys, json
fakes, work, port, database_url = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, fakes)
from pathlib import Path
import uvicorn
from service_helpers import make_settings
from stembench.dataset_publish.simulate.build import DATASET_VERSION
from stembench.service import store
from stembench.service.app import create_app
from stembench.service.worker import Worker
work = Path(work)
settings = make_settings(work, database_url, dataset_cache_dir=str(work / "calls"))
app = create_app(settings)
with app.state.sessions() as session:
    ids = [store.create_job(session, owner="alice", owner_name="alice", model="log-blob",
                            options={"quality": q}, dataset_name="atom-locating-benchmark",
                            dataset_preset="mini", dataset_version=str(DATASET_VERSION),
                            endpoint_id=None)[0].id for q in (0.97, 0.9, 0.85)]
worker = Worker(settings, app.state.sessions)
while worker.run_once():
    pass
(work / "jobs.json").write_text(json.dumps(ids))
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


@contextmanager
def populated_server(work: Path, database_url: str, *, fakes: Path,
                     start_s: float = 900.0) -> Iterator[tuple[str, list[str]]]:
    """A service on 127.0.0.1 in a child process with three finished jobs.

    ``work`` must hold the mini dataset in ``work/calls``; ``fakes`` is the folder with
    ``service_helpers.py`` and ``service_fakes.py``. Yields the base URL and the job ids.
    """
    from service_helpers import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(fakes), os.environ.get("PYTHONPATH", "")) if p)}
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(fakes), str(work),
                               str(port), database_url], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_s
        while not (work / "jobs.json").exists() or not _up(url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start (exit code {server.poll()})")
            time.sleep(0.5)
        yield url, json.loads((work / "jobs.json").read_text())
    finally:
        server.terminate()
        server.wait(60)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
