"""A real ``globus-compute-endpoint`` process on the stack, run as an unprivileged user.

The endpoint directory is what ``stembench endpoint config slurm-gpu --output DIR``
writes; ``globus-compute-endpoint start NAME`` (the endpoint's own CLI) registers it with
the web-service stand-in and, per submitting identity and options, forks a user endpoint
that renders ``user_config_template.yaml.j2`` itself and runs a GlobusComputeEngine whose
SlurmProvider submits ``sbatch`` jobs to the stack's Slurm.

It runs as the local account :data:`ENDPOINT_USER` (created when missing): started as
root, the endpoint registers as multi-user and needs identity mapping
(globus_compute_endpoint/cli.py:862-917, endpoint/core_endpoint.py:190-240); a personal
endpoint on a cluster runs as its owner.

With ``identity_map`` it is the administrator's multi-user endpoint instead: written with
``--multi-user --identity-map USERNAME=ACCOUNT``, started by root, and each user endpoint
is forked as the local account the endpoint's identity mapper gives the submitting
identity (core_endpoint.py:725-780, 1005-1200); those accounts are created with a home
(the user endpoint keeps its directory in ``~/.globus_compute``). As root, the endpoint
clears a user endpoint's environment and sets what ``user_environment.yaml`` in its
directory holds (core_endpoint.py:1107-1130), so that file carries the stack's variables.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

from other_accounts import let_others_run_this_python

from compute_stack.auth_service import Identity
from compute_stack.daemons import StackStartError, _tail
from compute_stack.stack import ComputeStack

__all__ = ["ADMIN_USERNAME", "ENDPOINT_USER", "EndpointProcess", "endpoint_user"]

ENDPOINT_USER = "stembench-ep"
#: The Globus identity that registers a multi-user endpoint (its administrator).
ADMIN_USERNAME = "admin@example.org"
REPO = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent


def endpoint_user(name: str = ENDPOINT_USER, *, home: bool = False) -> pwd.struct_passwd:
    """The local account ``name``, created (no login) if it does not exist.

    The account must run this Python and read this checkout: a folder on the way that
    others may not enter (``/root`` holding pyenv's interpreter, say) gets search
    permission for others (``o+x``: enter, not list). With ``home``, its home folder
    exists and is its own.
    """
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", name],
                       check=True, capture_output=True)
        account = pwd.getpwnam(name)
    let_others_run_this_python()
    if home:
        folder = Path(account.pw_dir)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chown(folder, account.pw_uid, account.pw_gid)
    return account


class EndpointProcess:
    """One endpoint: its directory, its owner's login, its process.

    Parameters
    ----------
    stack : ComputeStack
        The running stack.
    home : Path
        The endpoint owner's home for this test (``GLOBUS_COMPUTE_USER_DIR`` is
        ``home/.globus_compute``); created and given to the owner.
    username : str
        Globus identity of the owner.
    config_options : sequence of str
        Extra options of ``stembench endpoint config slurm-gpu``.
    env : dict
        Extra environment of the endpoint and its workers (e.g. ``STEMBENCH_CACHE``).
    identity_map : dict or None
        Globus username -> local account: a multi-user endpoint run by root and
        registered by :data:`ADMIN_USERNAME`, mapping each listed identity to its account.
    """

    name = "stembench"

    def __init__(self, stack: ComputeStack, home: Path, *, username: str = "alice@example.org",
                 config_options: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 identity_map: dict[str, str] | None = None) -> None:
        self.stack, self.home, self.username = stack, home, username
        self.identity_map = dict(identity_map or {})
        #: the account the endpoint process runs as; its tasks run as :attr:`accounts`
        self.account = pwd.getpwuid(0) if identity_map else endpoint_user()
        self.accounts = ([endpoint_user(a, home=True) for a in self.identity_map.values()]
                         if identity_map else [self.account])
        if identity_map:
            self.username = ADMIN_USERNAME
        self.user_dir = home / ".globus_compute"
        self.directory = self.user_dir / self.name
        self.config_options = config_options
        self.extra_env = dict(env or {})
        self.identity: Identity | None = None
        self.endpoint_id = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """The endpoint's environment (its workers inherit it through ``sbatch``)."""
        from stembench.client.executors import THREAD_VARIABLES

        python_path = os.pathsep.join([str(REPO / "src"), str(REPO / "tests" / "support")])
        # one thread per pool, as a local worker on this 2-core machine sizes itself
        threads = dict.fromkeys((*THREAD_VARIABLES, "TF_NUM_INTEROP_THREADS"), "1")
        return {**threads, "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
                "HOME": str(self.home), "USER": self.account.pw_name, "LANG": "C.UTF-8",
                "PYTHONPATH": python_path, "STEMBENCH_OFFLINE": "1",
                **self.stack.env(self.user_dir), **self.extra_env}

    def _as_owner(self, command: list[str]) -> list[str]:
        if self.account.pw_uid == os.getuid():
            return command
        return ["setpriv", f"--reuid={self.account.pw_uid}", f"--regid={self.account.pw_gid}",
                "--init-groups", "--", *command]

    def configure(self) -> None:
        """Write the endpoint directory with ``stembench endpoint config slurm-gpu``."""
        self.home.mkdir(parents=True, exist_ok=True)
        os.chown(self.home, self.account.pw_uid, self.account.pw_gid)
        self.identity = self.stack.login(self.user_dir, self.username, uid=self.account.pw_uid)
        mapping = [option for username, account in self.identity_map.items()
                   for option in ("--identity-map", f"{username}={account}")]
        if mapping:  # the stack's own variables; sbatch's folder and SLURM_CONF are found
            taken = ("HOME", "USER", "GLOBUS_COMPUTE_USER_DIR", "PATH", "SLURM_CONF")
            mapping += ["--multi-user", "--contact-email", ADMIN_USERNAME, *(
                option for name, value in self.env.items() if name not in taken
                for option in ("--user-env", f"{name}={value}"))]
        command = [str(VENV_BIN / "stembench"), "endpoint", "config", "slurm-gpu",
                   "--output", str(self.directory), "--partition", self.stack.slurm.partition,
                   "--worker-init", "true", *mapping, *self.config_options,
                   # the stack's Slurm does not fence its GPUs, device files no worker uses:
                   # a second block given GPU 1 would fail the check (tests/endpoints/
                   # test_gpu_fence.py runs it)
                   "--no-gpu-fence-check"]
        done = subprocess.run(self._as_owner(command), env=self.env, capture_output=True,
                              text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise StackStartError(f"stembench endpoint config failed: {done.stderr.strip()}")

    def start(self, *, seconds: float = 60) -> str:
        """Start ``globus-compute-endpoint start``; wait until it is online; its id."""
        if not self.directory.exists():
            self.configure()
        log = self.home / "endpoint-process.log"
        with log.open("ab") as out:
            self._process = subprocess.Popen(
                self._as_owner([str(VENV_BIN / "globus-compute-endpoint"), "start", self.name]),
                env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.home, start_new_session=True)
        end = time.monotonic() + seconds
        id_file = self.directory / "endpoint.json"
        while time.monotonic() < end:
            if self._process.poll() is not None:
                break
            if id_file.exists():
                import json

                self.endpoint_id = json.loads(id_file.read_text())["endpoint_id"]
                endpoint = self.stack.compute.endpoints.get(self.endpoint_id)
                if endpoint is not None and endpoint.online:
                    return self.endpoint_id
            time.sleep(0.3)
        raise StackStartError(f"globus-compute-endpoint did not come online within {seconds:.0f}"
                              f" s (exit {self._process.poll()}); {log}:\n{_tail(log)}\n"
                              f"{self.directory / 'endpoint.log'}:\n"
                              f"{_tail(self.directory / 'endpoint.log')}")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def processes(self) -> list[int]:
        """PIDs of every process still alive that runs the endpoint's tasks (user
        endpoints, workers): its owner's, or the mapped accounts' of a multi-user one."""
        uids = ",".join(str(a.pw_uid) for a in self.accounts)
        done = subprocess.run(["pgrep", "-u", uids], capture_output=True, text=True,
                              check=False)
        return [int(p) for p in done.stdout.split()]

    def stop(self, *, seconds: float = 30) -> None:
        """Stop the endpoint as ``globus-compute-endpoint stop`` would (SIGTERM), then wait."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=10)
        self._process = None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the core endpoint's and every user endpoint's log (a
        multi-user endpoint's user endpoints keep theirs in the mapped accounts' homes)."""
        logs = sorted(self.user_dir.rglob("*.log"))
        if self.identity_map and self.endpoint_id:
            logs += [p for a in self.accounts for p in sorted(Path(a.pw_dir).glob(
                f".globus_compute/uep.{self.endpoint_id}.*/endpoint.log"))]
        parts = [f"== {p}\n{_tail(p, lines)}" for p in logs]
        return "\n".join(parts)
