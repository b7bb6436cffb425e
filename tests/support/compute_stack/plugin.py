"""pytest fixtures of the local Globus Compute stack (loaded from ``tests/conftest.py``).

Fixtures
--------
compute_stack (session)
    The running :class:`~compute_stack.stack.ComputeStack`; skipped with the reason when
    this machine cannot run it (not root, Debian packages missing).
endpoint_cache (session)
    A ``STEMBENCH_CACHE`` folder with the ``mini`` preset built, readable by the endpoint.
slurm_endpoint (function)
    The started :class:`~compute_stack.endpoint.EndpointProcess` from
    ``stembench endpoint config slurm-gpu`` shared by the session (restarted, same id, if
    a test stopped it).
start_endpoint (function)
    Factory ``start_endpoint(config_options=(...), env={...}) -> EndpointProcess`` for a
    test that needs other options; stops the shared endpoint first; each is stopped after
    the test.
multi_user_endpoint (module)
    The administrator's multi-user endpoint, run by root, mapping the identities of
    :data:`MAPPED_ACCOUNTS` to their own local accounts; stops the shared endpoint first.
compute_client (function)
    :class:`ClientSide`: a logged-in SDK user directory, the environment for a
    ``stembench`` process (:meth:`ClientSide.run`), and ``os.environ`` set for in-process
    SDK use.

Tests using these get the ``compute_stack`` marker (``-m "not compute_stack"`` skips them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from compute_stack.daemons import StackStartError
from compute_stack.endpoint import REPO, VENV_BIN, EndpointProcess, endpoint_user
from compute_stack.stack import ComputeStack

MARK = "compute_stack"
#: Globus identity -> local account of :func:`multi_user_endpoint`'s identity mapping.
MAPPED_ACCOUNTS = {"alice@example.org": "stembench-alice", "bob@example.org": "stembench-bob"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARK}: runs on the local Globus Compute stack "
                            "(RabbitMQ, Slurm, endpoint process; root only)")


#: Stop functions of the running stack and shared endpoint, most recent last.
_RUNNING: list[Callable[[], None]] = []
_LAST_USER: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    users = [item for item in items if "compute_stack" in getattr(item, "fixturenames", ())]
    for item in users:
        item.add_marker(MARK)
    _LAST_USER[:] = [users[-1].nodeid] if users else []


@pytest.hookimpl(trylast=True)  # after the test's own fixtures are torn down
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last test that uses the stack, stop it (not at the end of the session).

    Only one stack runs per machine (port 5000); holding it while the rest of a long
    session runs would keep other test sessions waiting for its lock.
    """
    if _LAST_USER and item.nodeid == _LAST_USER[0]:
        while _RUNNING:
            _RUNNING.pop()()


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "the Compute stack starts Slurm and RabbitMQ daemons: run as root"
    missing = [p for p in ("munged", "slurmctld", "slurmd", "sbatch")
               if shutil.which(p) is None]
    if not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists():
        missing.append("rabbitmq-server")
    if missing:
        return f"missing {missing}: bash scripts/bootstrap.sh --test installs them"
    return None


@pytest.fixture(scope="session")
def compute_stack() -> Iterator[ComputeStack]:
    """RabbitMQ, Slurm and the web-service/Auth stand-ins, up for the whole session."""
    reason = _why_not()
    if reason and os.environ.get("STEMBENCH_REQUIRE_EXTRAS") == "1":
        pytest.fail(f"the Compute stack cannot run here: {reason}")  # CI must run these tests
    if reason:
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="stembench-stack-"))
    stack = ComputeStack(folder)
    try:
        stack.start()
    except StackStartError as exc:
        pytest.fail(f"the Compute stack did not start: {exc}")
    _RUNNING.append(stack.stop)
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def endpoint_cache(compute_stack: ComputeStack) -> Path:
    """A dataset cache with the ``mini`` preset, owned by the endpoint's account."""
    from stembench.dataset_publish.loading import load

    cache = compute_stack.folder / "stembench-cache"
    load(preset="mini", cache_dir=cache)
    account = endpoint_user()
    for path in (cache, *cache.rglob("*")):
        os.chown(path, account.pw_uid, account.pw_gid)
    return cache


def _endpoint(stack: ComputeStack, endpoint_cache: Path, name: str,
              config_options: tuple[str, ...] = (), env: dict[str, str] | None = None,
              identity_map: dict[str, str] | None = None) -> EndpointProcess:
    # the node has this host's CPUs (2 on CI) and declares no memory: one CPU per GPU and
    # Slurm's default memory, or a block would ask for more than the node has; a lost block
    # (job cancelled, past its walltime) is noticed after 10 s, not parsl's 120 s
    return EndpointProcess(stack, stack.folder / name, config_options=(
        "--walltime", "00:30:00", "--cpus-per-gpu", "1", "--mem-per-gpu-gb", "0",
        "--heartbeat-period", "2", "--heartbeat-threshold", "10", *config_options),
        env={"STEMBENCH_CACHE": str(endpoint_cache), **(env or {})}, identity_map=identity_map)


