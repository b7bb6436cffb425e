"""Helpers shared by the service tests (imported by name: this folder is on sys.path)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

CLIENT_ID = "00000000-0000-0000-0000-0000000000aa"
SCOPE = f"https://auth.globus.org/scopes/{CLIENT_ID}/benchmark"
INTROSPECT_URL = "https://auth.globus.org/v2/oauth2/token/introspect"


def bearer(name: str) -> dict[str, str]:
    """Authorization header with the test token ``<name>-token``."""
    return {"Authorization": f"Bearer {name}-token"}


def submit_job(client: Any, **options: Any) -> str:
    """Id of a job of the fake model ``log-blob`` on the mini dataset, queued by alice."""
    answer = client.post("/api/jobs", json={"model": "log-blob", "dataset_preset": "mini",
                                            "options": options}, headers=bearer("alice"))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["job"]["id"])


def run_blocked_job(client: Any) -> tuple[str, Any, threading.Thread]:
    """Submit a job whose shards block until ``service_fakes.RELEASE`` is set, and run it
    on a worker in a thread: its id, the worker and the thread."""
    import service_fakes as fakes

    from stembench.service.worker import Worker

    fakes.BLOCKED.clear()
    fakes.RELEASE.clear()
    job_id = submit_job(client, block=True)
    worker = Worker(client.app.state.settings, client.app.state.sessions)
    runner = threading.Thread(target=worker.run_once, daemon=True)
    runner.start()
    return job_id, worker, runner


def lock_is_held(path: Path | str) -> bool:
    """Whether someone holds the ``flock`` of the lock file ``path`` (tried from another
    open file, which is refused while the lock is held, even in this process)."""
    import fcntl
    import os

    descriptor = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def verify_now(verifier: Any, header: str) -> Any:
    """The identity ``verifier`` finds behind ``header`` (its request-path check, run here)."""
    import asyncio

    return asyncio.run(verifier.verify_async(header))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def install_dataset(cache_dir: Path, source: Path, *, preset: str = "mini") -> Path:
    """Put a dataset file (and its manifest copy) where the service's cache looks for it."""
    import os
    import shutil

    from stembench.dataset_publish.simulate.build import DATASET_NAME, DATASET_VERSION
    from stembench.dataset_publish.storage.cache import cache_path

    target = cache_path(DATASET_NAME, preset=preset, version=str(DATASET_VERSION),
                        cache_dir=cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    for name in (source.name, source.name + ".manifest.json"):
        destination = target.with_name(target.name + name[len(source.name):])
        if not destination.exists():
            try:
                os.link(source.with_name(name), destination)
            except OSError:
                shutil.copy(source.with_name(name), destination)
    return target


def make_settings(tmp_path: Path, database_url: str, **changes: Any) -> Any:
    """Service settings wired to the fakes: threads, fast polling, no bootstrap."""
    from stembench.service.settings import ServiceSettings

    values: dict[str, Any] = {
        "data_dir": tmp_path / "data", "database_url": database_url,
        "globus_client_id": CLIENT_ID, "globus_client_secret": "secret",
        "executor": "thread", "workers": 2, "dataset_cache_dir": str(tmp_path / "calls"),
        "shard_function": "service_fakes:fake_shard",
        "describe_function": "service_fakes:fake_describe",
        "options_check": "service_fakes:fake_options",
        "run_worker": False, "poll_interval_s": 0.05, "lease_s": 30.0, "report_bootstrap": 0,
    }
    values.update(changes)
    return ServiceSettings(**values)


class LiveServer:
    """A uvicorn server running an app in a thread on 127.0.0.1, configured as
    ``stembench serve`` configures it."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        from stembench.service.cli import uvicorn_config

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
