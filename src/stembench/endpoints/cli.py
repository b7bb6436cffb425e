"""``stembench models``: list the models stembench can run, show one, fetch published weights."""

from __future__ import annotations

import typer

from stembench.endpoints.models.registry import ModelEntry, available_models, load_model
from stembench.errors import StembenchError

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="List and inspect the models stembench can run.")


def _status(entry: ModelEntry) -> str:
    importable, extra = entry.importable, entry.extra
    if entry.source == "published weights" and importable:
        from stembench.endpoints.models.published import fetched_path, get_published

        if get_published(entry.name).unavailable:
            return "cannot be fetched"
        return "fetched" if fetched_path(entry.name).is_file() else "not fetched"
    if importable:
        return "available"
    return f"pip install 'stembench[{extra}]'" if extra else "not importable"


@app.command("list")
def list_command() -> None:
    """Show every registered model: name, framework, description, availability."""
    entries = available_models()
    rows = [("NAME", "FRAMEWORK", "STATUS", "DESCRIPTION")]
    rows += [
        (e.name, e.framework, _status(e), e.description) for e in entries
    ]
    widths = [max(len(row[k]) for row in rows) for k in range(3)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
                   + "  " + row[3])


@app.command("show")
def show_command(
    name: str = typer.Argument(..., help="Registry name, entry-point name, model file or "
                                         "module:function."),
) -> None:
    """Load one model and show its name, version, framework and weights hash."""
    try:
        model = load_model(name)
    except StembenchError as exc:
        typer.echo(f"stembench: error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    info = model.info
    entry = next((e for e in available_models() if e.name == name), None)
    typer.echo(f"name:           {info.name}")
    typer.echo(f"version:        {info.version}")
    typer.echo(f"framework:      {info.framework}")
    typer.echo(f"weights_sha256: {info.weights_sha256 or '-'}")
    if entry is not None:
        typer.echo(f"description:    {entry.description}")
        typer.echo(f"source:         {entry.source}")


@app.command("fetch")
def fetch_command(
    name: str = typer.Argument(..., help="A published model, e.g. atomnet-cubic-published."),
    mirror: str | None = typer.Option(
        None, help="Base URL or folder holding the file under its published name (default: "
        "$STEMBENCH_WEIGHTS_MIRROR, else the public address)."),
    timeout: float = typer.Option(60.0, min=0.1, help="Seconds to wait for the server."),
) -> None:
    """Download a published weight file, verify its pinned SHA-256 and keep it in the cache."""
    from stembench.endpoints.models.published import fetch_published, verified_pins

    try:
        path = fetch_published(name, mirror=mirror, timeout_s=timeout)
    except StembenchError as exc:
        typer.echo(f"stembench: error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"{name}: verified {verified_pins(name)}; cached at {path}")
