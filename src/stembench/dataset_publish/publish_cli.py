"""``stembench dataset publish`` and ``stembench dataset foundry-metadata``.

Mount with ``dataset_app.registered_commands.extend(app.registered_commands)`` or
``dataset_app.command("publish")(publish)`` and
``dataset_app.command("foundry-metadata")(foundry_metadata)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app", "foundry_metadata", "publish"]

app = typer.Typer(help="Publish the benchmark dataset to Foundry/MDF.", no_args_is_help=True)


@app.command("foundry-metadata")
def foundry_metadata(
    path: Annotated[Path, typer.Argument(help="Dataset file <preset>.h5 (its .manifest.json "
                                              "beside it).")],
    creator: Annotated[list[str] | None, typer.Option(
        help="Creator as 'Family, Given' or an organisation; repeat for several.")] = None,
    year: Annotated[int | None, typer.Option(help="Publication year (default: this year).")
                    ] = None,
) -> None:
    """Print the validated DataCite and Foundry blocks of a dataset file as JSON."""
    from stembench.dataset_publish.foundry_metadata import DEFAULT_CREATORS, dataset_metadata

    meta = dataset_metadata(path, creators=tuple(creator or DEFAULT_CREATORS), year=year)
    typer.echo(json.dumps({"source_name": meta.source_name, "dc": meta.dc,
                           "projects": {"foundry": meta.foundry}}, indent=1))


@app.command("publish")
def publish(
    path: Annotated[Path, typer.Argument(help="Dataset file <preset>.h5 to publish (its "
                                              ".manifest.json is published beside it).")],
    data_source: Annotated[list[str], typer.Option(
        help="Globus location where the .h5 file and its .manifest.json are staged, e.g. "
             "globus://<collection-id>/<folder>/ or an app.globus.org file-manager link; "
             "repeat for several.")],
    creator: Annotated[list[str] | None, typer.Option(
        help="Creator as 'Family, Given' or an organisation; repeat for several.")] = None,
    year: Annotated[int | None, typer.Option(help="Publication year (default: this year).")
                    ] = None,
    test: Annotated[bool, typer.Option(help="Submit to MDF's test resources (test index, "
                                            "test DOI).")] = False,
    update: Annotated[bool, typer.Option(help="Submit a new version of an already published "
                                              "dataset.")] = False,
    service: Annotated[str, typer.Option(help="MDF Connect instance: prod or dev.")] = "prod",
    dry_run: Annotated[bool, typer.Option(help="Print the exact submission JSON and stop "
                                               "(no login, no network).")] = False,
    no_browser: Annotated[bool, typer.Option(help="Log in without a browser: print the URL "
                                                  "and paste the code back.")] = False,
    token_file: Annotated[Path | None, typer.Option(help="Globus token store (default "
                                                         "~/.stembench/globus-tokens.json).")
                          ] = None,
) -> None:
    """Submit a dataset file to MDF Connect with its Foundry block, after a Globus login."""
    from stembench.dataset_publish.foundry_metadata import DEFAULT_CREATORS, dataset_metadata
    from stembench.dataset_publish.mdf_publish import build_submission, login, submit

    meta = dataset_metadata(path, creators=tuple(creator or DEFAULT_CREATORS), year=year)
    submission = build_submission(meta, data_sources=data_source, test=test, update=update)
    if dry_run:
        typer.echo(json.dumps(submission, indent=1))
        return
    authorizer = login(no_browser=no_browser, token_file=token_file)
    source_id = submit(submission, authorizer=authorizer, service=service)
    typer.echo(f"submitted {path} to MDF Connect ({service}) as {source_id}; follow its "
               "curation and DOI at https://materialsdatafacility.org")
