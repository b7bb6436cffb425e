"""A multi-user endpoint's ``user_environment.yaml``: the whole environment of its user endpoints.

The endpoint (run by root) clears each user endpoint's environment and loads only this file
(globus_compute_endpoint/endpoint/core_endpoint.py:1092-1094, 1135-1150); without the folder
of ``sbatch`` on ``PATH`` and the site's ``SLURM_CONF`` no block would start.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from batch_commands import batch_commands
from typer.testing import CliRunner

from stembench.cli import app
from stembench.errors import InputError

MULTI_USER = ["--multi-user", "--identity-domain", "lab.org", "--contact-email", "root@lab.org"]
SITE = {"SLURM_CONF": "/opt/slurm/etc/slurm.conf", "MODULEPATH": "/opt/modules/all",
        "LMOD_CMD": "/opt/lmod/libexec/lmod", "MODULESHOME": "/opt/lmod"}


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An administrator's shell on a site with Slurm in /opt/slurm/bin and Lmod; its bin."""
    slurm_bin = batch_commands(tmp_path / "opt" / "slurm" / "bin")
    monkeypatch.setenv("PATH", f"{slurm_bin}:/usr/bin:/bin")
    for name, value in SITE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BASH_ENV", raising=False)
    return slurm_bin


def _config(tmp_path: Path, *options: str, template: str = "slurm-gpu") -> tuple[int, str]:
    """Exit code and output; a refusal's output is the one line stembench.cli.main prints."""
    answer = CliRunner().invoke(app, ["endpoint", "config", template, "--output",
                                      str(tmp_path / "ep"), *options])
    if isinstance(answer.exception, InputError):
        assert "\n" not in str(answer.exception)
        return answer.exit_code, str(answer.exception)
    return answer.exit_code, answer.output


def test_multi_user_endpoint_gives_its_user_endpoints_the_sites_batch_commands(
        tmp_path: Path, site: Path) -> None:
    code, output = _config(tmp_path, *MULTI_USER, "--user-env", "STEMBENCH_OFFLINE=1",
                           "--worker-init", "source /etc/profile; module load cuda")
    assert code == 0, output
    written = tmp_path / "ep" / "user_environment.yaml"
    assert f"Wrote {written}" in output and "Note:" not in output
    variables = yaml.safe_load(written.read_text())  # as the endpoint loads it
    python_bin = str(Path(sys.executable).parent)
    assert variables == {"PATH": f"{site}:{python_bin}:/usr/local/bin:/usr/bin:/bin",
                         **SITE, "STEMBENCH_OFFLINE": "1", **{
                             k: v for k, v in variables.items() if k == "LANG"}}
    # a user endpoint's batch submission finds the site's sbatch through this PATH
    found = subprocess.run(["bash", "-c", "command -v sbatch"], env=variables,
                           capture_output=True, text=True, check=False)
    assert found.stdout.strip() == str(site / "sbatch")


def test_a_missing_sbatch_is_refused_unless_its_folder_is_given(
        tmp_path: Path, site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    code, output = _config(tmp_path, *MULTI_USER)
    assert code != 0 and not (tmp_path / "ep").exists()
    assert "slurm-gpu: sbatch is not on PATH here" in output
    code, output = _config(tmp_path, *MULTI_USER, "--user-path", str(site))
    assert code == 0, output
    variables = yaml.safe_load((tmp_path / "ep" / "user_environment.yaml").read_text())
    assert variables["PATH"].startswith(f"{site}:")


def test_pbs_takes_the_folder_of_qsub_and_a_workstation_none(tmp_path: Path, site: Path) -> None:
    code, output = _config(tmp_path, *MULTI_USER, template="pbs-gpu")
    assert code == 0, output
    variables = yaml.safe_load((tmp_path / "ep" / "user_environment.yaml").read_text())
    assert variables["PATH"].startswith(f"{site}:")
    code, output = _config(tmp_path / "w", *MULTI_USER, template="workstation-gpu")
    assert code == 0, output
    variables = yaml.safe_load((tmp_path / "w" / "ep" / "user_environment.yaml").read_text())
    assert variables["PATH"] == f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"


@pytest.mark.parametrize(("options", "message"), [
    (["--user-env", "HOME=/home/shared"], "the endpoint sets it for each user"),
    (["--user-env", "NO VALUE"], "write NAME=VALUE"),
])
def test_bad_user_environment_entries_are_one_line(tmp_path: Path, site: Path,
                                                   options: list[str], message: str) -> None:
    code, output = _config(tmp_path, *MULTI_USER, *options)
    assert code != 0 and message in output


def test_user_environment_needs_a_multi_user_endpoint(tmp_path: Path, site: Path) -> None:
    code, output = _config(tmp_path, "--user-path", str(site))
    assert code != 0 and "user_path needs a multi-user endpoint" in output
    assert not (tmp_path / "ep" / "user_environment.yaml").exists()


def test_module_in_worker_init_without_a_login_shell_gets_a_note(tmp_path: Path,
                                                                 site: Path) -> None:
    """A batch job's bash is not a login shell: ``module`` is undefined there."""
    code, output = _config(tmp_path, *MULTI_USER, "--worker-init",
                           "module load cuda; source /opt/stembench/bin/activate")
    assert code == 0, output
    assert "begin it with `source /etc/profile; `" in output
    variables = yaml.safe_load((tmp_path / "ep" / "user_environment.yaml").read_text())
    ran = subprocess.run(["bash", "-c", "module load cuda"], env=variables,
                         capture_output=True, text=True, check=False)
    assert ran.returncode == 127  # what the note warns of: no `module` in such a shell