@pytest.fixture(scope="session")
def _shared_endpoint(compute_stack: ComputeStack, endpoint_cache: Path
                     ) -> Iterator[EndpointProcess]:
    endpoint = _endpoint(compute_stack, endpoint_cache, "shared-endpoint")
    _RUNNING.append(endpoint.stop)
    yield endpoint
    endpoint.stop()


@pytest.fixture
def slurm_endpoint(_shared_endpoint: EndpointProcess) -> EndpointProcess:
    """The shared endpoint (``slurm-gpu`` template, default options), (re)started if needed.

    A test may stop it; the next test that asks for it starts it again (same endpoint id).
    """
    if not _shared_endpoint.running:
        try:
            _shared_endpoint.start()
        except StackStartError as exc:
            pytest.fail(str(exc))
    return _shared_endpoint


@pytest.fixture
def start_endpoint(compute_stack: ComputeStack, endpoint_cache: Path,
                   _shared_endpoint: EndpointProcess
                   ) -> Iterator[Callable[..., EndpointProcess]]:
    """Factory of endpoints private to one test (each in its own home), stopped after it.

    The shared endpoint is stopped first: its idle block keeps a GPU and a CPU of the one
    node (``exclusive: false``, one CPU per GPU here), which another endpoint's block may
    need (e.g. ``--gpus 2``).
    """
    started: list[EndpointProcess] = []
    _shared_endpoint.stop()

    def start(*, config_options: tuple[str, ...] = (), env: dict[str, str] | None = None
              ) -> EndpointProcess:
        endpoint = _endpoint(compute_stack, endpoint_cache, f"endpoint-{len(started)}-"
                             f"{os.urandom(3).hex()}", config_options, env)
        started.append(endpoint)
        endpoint.start()
        return endpoint

    yield start
    for endpoint in started:
        endpoint.stop()


@pytest.fixture(scope="module")
def multi_user_endpoint(compute_stack: ComputeStack, endpoint_cache: Path,
                        _shared_endpoint: EndpointProcess) -> Iterator[EndpointProcess]:
    """A multi-user endpoint (root, ``--identity-map``) for the tests of one module.

    The shared endpoint is stopped first (its idle block holds a GPU and a CPU of the
    node, which the mapped users' blocks need).
    """
    _shared_endpoint.stop()
    endpoint = _endpoint(compute_stack, endpoint_cache, f"multi-user-{os.urandom(3).hex()}",
                         identity_map=MAPPED_ACCOUNTS)
    _RUNNING.append(endpoint.stop)
    try:
        endpoint.start()
    except StackStartError as exc:
        endpoint.stop()
        pytest.fail(str(exc))
    yield endpoint
    endpoint.stop()
    for account in endpoint.accounts:  # the user endpoints' folders of this endpoint
        for folder in Path(account.pw_dir).glob(f".globus_compute/uep.{endpoint.endpoint_id}.*"):
            shutil.rmtree(folder, ignore_errors=True)


@dataclass
class ClientSide:
    """A user of the SDK on the stack: token directory, stembench config, environment."""

    stack: ComputeStack
    folder: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300, **popen: Any
            ) -> subprocess.CompletedProcess[str]:
        """Run ``stembench ARGS`` as this user; fails the test if it outlives ``timeout``."""
        return subprocess.run([str(VENV_BIN / "stembench"), *args], env=self.env,
                              cwd=self.folder, capture_output=True, text=True,
                              timeout=timeout, check=False, **popen)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Start ``stembench ARGS`` as this user (its own session, output piped)."""
        return subprocess.Popen([str(VENV_BIN / "stembench"), *args], env=self.env,
                                cwd=self.folder, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.fixture
def compute_client(compute_stack: ComputeStack, endpoint_cache: Path,
                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ClientSide:
    """The endpoint owner's identity logged in on the client side of this test."""
    user_dir = tmp_path / "globus_compute"
    compute_stack.login(user_dir, "alice@example.org")
    stack_env = compute_stack.env(user_dir) | {
        "STEMBENCH_CONFIG": str(tmp_path / "stembench-config.json"),
        "STEMBENCH_CACHE": str(endpoint_cache)}
    for key, value in stack_env.items():
        monkeypatch.setenv(key, value)
    python_path = os.pathsep.join([str(REPO / "src"), str(REPO / "tests" / "support")])
    env = {**os.environ, **stack_env, "PYTHONPATH": python_path}
    env.pop("PYTEST_CURRENT_TEST", None)
    return ClientSide(compute_stack, tmp_path, env)
