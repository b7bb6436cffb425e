"""How long a running service job takes to stop after its owner cancels it (issue 27, item 4).

A job of the service tests' fake model whose shards block (they never finish on their own)
runs on the service's worker with a thread pool and with a local process pool; the owner
cancels it through the API. Prints the seconds from the cancel request to the job's
"cancelled" status, and whether a worker process of the pool is still alive (the pool's
processes import the fake from ``PYTHONPATH``)::

    PYTHONPATH=src:tests/service:tests/support python bench/bench_service_cancel.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _measure(work: Path, executor: str) -> dict[str, Any]:
    import responses
    from fastapi.testclient import TestClient
    from service_helpers import INTROSPECT_URL, bearer, make_settings

    from stembench.service.app import create_app
    from stembench.service.worker import Worker

    settings = make_settings(work, f"sqlite:///{work / 'service.db'}", executor=executor,
                             dataset_cache_dir=str(work / "calls"))
    token = {"active": True, "sub": "alice", "scope": f"openid {settings.resolved_scope}",
             "aud": [settings.globus_client_id], "exp": int(time.time()) + 3600}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock, \
            TestClient(create_app(settings)) as client:
        mock.add(responses.POST, INTROSPECT_URL, json=token)
        job = client.post("/api/jobs", headers=bearer("alice"), json={
            "model": "log-blob", "dataset_preset": "mini",
            "options": {"block": True}}).json()["job"]["id"]
        worker = Worker(settings, client.app.state.sessions)
        runner = threading.Thread(target=worker.run_once, daemon=True)
        runner.start()
        while not list((work / "calls").glob("shard-*")) and runner.is_alive():
            time.sleep(0.05)  # a shard started (it leaves a marker, then blocks)
        time.sleep(1.0)
        start = time.perf_counter()
        client.post(f"/api/jobs/{job}/cancel", headers=bearer("alice"))
        status = ""
        while status != "cancelled" and time.perf_counter() - start < 120:
            status = client.get(f"/api/jobs/{job}", headers=bearer("alice")).json()["status"]
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        runner.join(60)
    import multiprocessing

    return {"executor": executor, "cancel_to_cancelled_s": round(seconds, 2), "status": status,
            "worker_released": not runner.is_alive(),
            "pool_processes_alive": len(multiprocessing.active_children())}


def main() -> None:
    """Measure with the thread and the local executor; print JSON."""
    sys.path.insert(0, str(ROOT / "tests" / "service"))
    from service_helpers import install_dataset

    from stembench.dataset_publish.build import build_dataset

    rows = []
    with tempfile.TemporaryDirectory(prefix="stembench-cancel-") as folder:
        mini = Path(folder) / "source" / "mini.h5"
        mini.parent.mkdir()
        build_dataset(mini, preset="mini", progress=False)
        for executor in ("thread", "local"):
            work = Path(folder) / executor
            install_dataset(work / "calls", mini)
            rows.append(_measure(work, executor))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
