"""The real daemons of the local Globus Compute stack: RabbitMQ, munge, slurmctld, slurmd.

Each runs from Debian's packages (``rabbitmq-server``, ``munge``, ``slurm-wlm``) with its
configuration, state and logs in a folder of its own, on free ports, so a test session
never touches a system-wide instance. Starting needs root (slurmd starts jobs as their
owner; the Debian ``rabbitmq-server`` wrapper is bypassed so files stay in the folder).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RabbitMQ", "Slurm", "StackStartError", "free_port"]

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


class StackStartError(RuntimeError):
    """A daemon of the stack did not start; the message names it and quotes its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def _wait_listening(port: int, *, seconds: float, what: str, log: Path) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise StackStartError(f"{what} did not listen on port {port} within {seconds:.0f} s; "
                          f"log {log}:\n{_tail(log)}")


@dataclass
class RabbitMQ:
    """A RabbitMQ broker in ``folder`` with one account for the web-service stand-in.

    The account's password is random per start; :attr:`url` is what the stand-in hands
    out as ``connection_url`` (the SDK and the endpoint parse it with
    ``pika.URLParameters``).
    """

    folder: Path
    port: int = 0
    user: str = "compute"
    password: str = ""
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://{self.user}:{self.password}@localhost:{self.port}/"

    def _env(self) -> dict[str, str]:
        dist, epmd = self._ports
        return {**os.environ, "HOME": str(self.folder),
                "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.folder / "log"),
                "RABBITMQ_NODENAME": f"stembench{self.port}@localhost",
                "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(dist),
                "ERL_EPMD_PORT": str(epmd),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
                "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq"),
                "RABBITMQ_PID_FILE": str(self.folder / "rabbitmq.pid")}

    def start(self) -> None:
        """Start the broker and wait until it accepts AMQP connections."""
        if not (RABBITMQ_BIN / "rabbitmq-server").exists():
            raise StackStartError("rabbitmq-server is not installed (bash scripts/bootstrap.sh "
                                  "--test installs it)")
        self.folder.mkdir(parents=True, exist_ok=True)
        for sub in ("mnesia", "log"):
            (self.folder / sub).mkdir(exist_ok=True)
        self.port = self.port or free_port()
        self._ports = (free_port(), free_port())
        self.password = self.password or os.urandom(12).hex()
        (self.folder / "enabled_plugins").write_text("[].\n")
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {self.port}\nloopback_users = none\n"
            f"default_user = {self.user}\ndefault_pass = {self.password}\n"
            "default_permissions.configure = .*\ndefault_permissions.read = .*\n"
            "default_permissions.write = .*\n")
        log = self.folder / "server.log"
        with log.open("ab") as out:
            self._process = subprocess.Popen(
                [str(RABBITMQ_BIN / "rabbitmq-server")], env=self._env(), stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        _wait_listening(self.port, seconds=60, what="RabbitMQ", log=log)

    def stop(self) -> None:
        """Stop the broker (``rabbitmqctl stop``, then the process group)."""
        if self._process is None:
            return
        subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "stop"], env=self._env(),
                       capture_output=True, timeout=60, check=False)
        _end_group(self._process)
        # rabbitmq-server starts epmd as a daemon outside its group, on this start's port
        subprocess.run(["epmd", "-kill"], env=self._env(), capture_output=True, timeout=30,
                       check=False)
        self._process = None


def _end_group(process: subprocess.Popen[bytes], seconds: float = 10) -> None:
    """Terminate ``process``'s session group, then kill it if it outlives ``seconds``."""
    for signal_name in ("SIGTERM", "SIGKILL"):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, getattr(signal, signal_name))
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            continue
    # the group may hold children after the leader ended (slurmstepd, say)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


