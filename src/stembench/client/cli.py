"""Command-line entry points of the client: evaluate, run, endpoint configuration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from stembench.client.endpoint_options import (
    AmqpPort,
    EndpointOption,
    EndpointSchema,
    HttpsOnly,
    StatusInterval,
    TaskDeadline,
)
from stembench.client.endpoint_watch import DEFAULT_STATUS_INTERVAL_S
from stembench.client.orchestrate import DEFAULT_TASK_DEADLINE_S
from stembench.endpoints.models.deadline import DEFAULT_IMAGE_TIMEOUT_S

__all__ = ["endpoint_app", "evaluate_command", "run_command"]

endpoint_app = typer.Typer(help="Globus Compute endpoint configuration for stembench.",
                           no_args_is_help=True)


def evaluate_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Model: registry name, file, "
                                       "or module:function.")],
    dataset: Annotated[str, typer.Option(help="Dataset preset in the endpoint's cache "
                                         "(standard|mini) or a path to an .h5 file "
                                         "on the endpoint.")] = "standard",
    endpoint: Annotated[list[str] | None, typer.Option(
        help="Globus Compute endpoint UUID (repeat to fan out); default: local processes.")
    ] = None,
    results: Annotated[Path, typer.Option(help="Results file (JSON lines); resumes if it "
                                          "exists.")] = Path("stembench-output/results.jsonl"),
    workers: Annotated[int, typer.Option(min=1, help="Local worker processes.")] = 2,
    https_only: HttpsOnly = False,
    amqp_port: AmqpPort = None,
    endpoint_option: EndpointOption = None,
    endpoint_schema: EndpointSchema = None,
    task_deadline: TaskDeadline = DEFAULT_TASK_DEADLINE_S,
    status_interval: StatusInterval = DEFAULT_STATUS_INTERVAL_S,
    shard_size: Annotated[int | None, typer.Option(help="Images per shard.")] = None,
    report: Annotated[bool, typer.Option(help="Write the HTML/JSON report beside the "
                                         "results.")] = True,
    image_timeout: Annotated[float, typer.Option(
        min=0.001, help="Seconds the model may take on one image before that image is "
        "failed.")] = DEFAULT_IMAGE_TIMEOUT_S,
    weights: Annotated[Path | None, typer.Option(
        help="Weights file for a built-in network (atomsegnet: a state dict .pt/.pth such as "
        "the published gaussianMask+.pth; atomnet-*: .keras, .weights.h5 or the published "
        ".pt state dict); a path on the machine that runs the model.")] = None,
) -> None:
    """Evaluate one model on a benchmark dataset, locally or on Globus Compute endpoints."""
    from stembench.client.arguments import dataset_reference
    from stembench.client.executors import local_executor
    from stembench.client.lifeline import interrupt_on_sigterm, stop_executor
    from stembench.client.orchestrate import Target, evaluate

    ref = dataset_reference(dataset)
    if endpoint:
        from stembench.client.endpoint_options import RemoteSettings, endpoint_targets

        targets = endpoint_targets(endpoint, RemoteSettings(
            https_only=https_only, amqp_port=amqp_port, options=tuple(endpoint_option or ()),
            schema=endpoint_schema, task_deadline_s=task_deadline,
            status_interval_s=status_interval))
    else:
        targets = [Target("local", local_executor(workers),
                          factory=lambda: local_executor(workers), max_in_flight=2 * workers)]
    try:
        with interrupt_on_sigterm():
            outcome = evaluate(model, results_path=results, dataset=ref, targets=targets,
                               shard_size=shard_size, task_deadline_s=task_deadline,
                               image_timeout_s=image_timeout,
                               model_options={"weights": str(weights)} if weights else None)
    except KeyboardInterrupt:  # before the first shard was sent
        typer.echo("Interrupted before any shard ran; nothing was written.")
        raise typer.Exit(130) from None
    finally:
        for target in targets:
            stop_executor(target.executor)
    from stembench.client.run import image_counts

    n_images, n_failed = image_counts(outcome)
    typer.echo(f"{outcome.n_finished} shard(s) finished, {outcome.n_skipped} already done, "
               f"{len(outcome.failed_shards)} failed; results in {outcome.results_path}")
    typer.echo(f"{model}: {n_images} image(s) evaluated, {n_failed} failed (scored as finding "
               "nothing)")
    by_reason: dict[str, list[str]] = {}  # one line per reason (an endpoint gone: one line)
    for shard_id, reason in outcome.failed_shards.items():
        by_reason.setdefault(reason, []).append(shard_id)
    for reason, shard_ids in by_reason.items():
        which = f"shard {shard_ids[0]}" if len(shard_ids) == 1 else f"{len(shard_ids)} shards"
        typer.echo(f"  {which} failed: {reason}", err=True)
    if outcome.interrupted:
        typer.echo("Interrupted: finished shards are kept; run the same command to resume.")
        raise typer.Exit(130)
    if report:
        from stembench.client.analysis.report import write_report
        from stembench.client.results_file import ResultsFile
        from stembench.client.run import records_provenance

        records = ResultsFile(results).records(outcome.shard_ids)
        if records:
            provenance = {**records_provenance(records), "results": str(results),
                          "identity": outcome.identity,
                          "image_errors": ResultsFile(results).image_errors(outcome.shard_ids)}
            path = write_report(records, out_dir=results.parent, provenance=provenance)
            typer.echo(f"Report: {path}")
        else:
            typer.echo("No report: no image was evaluated (every shard failed).", err=True)
    _exit([outcome])


def _exit(evaluations: list[Any]) -> None:
    """End with the run's exit status (see ``stembench.client.run.exit_status``)."""
    from stembench.client.run import exit_status

    code, why = exit_status(evaluations)
    if code:
        typer.echo(f"Exit status {code}: {why}", err=True)
        raise typer.Exit(code)


