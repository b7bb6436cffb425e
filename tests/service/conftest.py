"""Fixtures of the service tests: databases (SQLite and a real PostgreSQL), mocked Globus
Auth, the app with a fast fake evaluation, and a uvicorn server on loopback."""

from __future__ import annotations

import glob
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from service_helpers import (  # noqa: E402
    CLIENT_ID,
    INTROSPECT_URL,
    SCOPE,
    free_port,
    install_dataset,
    make_settings,
)


def _token(sub: str, **changes: Any) -> dict[str, Any]:
    data = {"active": True, "sub": sub, "username": f"{sub}@example.org",
            "scope": f"openid {SCOPE}", "aud": [CLIENT_ID, "auth.globus.org"],
            "exp": int(time.time()) + 3600, "client_id": "some-app"}
    data.update(changes)
    return data


def introspection_data() -> dict[str, dict[str, Any]]:
    """What mocked Globus Auth says about each test token."""
    return {
        "alice-token": _token("alice"),
        "bob-token": _token("bob"),
        "expired-token": _token("alice", exp=int(time.time()) - 10),
        "inactive-token": {"active": False},
        "foreign-token": _token("alice", aud=["some-other-service"]),
        "noscope-token": _token("alice", scope="openid profile"),
    }


@pytest.fixture
def globus_auth() -> Iterator[responses.RequestsMock]:
    """Globus Auth's introspection endpoint, mocked; ``.calls`` counts introspections."""

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        token = parse_qs(request.body)["token"][0]
        return 200, {}, json.dumps(introspection_data().get(token, {"active": False}))

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, INTROSPECT_URL, callback=answer,
                          content_type="application/json")
        mock.add_passthru("http://127.0.0.1")  # a live test server (stembench submit)
        yield mock


def _postgres_bin() -> Path:
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if all(Path(folder, tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found under "
                "/usr/lib/postgresql/*/bin: run the project's bootstrap script, which installs "
                "Debian's 'postgresql' package", pytrace=False)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[dict[str, Any]]:
    """A PostgreSQL server on 127.0.0.1 (free port), data and socket in a temp folder."""
    binaries = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="stembench-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        shutil.chown(root, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*run_as, *args], check=True, capture_output=True, timeout=120)

    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
        "--no-locale", "-E", "UTF8", "--no-sync")
    options = (f"-h 127.0.0.1 -p {port} -k {root} -F -c fsync=off "
               "-c full_page_writes=off -c max_connections=200")
    run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
        "-w", "-t", "60", "start")
    try:
        yield {"port": port, "root": root}
    finally:
        subprocess.run([*run_as, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


_DB_NUMBERS = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database: a SQLite file, or a new database on the test PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    server = request.getfixturevalue("postgres_server")
    import psycopg

    name = f"stembench_test_{os.getpid()}_{next(_DB_NUMBERS)}"
    with psycopg.connect(host="127.0.0.1", port=server["port"], user="postgres",
                         dbname="postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:{server['port']}/{name}"


@pytest.fixture
def dataset_cache(tmp_path: Path, mini_dataset_path: Path) -> Path:
    """The service's dataset cache (``<tmp>/calls``) holding the real mini dataset."""
    install_dataset(tmp_path / "calls", mini_dataset_path)
    return tmp_path / "calls"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, dataset_cache: Path) -> Any:
    """Settings of a service with no background worker (tests drive it)."""
    return make_settings(tmp_path, database_url)


@pytest.fixture
def client(settings: Any, globus_auth: responses.RequestsMock) -> Iterator[Any]:
    """A TestClient of the app (lifespan run), Globus Auth mocked."""
    from fastapi.testclient import TestClient

    from stembench.service.app import create_app

    app = create_app(settings)
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()


