"""The local Globus Compute stack: real RabbitMQ and Slurm, stand-ins for the two clouds.

:class:`ComputeStack` starts RabbitMQ and a one-node Slurm (:mod:`.daemons`), the Auth and
Compute web-service stand-ins (:mod:`.auth_service`, :mod:`.web_service`), and gives
processes the environment that sends the installed SDK and endpoint to them:

* ``GLOBUS_SDK_ENVIRONMENT=local``: the Compute SDK's base URL becomes
  ``http://localhost:5000`` (globus_compute_sdk/sdk/_environments.py:14-27; the SDK
  passes it as ``base_url``, client.py:219-241, so no other variable moves it). Port 5000
  is therefore fixed; :class:`ComputeStack` holds ``/tmp/stembench-compute-stack.lock``
  while it runs so two test sessions on one machine take turns.
* ``GLOBUS_SDK_SERVICE_URL_AUTH``: globus_sdk's Auth clients (globus_sdk/config/
  environments.py:77-84).
* ``GLOBUS_COMPUTE_USER_DIR``: where the SDK and the endpoint keep tokens and endpoint
  directories (globus_compute_sdk/sdk/compute_dir.py:10-21).
* ``SLURM_CONF``: this stack's Slurm for ``sbatch``/``squeue``/``scancel``.

:meth:`ComputeStack.login` writes the tokens a ``globus-compute-endpoint login`` would
have stored: ``SQLiteTokenStorage`` at ``<user dir>/storage.db``, namespace
``user/<environment>`` (globus_compute_sdk/sdk/auth/token_storage.py:11-36), one entry
per resource server the apps require (compute ``funcx_service``; the endpoint adds
``auth.globus.org``, globus_compute_endpoint/auth.py:7-18).
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO, Any

from compute_stack.auth_service import AuthState, Identity
from compute_stack.broker import Broker
from compute_stack.daemons import RabbitMQ, Slurm, StackStartError
from compute_stack.http import JsonServer
from compute_stack.web_service import ComputeState

__all__ = ["COMPUTE_PORT", "ComputeStack"]

#: The port of ``GLOBUS_SDK_ENVIRONMENT=local`` (fixed by the SDK).
COMPUTE_PORT = 5000
LOCK_PATH = Path("/tmp/stembench-compute-stack.lock")


class ComputeStack:
    """Start with :meth:`start`, stop with :meth:`stop`; ``folder`` holds every file.

    Attributes
    ----------
    rabbitmq, slurm
        The real daemons.
    auth : AuthState
        Identities and tokens (the Auth stand-in's state).
    compute : ComputeState
        Endpoints, functions, tasks (the web-service stand-in's state); its ``inject``
        makes routes fail.
    start_seconds : float
        Wall time :meth:`start` took.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.rabbitmq = RabbitMQ(folder / "rabbitmq")
        self.slurm = Slurm(folder / "slurm")
        self.auth = AuthState()
        self.compute: ComputeState
        self.start_seconds = 0.0
        self._servers: list[JsonServer] = []
        self._broker: Broker | None = None
        self._lock_file: IO[str] | None = None

    def start(self, *, lock_wait_s: float = 600) -> ComputeStack:
        """Take the machine-wide lock, start every part, return ``self``."""
        began = time.monotonic()
        self._lock_file = LOCK_PATH.open("a")
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() - began > lock_wait_s:
                    raise StackStartError(
                        f"another test session holds {LOCK_PATH} (port {COMPUTE_PORT}) for "
                        f"more than {lock_wait_s:.0f} s") from exc
                time.sleep(1)
        began = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)
        try:
            self.slurm.start()
            self.rabbitmq.start()
            self._broker = Broker(self.rabbitmq.url, on_result=self._on_result,
                                  on_heartbeat=self._on_heartbeat)
            self.compute = ComputeState(self.auth, self._broker)
            self._servers.append(JsonServer(self.auth.route))
            self._servers.append(JsonServer(self.compute.route, port=COMPUTE_PORT))
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _on_result(self, body: bytes) -> None:
        self.compute.on_result(body)

    def _on_heartbeat(self, body: bytes) -> None:
        self.compute.on_heartbeat(body)

    @property
    def auth_url(self) -> str:
        return self._servers[0].url

    def env(self, user_dir: Path) -> dict[str, str]:
        """Environment entries for an SDK or endpoint process keeping its state in ``user_dir``."""
        return {"GLOBUS_SDK_ENVIRONMENT": "local", "GLOBUS_SDK_SERVICE_URL_AUTH": self.auth_url,
                "GLOBUS_COMPUTE_USER_DIR": str(user_dir), **self.slurm.env}

    def login(self, user_dir: Path, username: str, *, uid: int | None = None) -> Identity:
        """Store tokens of identity ``username`` in ``user_dir`` (as a Globus login would)."""
        from globus_compute_sdk.sdk.auth.auth_client import ComputeAuthClient
        from globus_sdk import ComputeClientV3
        from globus_sdk.token_storage import SQLiteTokenStorage, TokenStorageData

        identity = self.auth.identity(username)
        user_dir.mkdir(parents=True, exist_ok=True)
        storage = SQLiteTokenStorage(user_dir / "storage.db", namespace="user/local")
        entries = {}
        for client in (ComputeClientV3, ComputeAuthClient):
            server = client.scopes.resource_server
            scope = " ".join(str(s) for s in client.default_scope_requirements)
            grant = self.auth.grant(identity, server, scope)
            entries[server] = TokenStorageData(
                resource_server=server, identity_id=identity.sub, scope=scope,
                access_token=grant.access_token, refresh_token=grant.refresh_token,
                expires_at_seconds=grant.expires_at, token_type="Bearer")
        storage.store_token_data_by_resource_server(entries)
        storage.close()
        if uid is not None:
            for path in (user_dir, *user_dir.rglob("*")):
                os.chown(path, uid, -1)
        return identity

    def stop(self) -> None:
        """Stop every part that started (idempotent), then release the lock."""
        for server in self._servers:
            server.close()
        self._servers.clear()
        if self._broker is not None:
            self._broker.close()
            self._broker = None
        self.rabbitmq.stop()
        self.slurm.stop()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> ComputeStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