def run_command(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("stembench-output"),
    preset: Annotated[str, typer.Option(help="Dataset preset: standard or mini.")] = "standard",
    model: Annotated[list[str] | None, typer.Option(
        help="Model to include (repeat); default: every built-in model and every published "
        "model already fetched (stembench models fetch).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Local worker processes.")] = 2,
    image_timeout: Annotated[float, typer.Option(
        min=0.001, help="Seconds a model may take on one image before that image is "
        "failed.")] = DEFAULT_IMAGE_TIMEOUT_S,
    open_browser: Annotated[bool, typer.Option("--open/--no-open",
                                               help="Open the report in a browser.")] = False,
) -> None:
    """Run the whole benchmark on the embedded defaults and write the report (the main job)."""
    from stembench.client.lifeline import interrupt_on_sigterm
    from stembench.client.run import default_models, run_benchmark

    models, left_out = (model, []) if model else default_models()
    for line in left_out:
        typer.echo(f"Published model not included: {line}")
    try:
        with interrupt_on_sigterm():
            summary = run_benchmark(out_dir=out, preset=preset, models=models,
                                    workers=workers, open_browser=open_browser,
                                    image_timeout_s=image_timeout)
    except KeyboardInterrupt:
        typer.echo("Interrupted: finished shards are kept; run the same command to resume.")
        raise typer.Exit(130) from None
    from stembench.client.run import image_counts

    for name, outcome in summary.evaluations.items():
        n_images, n_failed = image_counts(outcome)
        typer.echo(f"{name}: {outcome.n_finished + outcome.n_skipped}/{outcome.n_shards} shards"
                   f"{'' if outcome.complete else ' (incomplete)'}, {n_images} images, "
                   f"{n_failed} failed (scored as finding nothing)")
    typer.echo(f"Report: {summary.report}")
    _exit(list(summary.evaluations.values()))


@endpoint_app.command("templates")
def templates_command() -> None:
    """List the endpoint configuration templates."""
    from stembench.endpoints.endpoint_config import list_templates

    for name in list_templates():
        typer.echo(name)


