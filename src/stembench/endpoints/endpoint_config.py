"""Globus Compute endpoint directories for running stembench next to the data.

Since globus-compute-endpoint 4.10 an endpoint directory holds a ``config.yaml`` without
an engine (what ``globus-compute-endpoint start`` accepts) and a
``user_config_template.yaml.j2`` that the endpoint renders for each submitting user into
the engine and provider, after checking the user's options against
``user_config_schema.json``. :func:`write_endpoint_directory` writes that directory for
one of three templates: ``workstation-gpu`` (one machine, LocalProvider), ``slurm-gpu``
(SlurmProvider) and ``pbs-gpu`` (PBSProProvider); each pins one GPU per worker through
``available_accelerators``. A multi-user endpoint (run by root, each Globus user mapped to
a local account, by the identity's domain or one by one) also gets
``identity_mapping_config.json`` and ``user_environment.yaml`` (the whole environment of
its user endpoints, see :mod:`stembench.endpoints.user_environment`).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from stembench.endpoints.gpu_fence import fence_line
from stembench.endpoints.user_environment import (
    parse_user_env,
    user_environment,
    user_environment_text,
)
from stembench.errors import InputError

__all__ = ["SINGLE_USER_HINT", "TASK_TIMEOUT_OPTION", "EndpointSettings", "list_templates",
           "parse_identity_map", "render_user_template", "user_config_schema",
           "write_endpoint_directory"]

WALLTIME_PATTERN = r"^\d{1,3}:[0-5]\d:[0-5]\d$"
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
MAX_GPUS = 16
#: The user option that sets the endpoint's per-task limit (``GC_TASK_TIMEOUT``, seconds).
TASK_TIMEOUT_OPTION = "task_timeout_s"
MAX_TASK_TIMEOUT_S = 7 * 24 * 3600
_WALLTIME, _NAME = re.compile(WALLTIME_PATTERN), re.compile(NAME_PATTERN)
_DISPLAY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_USERNAME = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_ACCOUNT = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_HPC = ("slurm-gpu", "pbs-gpu")

#: Why a single-user directory must not be started by root: as root, globus-compute-endpoint
#: takes every endpoint for a multi-user one (globus_compute_endpoint/cli.py:918-922).
SINGLE_USER_HINT = (
    "Single-user endpoint: start it as the user who runs its tasks, not as root (as root, "
    "globus-compute-endpoint takes it for a multi-user endpoint and refuses it: 'Multi-user "
    "endpoints require a contact email address'); for an endpoint run by root, write it with "
    "stembench endpoint config --multi-user --identity-domain DOMAIN --contact-email ADDRESS.")


@dataclass(frozen=True)
class EndpointSettings:
    """What an administrator fills into an endpoint directory, validated on construction.

    Attributes
    ----------
    display_name : str
        Endpoint name shown in Globus.
    gpus : int
        GPUs per node (one worker per GPU), 1-16; also the most a user may request.
    worker_init : str
        Shell commands run before a worker starts (load modules, activate the environment
        that has stembench installed).
    partition : str
        Slurm partition or PBS queue (HPC templates): the default users may override.
    account : str
        Allocation charged when a user names none (HPC templates); empty for none.
    walltime : str
        Default block walltime as ``HH:MM:SS``.
    max_blocks : int
        Most batch jobs held at once per user endpoint.
    cpus_per_node : int
        CPUs per node requested (PBS).
    cpus_per_gpu : int
        CPUs a Slurm block asks for per GPU it uses (users may set ``cores_per_node``).
    mem_per_gpu_gb : int
        Memory (GB) a Slurm block asks for per GPU it uses (users may set ``mem_per_node``);
        0: Slurm's default (``DefMemPerCPU``/``DefMemPerNode``).
    interface : str
        Network interface workers reach the interchange on (e.g. ``ib0``); empty: default.
    heartbeat_period_s : int
        Seconds between the heartbeats a block's worker manager and the engine's interchange
        send each other (parsl HighThroughputExecutor ``heartbeat_period``).
    heartbeat_threshold_s : int
        Seconds without a heartbeat after which the interchange takes a manager for lost (a
        block cancelled or past its walltime, a node gone) and fails its tasks, which the
        engine then retries once on another block (``heartbeat_threshold``); at least two
        periods. parsl's defaults (30 s, 120 s) suit a shared cluster; a shorter threshold
        notices a lost block sooner but may take a manager stalled that long for lost.
    multi_user : bool
        A multi-user endpoint run by root that maps each Globus identity to a local account.
    identity_domain : str
        Multi-user: Globus usernames ``NAME@identity_domain`` map to local user ``NAME``.
    identity_map : tuple of (str, str)
        Multi-user: ``(Globus username, local account)`` pairs, each identity to its own
        account (checked before ``identity_domain``); an identity that neither maps is
        refused by the endpoint.
    contact_email : str
        Multi-user: the administrator's address (the endpoint refuses to start without it).
    allowed_functions : tuple of str
        Function UUIDs the endpoint runs (``stembench endpoint function`` shows stembench's);
        empty: any function.
    restrict_serializers : bool
        Accept only source-text code and JSON data (what stembench sends), no pickles.
    gpu_fence_check : bool
        ``slurm-gpu``: a block first checks that Slurm's GPUs for it are devices 0 to N-1,
        the ones its workers are pinned to (see :mod:`stembench.endpoints.gpu_fence`).
    user_path : tuple of str
        Multi-user: folders first on the user endpoints' ``PATH`` (``user_environment.yaml``).
    user_env : tuple of (str, str)
        Multi-user: variables of ``user_environment.yaml`` set as given (after those taken
        from the administrator's environment).
    """

    display_name: str = "stembench-gpu"
    gpus: int = 1
    worker_init: str = "source ~/stembench-venv/bin/activate"
    partition: str = "gpu"
    account: str = ""
    walltime: str = "01:00:00"
    max_blocks: int = 1
    cpus_per_node: int = 32
    cpus_per_gpu: int = 8
    mem_per_gpu_gb: int = 32
    interface: str = ""
    heartbeat_period_s: int = 30
    heartbeat_threshold_s: int = 120
    multi_user: bool = False
    identity_domain: str = ""
    identity_map: tuple[tuple[str, str], ...] = ()
    contact_email: str = ""
    allowed_functions: tuple[str, ...] = ()
    restrict_serializers: bool = True
    gpu_fence_check: bool = True
    user_path: tuple[str, ...] = ()
    user_env: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not _DISPLAY.match(self.display_name):
            raise InputError(f"endpoint display_name {self.display_name!r}: use letters, "
                             "digits, '.', '_' or '-'")
        if not 1 <= self.gpus <= MAX_GPUS:
            raise InputError(f"gpus must be between 1 and {MAX_GPUS}, got {self.gpus}")
        if not _WALLTIME.match(self.walltime):
            raise InputError(f"walltime must be HH:MM:SS, got {self.walltime!r}")
        if min(self.max_blocks, self.cpus_per_node, self.cpus_per_gpu) < 1:
            raise InputError("max_blocks, cpus_per_node and cpus_per_gpu must be >= 1")
        if not 1 <= self.heartbeat_period_s <= self.heartbeat_threshold_s // 2:
            raise InputError("heartbeat_period_s must be >= 1 and heartbeat_threshold_s at "
                             f"least twice it, got {self.heartbeat_period_s} and "
                             f"{self.heartbeat_threshold_s}")
        if self.mem_per_gpu_gb < 0:
            raise InputError(f"mem_per_gpu_gb must be >= 0, got {self.mem_per_gpu_gb}")
        for name in ("partition", "account", "interface"):
            value = getattr(self, name)
            if value and not _NAME.match(value):
                raise InputError(f"{name} {value!r}: use letters, digits, '.', '_' or '-'")
        if any(mark in self.worker_init for mark in ("{{", "{%", "{#", "\x00")):
            raise InputError("worker_init must not contain '{{', '{%' or '{#': the endpoint "
                             "renders the template with Jinja")
        for function_id in self.allowed_functions:
            _check_uuid(function_id, "allowed function")
        self._check_identity_map()
        if self.multi_user:
            if not (self.identity_map or _DOMAIN.match(self.identity_domain)):
                raise InputError("a multi-user endpoint needs identity_domain (e.g. "
                                 f"'university.edu') or identity_map entries, got "
                                 f"{self.identity_domain!r}")
            if not _EMAIL.match(self.contact_email):
                raise InputError("a multi-user endpoint needs the administrator's "
                                 f"contact_email, got {self.contact_email!r}")


    def _check_identity_map(self) -> None:
        for name in ("identity_map", "user_path", "user_env"):
            if getattr(self, name) and not self.multi_user:
                raise InputError(f"{name} needs a multi-user endpoint (multi_user)")
        parse_user_env(f"{name}={value}" for name, value in self.user_env)
        if self.identity_domain and not _DOMAIN.match(self.identity_domain):
            raise InputError(f"identity_domain {self.identity_domain!r} is not a domain "
                             "(e.g. 'university.edu')")
        seen: set[str] = set()
        for username, account in self.identity_map:
            if not _USERNAME.match(username):
                raise InputError(f"identity_map: {username!r} is not a Globus username "
                                 "(NAME@DOMAIN)")
            if not _ACCOUNT.match(account):
                raise InputError(f"identity_map: {account!r} (for {username}) is not a local "
                                 "account name (lower-case letters, digits, '_' or '-')")
            if username.lower() in seen:
                raise InputError(f"identity_map: {username} is mapped twice")
            seen.add(username.lower())


def parse_identity_map(entries: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``("USERNAME=ACCOUNT", ...)`` (the command line's ``--identity-map``) as pairs.

    The pairs are checked by :class:`EndpointSettings`; here only the form.
    """
    pairs = []
    for entry in entries:
        username, sep, account = entry.partition("=")
        if not (sep and username.strip() and account.strip()):
            raise InputError(f"identity map entry {entry!r}: write USERNAME=ACCOUNT, e.g. "
                             "alice@university.edu=alice")
        pairs.append((username.strip(), account.strip()))
    return tuple(pairs)


def _check_uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise InputError(f"{what} {value!r} is not a UUID") from exc


def _template_text(name: str) -> str:
    folder = resources.files("stembench.endpoints") / "endpoint_templates"
    return (folder / name).read_text(encoding="utf-8")


def list_templates() -> list[str]:
    """Names of the endpoint templates shipped with stembench."""
    folder = resources.files("stembench.endpoints") / "endpoint_templates"
    return sorted(p.name.removesuffix(".yaml.j2") for p in folder.iterdir()
                  if p.name.endswith(".yaml.j2") and not p.name.startswith("_"))


def _known(template: str) -> None:
    if template not in list_templates():
        raise InputError(f"unknown endpoint template {template!r}; known: {list_templates()}")


def render_user_template(template: str, settings: EndpointSettings | None = None) -> str:
    """The text of ``user_config_template.yaml.j2`` for ``template`` and ``settings``.

    stembench fills the administrator's values (delimiters ``[[ ]]`` and ``[% %]``); what
    remains in ``{{ }}`` is rendered by the endpoint per user, with the user's options.
    """
    import jinja2

    _known(template)
    names = [f"{template}.yaml.j2", "_engine.yaml.j2", "_worker_init.yaml.j2"]
    env = jinja2.Environment(
        loader=jinja2.DictLoader({n: _template_text(n) for n in names}),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        block_start_string="[%", block_end_string="%]", variable_start_string="[[",
        variable_end_string="]]", comment_start_string="[#", comment_end_string="#]")
    return env.get_template(names[0]).render(**asdict(settings or EndpointSettings()),
                                             gpu_fence_line=fence_line())


def user_config_schema(template: str, settings: EndpointSettings | None = None
                       ) -> dict[str, Any]:
    """The JSON schema of what a submitting user may set per task for ``template``.

    ``gpus`` (1 to the node's GPUs) and ``task_timeout_s`` (the endpoint's own per-task
    limit, ``GC_TASK_TIMEOUT``) everywhere; ``account``, ``partition`` and ``walltime`` on
    the HPC templates; ``cores_per_node`` and ``mem_per_node`` (GB) on ``slurm-gpu``.
    Anything else is refused.
    """
    _known(template)
    settings = settings or EndpointSettings()
    properties: dict[str, Any] = {
        "gpus": {"type": "integer", "minimum": 1, "maximum": settings.gpus,
                 "description": "GPUs per node (one worker per GPU)"},
        TASK_TIMEOUT_OPTION: {
            "type": "integer", "minimum": 1, "maximum": MAX_TASK_TIMEOUT_S,
            "description": "seconds a task may run before the endpoint stops it "
                           "(GC_TASK_TIMEOUT); the client sends 90 % of its task deadline"}}
    if template in _HPC:
        properties |= {
            "account": {"type": "string", "pattern": NAME_PATTERN,
                        "description": "allocation to charge"},
            "partition": {"type": "string", "pattern": NAME_PATTERN,
                          "description": "Slurm partition or PBS queue"},
            "walltime": {"type": "string", "pattern": WALLTIME_PATTERN,
                         "description": "batch job walltime HH:MM:SS"}}
    if template == "slurm-gpu":
        properties |= {
            "cores_per_node": {"type": "integer", "minimum": 1, "maximum": 1024,
                               "description": "CPUs per block, at least one per GPU "
                                              f"(default: {settings.cpus_per_gpu} per GPU)"},
            "mem_per_node": {"type": "integer", "minimum": 1, "maximum": 4096,
                             "description": "memory per block in GB (default: " + (
                                 f"{settings.mem_per_gpu_gb} per GPU)"
                                 if settings.mem_per_gpu_gb else "Slurm's)")}}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "title": f"stembench {template} user options", "properties": properties,
            "additionalProperties": False}


def _identity_mapping(settings: EndpointSettings) -> list[dict[str, Any]]:
    """The expression mapping (globus-identity-mapping) of ``identity_map`` then the domain.

    Each ``identity_map`` entry matches its username literally (case-insensitive, as Globus
    usernames are); the first mapping that matches decides the account.
    """
    mappings: list[dict[str, Any]] = [
        {"source": "{username}", "match": username, "literal": True, "ignore_case": True,
         "output": account} for username, account in settings.identity_map]
    comments = [f"{len(mappings)} Globus identities each run as their own local account"
                ] if mappings else []
    if settings.identity_domain:
        # letters, digits, '-' and '.' (checked): only '.' is special to the mapper, whose
        # reduced regular expressions refuse other escapes (re.escape's '\-', say)
        domain = settings.identity_domain.replace(".", "\\.")
        mappings.append({"source": "{username}", "match": f"(.*)@{domain}", "output": "{0}"})
        comments.append(f"Globus identities NAME@{settings.identity_domain} run as the "
                        "local user NAME")
    return [{"comment": "; ".join(comments), "DATA_TYPE": "expression_identity_mapping#1.0.0",
             "mappings": mappings}]


def _core_config(settings: EndpointSettings, idmap: Path | None) -> str:
    import yaml

    config: dict[str, Any] = {"display_name": settings.display_name}
    if settings.allowed_functions:
        config["allowed_functions"] = [_check_uuid(f, "allowed function")
                                       for f in settings.allowed_functions]
    if idmap is not None:
        config |= {"identity_mapping_config_path": str(idmap),
                   "email": settings.contact_email}
    header = ("# Globus Compute endpoint for stembench (no engine here: the engine is in\n"
              "# user_config_template.yaml.j2, rendered for each user by the endpoint).\n")
    if idmap is None:
        header += f"# {SINGLE_USER_HINT}\n"
    return header + yaml.safe_dump(config, sort_keys=False)


def write_endpoint_directory(template: str, directory: str | Path,
                             settings: EndpointSettings | None = None) -> list[Path]:
    """Write an endpoint directory for ``template`` and return the files written.

    Files: ``config.yaml``, ``user_config_template.yaml.j2``, ``user_config_schema.json``
    and, for a multi-user endpoint, ``identity_mapping_config.json`` (owner-only) and
    ``user_environment.yaml``.
    ``directory`` may be ``~/.globus_compute/<name>`` itself; it must not hold these files
    already.

    Parameters
    ----------
    template : str
        The endpoint template (see :func:`list_templates`).
    directory : str or pathlib.Path
        The endpoint directory (``~`` expanded; created if missing).
    settings : EndpointSettings, optional
        What the administrator filled in; default :class:`EndpointSettings`.
    """
    _known(template)
    settings = settings or EndpointSettings()
    folder = Path(directory).expanduser().absolute()
    names = ["config.yaml", "user_config_template.yaml.j2", "user_config_schema.json"]
    if settings.multi_user:
        names += ["identity_mapping_config.json", "user_environment.yaml"]
    present = [n for n in names if (folder / n).exists()]
    if present:
        raise InputError(f"{folder} already holds {', '.join(present)}; remove them or "
                         "choose another directory")
    idmap = folder / "identity_mapping_config.json" if settings.multi_user else None
    texts = {
        "config.yaml": _core_config(settings, idmap),
        "user_config_template.yaml.j2": render_user_template(template, settings),
        "user_config_schema.json": json.dumps(user_config_schema(template, settings),
                                              indent=2) + "\n",
    }
    if idmap is not None:
        texts[idmap.name] = json.dumps(_identity_mapping(settings), indent=2)
        texts["user_environment.yaml"] = user_environment_text(user_environment(
            template, user_path=settings.user_path, user_env=settings.user_env))
    folder.mkdir(parents=True, exist_ok=True)  # once every text is made: nothing half-written
    written = []
    for name in names:
        path = folder / name
        path.write_text(texts[name], encoding="utf-8")
        written.append(path)
    if idmap is not None:  # the endpoint's own configure uses the same modes
        os.chmod(idmap, 0o600)
        os.chmod(folder / "user_config_template.yaml.j2", 0o644)
    return written