@dataclass
class Slurm:
    """A one-node Slurm cluster on this host: munged, slurmctld and slurmd in ``folder``.

    ``proctrack/linuxproc`` and ``task/none`` (no cgroups), ``select/cons_tres``. The
    node declares ``gpus`` GRES of type gpu without device files: the endpoint
    template's ``--gpus-per-node`` request is schedulable on this CPU host (nothing is
    bound; models run on the CPU). Clients find the cluster through ``SLURM_CONF``
    (:attr:`env`).
    """

    folder: Path
    partition: str = "gpu"
    gpus: int = 2
    _processes: tuple[subprocess.Popen[bytes], ...] = ()

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """Environment entries that point Slurm's commands at this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def _write_config(self) -> None:
        host = socket.gethostname().split(".")[0]
        cpus = len(os.sched_getaffinity(0))
        munge = self.folder / "munge"
        ctld_port, slurmd_port = free_port(), free_port()
        lines = [
            "ClusterName=stembench", f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}", f"SlurmdPort={slurmd_port}",
            "SlurmUser=root", "SlurmdUser=root", "AuthType=auth/munge",
            f"AuthInfo=socket={munge / 'run' / 'socket'}", "CredType=cred/munge",
            f"StateSaveLocation={self.folder / 'state'}",
            f"SlurmdSpoolDir={self.folder / 'spool'}",
            f"SlurmctldPidFile={self.folder / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.folder / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.folder / 'slurmctld.log'}",
            f"SlurmdLogFile={self.folder / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none", "MpiDefault=none",
            "ReturnToService=2", "SchedulerType=sched/backfill", "GresTypes=gpu",
            "KillWait=2", "MinJobAge=300",
            f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} Gres=gpu:{self.gpus} "
            "State=UNKNOWN",
            f"PartitionName={self.partition} Nodes={host} Default=YES MaxTime=INFINITE "
            "State=UP OverSubscribe=YES"]
        self.conf.write_text("\n".join(lines) + "\n")
        # slurmd drops a GPU GRES without device files, and wants character devices: these
        # are /dev/null's device numbers (no cgroup device constraint here: nothing opens them)
        devices = self.folder / "dev"
        devices.mkdir(exist_ok=True)
        for index in range(self.gpus):
            node = devices / f"gpu{index}"
            if not node.exists():
                os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        (self.folder / "gres.conf").write_text(
            f"NodeName={host} Name=gpu File={devices}/gpu[0-{self.gpus - 1}]\n")

    def start(self) -> None:
        """Start munged, slurmctld and slurmd; wait until the node is idle."""
        for program in ("munged", "slurmctld", "slurmd", "sbatch"):
            if shutil.which(program) is None:
                raise StackStartError(f"{program} is not installed (bash scripts/bootstrap.sh "
                                      "--test installs munge and slurm-wlm)")
        for sub in ("munge/run", "state", "spool"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        munge = self.folder / "munge"
        os.chmod(munge, 0o711)  # munged refuses a socket folder others cannot reach
        os.chmod(munge / "run", 0o755)
        self._write_config()
        key = munge / "munge.key"
        key.write_bytes(os.urandom(128))
        os.chmod(key, 0o600)
        env = {**os.environ, **self.env}
        started = []
        for name, command in (
                ("munged", ["munged", "--foreground", f"--socket={munge / 'run' / 'socket'}",
                            f"--key-file={key}", f"--log-file={munge / 'munged.log'}",
                            f"--pid-file={munge / 'munged.pid'}",
                            f"--seed-file={munge / 'munged.seed'}"]),
                ("slurmctld", ["slurmctld", "-D", "-i"]),
                ("slurmd", ["slurmd", "-D"])):
            with (self.folder / f"{name}.out").open("ab") as out:
                started.append(subprocess.Popen(command, env=env, stdout=out,
                                                stderr=subprocess.STDOUT,
                                                start_new_session=True))
            if name == "munged":
                self._wait_for(lambda: (munge / "run" / "socket").exists(), "munged",
                               munge / "munged.log")
            self._processes = tuple(started)
        self._wait_for(lambda: "idle" in self.run("sinfo", "-h", "-o", "%t"), "slurmd",
                       self.folder / "slurmd.log")

    def _wait_for(self, ready: object, what: str, log: Path, seconds: float = 30) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if ready():  # type: ignore[operator]
                return
            for process in self._processes:
                if process.poll() is not None:
                    break
            time.sleep(0.2)
        raise StackStartError(f"{what} did not become ready within {seconds:.0f} s; log "
                              f"{log}:\n{_tail(log)}")

    def run(self, *command: str) -> str:
        """Run a Slurm command against this cluster; its standard output ('' on failure)."""
        done = subprocess.run(command, env={**os.environ, **self.env}, capture_output=True,
                              text=True, timeout=30, check=False)
        return done.stdout if done.returncode == 0 else ""

    def jobs(self) -> list[tuple[str, str, str]]:
        """``(job id, state, user)`` of every pending or running job."""
        return [job for job in self.history() if job[1] in ("PENDING", "RUNNING",
                                                            "CONFIGURING", "COMPLETING")]

    def history(self) -> list[tuple[str, str, str]]:
        """``(job id, state, user)`` of every job of the last 5 minutes (``MinJobAge``)."""
        out = self.run("squeue", "-h", "--states=all", "-o", "%i|%T|%u")
        return [(a, b, c) for a, b, c in (line.split("|", 2) for line in out.splitlines()
                                          if line.count("|") == 2)]

    def stop(self) -> None:
        """Cancel every job, then stop slurmd, slurmctld and munged."""
        if not self._processes:
            return
        for job_id, _state, _name in self.jobs():
            self.run("scancel", job_id)
        for process in reversed(self._processes):
            _end_group(process)
        self._processes = ()