@endpoint_app.command("config")
def config_command(
    template: Annotated[str, typer.Argument(help="workstation-gpu, slurm-gpu or pbs-gpu.")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", "--out",
        help="Endpoint directory to write, e.g. ~/.globus_compute/stembench.")
    ] = Path("stembench-endpoint"),
    name: Annotated[str, typer.Option(help="Endpoint display name.")] = "stembench-gpu",
    gpus: Annotated[int, typer.Option(help="GPUs per node (most a user may request).")] = 1,
    partition: Annotated[str, typer.Option(help="Default Slurm partition / PBS queue.")] = "gpu",
    account: Annotated[str, typer.Option(help="Default allocation account.")] = "",
    walltime: Annotated[str, typer.Option(help="Default block walltime HH:MM:SS.")] = (
        "01:00:00"),
    worker_init: Annotated[str, typer.Option(help="Shell commands run before workers (activate "
                                             "the environment with stembench).")] = (
        "source ~/stembench-venv/bin/activate"),
    max_blocks: Annotated[int, typer.Option(help="Most batch jobs at once.")] = 1,
    cpus_per_gpu: Annotated[int, typer.Option(help="slurm-gpu: CPUs per GPU a block asks "
                                              "for.")] = 8,
    mem_per_gpu_gb: Annotated[int, typer.Option(help="slurm-gpu: memory (GB) per GPU a block "
                                                "asks for; 0: Slurm's default.")] = 32,
    interface: Annotated[str, typer.Option(help="Network interface, e.g. ib0.")] = "",
    heartbeat_period: Annotated[int, typer.Option(help="Seconds between a block's and the "
                                                  "engine's heartbeats.")] = 30,
    heartbeat_threshold: Annotated[int, typer.Option(
        help="Seconds without a heartbeat before a block's tasks count as lost and are "
        "retried on another block (a job cancelled, past its walltime).")] = 120,
    multi_user: Annotated[bool, typer.Option(
        "--multi-user", help="Multi-user endpoint run by root with identity mapping.")] = False,
    identity_domain: Annotated[str, typer.Option(
        help="Multi-user: Globus usernames NAME@DOMAIN run as local user NAME.")] = "",
    identity_map: Annotated[list[str] | None, typer.Option(
        help="Multi-user: USERNAME=ACCOUNT, Globus identity USERNAME runs as local ACCOUNT "
        "(repeat; checked before --identity-domain).")] = None,
    contact_email: Annotated[str, typer.Option(help="Multi-user: administrator's email.")] = "",
    user_path: Annotated[list[str] | None, typer.Option(
        help="Multi-user: folder first on the user endpoints' PATH (repeat; the folders of "
        "sbatch/qsub and of this Python are found here).")] = None,
    user_env: Annotated[list[str] | None, typer.Option(
        help="Multi-user: NAME=VALUE in user_environment.yaml (repeat; SLURM_CONF, "
        "MODULEPATH, LMOD_* and BASH_ENV are taken from here when set).")] = None,
    allowed_function: Annotated[list[str] | None, typer.Option(
        help="Function UUID the endpoint may run (repeat); see `stembench endpoint "
        "function`.")] = None,
    no_gpu_fence_check: Annotated[bool, typer.Option(
        "--no-gpu-fence-check", help="slurm-gpu: skip the block's check that Slurm's GPUs are "
        "devices 0..N-1, the ones parsl pins workers to (a cluster without ConstrainDevices=yes "
        "fails it: workers would use other jobs' GPUs).")] = False,
    any_serializer: Annotated[bool, typer.Option(
        "--any-serializer", help="Accept every Compute serializer (default: source text and "
        "JSON only).")] = False,
) -> None:
    """Write a Globus Compute endpoint directory for a GPU workstation or HPC queue."""
    from stembench.endpoints.endpoint_config import (
        SINGLE_USER_HINT,
        EndpointSettings,
        parse_identity_map,
        write_endpoint_directory,
    )
    from stembench.endpoints.user_environment import module_note, parse_user_env

    settings = EndpointSettings(
        display_name=name, gpus=gpus, partition=partition, account=account, walltime=walltime,
        worker_init=worker_init, max_blocks=max_blocks, interface=interface,
        cpus_per_gpu=cpus_per_gpu, mem_per_gpu_gb=mem_per_gpu_gb,
        heartbeat_period_s=heartbeat_period, heartbeat_threshold_s=heartbeat_threshold,
        multi_user=multi_user, identity_domain=identity_domain, contact_email=contact_email,
        identity_map=parse_identity_map(identity_map or ()),
        allowed_functions=tuple(allowed_function or ()), restrict_serializers=not any_serializer,
        user_path=tuple(user_path or ()), user_env=parse_user_env(user_env or ()),
        gpu_fence_check=not no_gpu_fence_check)
    for path in write_endpoint_directory(template, output, settings):
        typer.echo(f"Wrote {path}")
    if multi_user and (note := module_note(worker_init, {**os.environ, **dict(settings.user_env)})):
        typer.echo(note, err=True)
    if not multi_user and os.geteuid() == 0:
        typer.echo(f"Note: {SINGLE_USER_HINT}", err=True)
    typer.echo(f"Start it: globus-compute-endpoint start {output.expanduser().absolute().name} "
               "(the directory must be ~/.globus_compute/<name>; see README, Remote evaluation)")


@endpoint_app.command("function")
def function_command(
    register: Annotated[bool, typer.Option(
        "--register", help="Register stembench's function now (needs a Globus login).")] = False,
    public: Annotated[bool, typer.Option(
        "--public", help="With --register: let every Globus user run it.")] = False,
    group: Annotated[str | None, typer.Option(
        help="With --register: share it with this Globus group UUID.")] = None,
    use: Annotated[str | None, typer.Option(
        help="Adopt this function id (e.g. the one your endpoint allows).")] = None,
) -> None:
    """Show the Globus Compute function id of this stembench version (for allowed_functions)."""
    from stembench.client.compute_functions import (
        config_path,
        register_function,
        stored_function_id,
        use_function_id,
    )

    if use:
        function_id: str | None = use_function_id(use)
    elif register:
        from stembench._optional import require

        sdk = require("globus_compute_sdk", extra="compute", purpose="Function registration")
        function_id = register_function(sdk.Client(), public=public, group=group)
    else:
        function_id = stored_function_id()
    if function_id is None:
        typer.echo("No function registered for this stembench version; run `stembench endpoint "
                   "function --register` (or --use UUID).", err=True)
        raise typer.Exit(1)
    typer.echo(function_id)
    typer.echo(f"(kept in {config_path()})", err=True)
