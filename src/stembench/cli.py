"""The ``stembench`` command.

Sub-commands are defined next to the code they drive and mounted here; each imports
its heavy dependencies only when it runs, so ``stembench --help`` is fast.
"""

from __future__ import annotations

import sys

import typer

from stembench._version import __version__
from stembench.client.assess.cli import assess_command
from stembench.client.cli import endpoint_app, evaluate_command, run_command
from stembench.client.submit import submit_command
from stembench.dataset_publish.cli import app as dataset_app
from stembench.dataset_publish.labelling.cli import label_command
from stembench.dataset_publish.mdf.cli import foundry_metadata, publish, publish_status
from stembench.endpoints.cli import app as models_app
from stembench.endpoints.training.cli import train
from stembench.errors import StembenchError
from stembench.service.cli import serve

__all__ = ["app", "main"]

app = typer.Typer(
    name="stembench",
    help="Benchmark models that locate atomic columns in atomic-resolution STEM images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(dataset_app, name="dataset", help="Build, inspect and import benchmark datasets.")
app.add_typer(models_app, name="models", help="List and inspect the models stembench can run.")
app.add_typer(endpoint_app, name="endpoint", help="Globus Compute endpoint configuration.")
dataset_app.command("publish")(publish)
dataset_app.command("publish-status")(publish_status)
dataset_app.command("foundry-metadata")(foundry_metadata)
app.command("train")(train)
app.command("evaluate")(evaluate_command)
app.command("run")(run_command)
app.command("assess")(assess_command)
app.command("label")(label_command)
app.command("serve")(serve)
app.command("submit")(submit_command)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the version and exit."),
) -> None:
    """Benchmark models that locate atomic columns in atomic-resolution STEM images."""


def main() -> None:
    """Run the command line, turning stembench errors into one clear line and exit code 2."""
    try:
        app()
    except StembenchError as exc:
        typer.echo(f"stembench: error: {exc}", err=True)
        sys.exit(2)
