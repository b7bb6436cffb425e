"""A bounded load generator for a local service (127.0.0.1 only): concurrent mixed GETs of
pages, JSON and figures, with ``/api/health`` polled throughout (tests and bench/)."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from dataclasses import dataclass, field
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
