"""Endpoint configuration templates load with globus-compute-endpoint's own loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from stembench.endpoints.endpoint_config import (
    EndpointSettings,
    list_templates,
    render_endpoint_config,
    write_endpoint_config,
)
from stembench.errors import InputError

utils = pytest.importorskip("globus_compute_endpoint.endpoint.config.utils")

PROVIDERS = {"workstation-gpu": "LocalProvider", "slurm-gpu": "SlurmProvider",
             "pbs-gpu": "PBSProProvider"}


def test_every_template_is_listed() -> None:
    assert list_templates() == sorted(PROVIDERS)


@pytest.mark.parametrize("template", sorted(PROVIDERS))
@pytest.mark.parametrize("interface", ["", "lo"])
def test_template_loads_with_endpoint_loader(template: str, interface: str) -> None:
    settings = EndpointSettings(gpus=4, account="MAT123", walltime="02:30:00",
                                worker_init="module load cuda; source venv/bin/activate",
                                interface=interface, max_blocks=3)
    config = utils.load_config_yaml(render_endpoint_config(template, settings))
    executor = config.engine.executor
    assert type(config.engine).__name__ == "GlobusComputeEngine"
    assert executor.available_accelerators == ["0", "1", "2", "3"]
    provider = executor.provider
    assert type(provider).__name__ == PROVIDERS[template]
    assert provider.worker_init.strip() == "module load cuda; source venv/bin/activate"
    assert provider.max_blocks == (1 if template == "workstation-gpu" else 3)
    if template != "workstation-gpu":
        assert provider.walltime == "02:30:00"
        assert provider.account == "MAT123"
    if interface:
        assert executor.address == "127.0.0.1"


def test_scheduler_options_request_the_gpus() -> None:
    slurm = render_endpoint_config("slurm-gpu", EndpointSettings(gpus=2))
    assert '#SBATCH --gpus-per-node=2' in slurm
    pbs = render_endpoint_config("pbs-gpu", EndpointSettings(gpus=2))
    assert utils.load_config_yaml(pbs).engine.executor.provider.select_options == "ngpus=2"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("gpus", 0, "between 1 and 16"), ("walltime", "1h", "HH:MM:SS"),
     ("display_name", "my endpoint", "display_name")],
)
def test_bad_settings_are_rejected(field: str, value: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        EndpointSettings(**{field: value})


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    path = write_endpoint_config("workstation-gpu", tmp_path / "config.yaml")
    assert "LocalProvider" in path.read_text()
    with pytest.raises(InputError, match="exists"):
        write_endpoint_config("workstation-gpu", path)
    with pytest.raises(InputError, match="unknown endpoint template"):
        render_endpoint_config("kubernetes")
