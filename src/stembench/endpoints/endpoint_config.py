"""Globus Compute endpoint configuration templates for running stembench next to the data.

Templates: ``workstation-gpu`` (one machine, LocalProvider), ``slurm-gpu`` (Slurm
partition via Parsl's SlurmProvider) and ``pbs-gpu`` (PBS Pro via PBSProProvider). Each
pins one GPU per worker through ``available_accelerators``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from stembench.errors import InputError

__all__ = ["EndpointSettings", "list_templates", "render_endpoint_config",
           "write_endpoint_config"]

_WALLTIME = re.compile(r"^\d{1,3}:[0-5]\d:[0-5]\d$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class EndpointSettings:
    """Values filled into a template, validated on construction.

    Attributes
    ----------
    display_name : str
        Endpoint name shown in Globus.
    gpus : int
        GPUs per node (one worker per GPU), 1-16.
    worker_init : str
        Shell commands run before a worker starts (load modules, activate the venv).
    partition : str
        Slurm partition or PBS queue (HPC templates).
    account : str
        Allocation to charge (HPC templates); empty for none.
    walltime : str
        Block walltime as ``HH:MM:SS``.
    max_blocks : int
        Most batch jobs held at once.
    cpus_per_node : int
        CPUs per node requested (PBS).
    interface : str
        Network interface workers reach the interchange on (e.g. ``ib0``); empty for default.
    """

    display_name: str = "stembench-gpu"
    gpus: int = 1
    worker_init: str = "source ~/stembench-venv/bin/activate"
    partition: str = "gpu"
    account: str = ""
    walltime: str = "01:00:00"
    max_blocks: int = 1
    cpus_per_node: int = 32
    interface: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.display_name):
            raise InputError(f"endpoint display_name {self.display_name!r}: use letters, "
                             "digits, '.', '_' or '-'")
        if not 1 <= self.gpus <= 16:
            raise InputError(f"gpus must be between 1 and 16, got {self.gpus}")
        if not _WALLTIME.match(self.walltime):
            raise InputError(f"walltime must be HH:MM:SS, got {self.walltime!r}")
        if self.max_blocks < 1 or self.cpus_per_node < 1:
            raise InputError("max_blocks and cpus_per_node must be >= 1")


def list_templates() -> list[str]:
    """Names of the endpoint configuration templates shipped with stembench."""
    folder = resources.files("stembench.endpoints") / "endpoint_templates"
    return sorted(p.name.removesuffix(".yaml.j2") for p in folder.iterdir()
                  if p.name.endswith(".yaml.j2"))


def render_endpoint_config(template: str, settings: EndpointSettings | None = None) -> str:
    """Return the YAML text of ``template`` filled with ``settings``."""
    import jinja2

    if template not in list_templates():
        raise InputError(f"unknown endpoint template {template!r}; known: {list_templates()}")
    source = (resources.files("stembench.endpoints") / "endpoint_templates"
              / f"{template}.yaml.j2").read_text(encoding="utf-8")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(source).render(**asdict(settings or EndpointSettings()))


def write_endpoint_config(template: str, path: str | Path,
                          settings: EndpointSettings | None = None) -> Path:
    """Write a rendered template to ``path`` (refusing to overwrite) and return it."""
    target = Path(path)
    if target.exists():
        raise InputError(f"{target} exists; remove it or choose another path")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_endpoint_config(template, settings), encoding="utf-8")
    return target
