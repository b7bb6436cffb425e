"""Command-line entry points of the client: evaluate, run, endpoint configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
    workers: Annotated[int, typer.Option(help="Local worker processes.")] = 2,
    https_only: Annotated[bool, typer.Option(
        "--https-only", help="Reach endpoints by HTTPS polling instead of AMQP (for hosts "
        "whose firewall blocks AMQP ports).")] = False,
    shard_size: Annotated[int | None, typer.Option(help="Images per shard.")] = None,
    report: Annotated[bool, typer.Option(help="Write the HTML/JSON report beside the "
                                         "results.")] = True,
    weights: Annotated[Path | None, typer.Option(
        help="Weights file for a built-in network (atomsegnet: a state dict .pt/.pth such as "
        "the published gaussianMask+.pth; atomnet-*: .keras, .weights.h5 or the published "
        ".pt state dict); a path on the machine that runs the model.")] = None,
) -> None:
    """Evaluate one model on a benchmark dataset, locally or on Globus Compute endpoints."""
    from stembench.client.compute_http import polling_executor
    from stembench.client.executors import globus_executor, local_executor
    from stembench.client.orchestrate import Target, evaluate
    from stembench.endpoints.requests import DatasetRef

    is_path = dataset.endswith((".h5", ".hdf5"))
    ref = DatasetRef(source="path", path=dataset) if is_path else DatasetRef(preset=dataset)
    if endpoint:
        remote = polling_executor if https_only else globus_executor
        targets = [Target(e, remote(e), max_in_flight=8) for e in endpoint]
    else:
        targets = [Target("local", local_executor(workers),
                          factory=lambda: local_executor(workers), max_in_flight=2 * workers)]
    try:
        outcome = evaluate(model, results_path=results, dataset=ref, targets=targets,
                           shard_size=shard_size,
                           model_options={"weights": str(weights)} if weights else None)
    finally:
        for target in targets:
            target.executor.shutdown(wait=False, cancel_futures=True)
    typer.echo(f"{outcome.n_finished} shard(s) finished, {outcome.n_skipped} already done, "
               f"{len(outcome.failed_shards)} failed; results in {outcome.results_path}")
    for shard_id, reason in outcome.failed_shards.items():
        typer.echo(f"  shard {shard_id} failed: {reason}", err=True)
    if outcome.interrupted:
        typer.echo("Interrupted: finished shards are kept; run the same command to resume.")
        raise typer.Exit(130)
    if report:
        from stembench.client.analysis.report import write_report
        from stembench.client.results_file import ResultsFile
        from stembench.client.run import records_provenance

        records = ResultsFile(results).records()
        if records:
            provenance = {**records_provenance(records), "results": str(results)}
            path = write_report(records, out_dir=results.parent, provenance=provenance)
            typer.echo(f"Report: {path}")
    if outcome.failed_shards:
        raise typer.Exit(1)


def run_command(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("stembench-output"),
    preset: Annotated[str, typer.Option(help="Dataset preset: standard or mini.")] = "standard",
    model: Annotated[list[str] | None, typer.Option(
        help="Model to include (repeat); default: every built-in model.")] = None,
    workers: Annotated[int, typer.Option(help="Local worker processes.")] = 2,
    open_browser: Annotated[bool, typer.Option("--open/--no-open",
                                               help="Open the report in a browser.")] = False,
) -> None:
    """Run the whole benchmark on the embedded defaults and write the report (the main job)."""
    from stembench.client.run import BUILTIN_MODELS, run_benchmark

    try:
        summary = run_benchmark(out_dir=out, preset=preset, models=model or BUILTIN_MODELS,
                                workers=workers, open_browser=open_browser)
    except KeyboardInterrupt:
        typer.echo("Interrupted: finished shards are kept; run the same command to resume.")
        raise typer.Exit(130) from None
    for name, outcome in summary.evaluations.items():
        typer.echo(f"{name}: {outcome.n_finished + outcome.n_skipped}/{outcome.n_shards} shards"
                   f"{'' if outcome.complete else ' (incomplete)'}")
    typer.echo(f"Report: {summary.report}")


@endpoint_app.command("templates")
def templates_command() -> None:
    """List the endpoint configuration templates."""
    from stembench.endpoints.endpoint_config import list_templates

    for name in list_templates():
        typer.echo(name)


@endpoint_app.command("config")
def config_command(
    template: Annotated[str, typer.Argument(help="workstation-gpu, slurm-gpu or pbs-gpu.")],
    out: Annotated[Path, typer.Option(help="Where to write the YAML.")] = Path("config.yaml"),
    name: Annotated[str, typer.Option(help="Endpoint display name.")] = "stembench-gpu",
    gpus: Annotated[int, typer.Option(help="GPUs per node.")] = 1,
    partition: Annotated[str, typer.Option(help="Slurm partition / PBS queue.")] = "gpu",
    account: Annotated[str, typer.Option(help="Allocation account.")] = "",
    walltime: Annotated[str, typer.Option(help="Block walltime HH:MM:SS.")] = "01:00:00",
    worker_init: Annotated[str, typer.Option(help="Shell commands run before workers.")] = (
        "source ~/stembench-venv/bin/activate"),
    max_blocks: Annotated[int, typer.Option(help="Most batch jobs at once.")] = 1,
    interface: Annotated[str, typer.Option(help="Network interface, e.g. ib0.")] = "",
) -> None:
    """Write a Globus Compute endpoint configuration for a GPU workstation or HPC queue."""
    from stembench.endpoints.endpoint_config import EndpointSettings, write_endpoint_config

    settings = EndpointSettings(display_name=name, gpus=gpus, partition=partition,
                                account=account, walltime=walltime, worker_init=worker_init,
                                max_blocks=max_blocks, interface=interface)
    path = write_endpoint_config(template, out, settings)
    typer.echo(f"Wrote {path}. Next: globus-compute-endpoint configure {name}, copy it over "
               f"~/.globus_compute/{name}/config.yaml, then globus-compute-endpoint start {name}")
