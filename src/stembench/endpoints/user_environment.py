"""The environment a multi-user endpoint gives each user endpoint (``user_environment.yaml``).

A multi-user endpoint run by root clears the environment of every user endpoint it starts,
loads only ``user_environment.yaml`` from its directory and, without a ``PATH`` there, sets
``PATH=/usr/local/bin:/usr/bin:/bin:<its python's bin>`` (globus_compute_endpoint/endpoint/
core_endpoint.py:1092-1094, 1135-1150, 1203-1212). A user endpoint submits its blocks with
the batch system's commands and its jobs inherit that environment: without the folder of
``sbatch`` (``qsub``) on ``PATH`` or a site's ``SLURM_CONF``, no block ever starts.
:func:`user_environment` takes those from the administrator's environment when the
directory is written.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from stembench.errors import InputError

__all__ = ["SITE_VARIABLES", "module_note", "parse_user_env", "user_environment",
           "user_environment_text"]

#: Variables kept from the administrator's environment when set: the batch system's
#: configuration and environment modules (Lmod or Tcl modules; ``BASH_ENV`` is how Lmod
#: sites give a non-interactive bash the ``module`` function).
SITE_VARIABLES = ("SLURM_CONF", "PBS_CONF_FILE", "MODULEPATH", "MODULESHOME", "LMOD_CMD",
                  "LMOD_DIR", "LMOD_PKG", "LMOD_ROOT", "LMOD_SYSTEM_DEFAULT_MODULES",
                  "BASH_ENV", "LANG")
#: The commands each batch template runs (parsl's SlurmProvider / PBSProProvider).
SUBMIT_COMMANDS = {"slurm-gpu": ("sbatch", "squeue", "scancel"),
                   "pbs-gpu": ("qsub", "qstat", "qdel")}
_BASE_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Each account's own, set by the endpoint per user: one value for all would be wrong.
_PER_USER = ("HOME", "USER", "LOGNAME", "GLOBUS_COMPUTE_USER_DIR")


def parse_user_env(entries: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``("NAME=VALUE", ...)`` (the command line's ``--user-env``) as checked pairs."""
    pairs = []
    for entry in entries:
        name, sep, value = entry.partition("=")
        if not (sep and _NAME.match(name)):
            raise InputError(f"user environment entry {entry!r}: write NAME=VALUE, e.g. "
                             "SLURM_CONF=/etc/slurm/slurm.conf")
        if name in _PER_USER:
            raise InputError(f"user environment entry {name}: the endpoint sets it for each "
                             "user; it must not be the same for all")
        pairs.append((name, value))
    return tuple(pairs)


def user_environment(template: str, *, user_path: Iterable[str] = (),
                     user_env: Iterable[tuple[str, str]] = (),
                     environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of ``user_environment.yaml`` for ``template``.

    Parameters
    ----------
    template : str
        The endpoint template; the HPC ones need their batch commands on ``PATH``.
    user_path : iterable of str
        Folders put first on the user endpoints' ``PATH`` (``--user-path``).
    user_env : iterable of (str, str)
        Variables set as given, after everything else (``--user-env NAME=VALUE``).
    environ : mapping, optional
        The administrator's environment; default ``os.environ``.

    Returns
    -------
    dict of str to str
        ``PATH`` (the given folders, the folders of the batch commands found on ``PATH``,
        this Python's bin folder, which holds ``globus-compute-endpoint``, then
        ``/usr/local/bin:/usr/bin:/bin``), the :data:`SITE_VARIABLES` that are set, then
        ``user_env``.
    """
    environ = os.environ if environ is None else environ
    extra = [str(Path(folder).expanduser().absolute()) for folder in user_path]
    search = os.pathsep.join([*extra, environ.get("PATH", "")])
    folders = list(extra)
    for command in SUBMIT_COMMANDS.get(template, ()):
        found = shutil.which(command, path=search)
        if found is None:
            raise InputError(f"{template}: {command} is not on PATH here, so user endpoints "
                             f"could not submit blocks; run this where {command} works or "
                             "give --user-path FOLDER (the folder that holds it)")
        folders.append(str(Path(found).parent))
    folders += [str(Path(sys.executable).parent), *_BASE_PATH]
    variables = {"PATH": os.pathsep.join(dict.fromkeys(folders))}
    variables |= {name: environ[name] for name in SITE_VARIABLES if environ.get(name)}
    return variables | dict(user_env)


def user_environment_text(variables: Mapping[str, str]) -> str:
    """``user_environment.yaml``: a header saying what it is for, then ``variables``."""
    import yaml

    header = ("# The whole environment of each user endpoint of this multi-user endpoint\n"
              "# (and of its batch jobs): the endpoint clears its own before starting one.\n"
              "# Written by stembench endpoint config from the administrator's environment.\n")
    return header + yaml.safe_dump(dict(variables), sort_keys=False)


def module_note(worker_init: str, variables: Mapping[str, str]) -> str | None:
    """A note when ``worker_init`` calls ``module`` where a batch job's bash has none.

    A batch job's shell is a non-login bash: ``module`` is a shell function that only
    ``/etc/profile`` (or ``BASH_ENV``) defines.
    """
    if (re.search(r"(^|[;&|(\s])module\s", worker_init) is None
            or "/etc/profile" in worker_init or variables.get("BASH_ENV")):
        return None
    return ("Note: worker_init calls `module`, which a batch job's non-login bash does not "
            "define; begin it with `source /etc/profile; ` (or your site's module init).")
