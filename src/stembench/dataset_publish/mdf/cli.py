"""``stembench dataset publish``, ``publish-status`` and ``foundry-metadata``.

Mounted by :mod:`stembench.cli` with ``dataset_app.command("publish")(publish)`` and the
like. Publishing runs ``mdf-cli`` (MDF Connect v2's client), which needs globus-sdk 3: use
the Foundry environment (the ``foundry`` extra).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app", "foundry_metadata", "publish", "publish_status"]

app = typer.Typer(help="Publish the benchmark dataset to Foundry/MDF.", no_args_is_help=True)

_SERVICE_HELP = ("MDF Connect v2 service: prod, staging or dev (default $MDF_SERVICE, else "
                 "mdf-cli's default, staging in mdf-cli 0.3).")
_TOKEN_HELP = ("Bearer token for the MDF API (default $MDF_CONNECT_TOKEN, else mdf-cli's "
               "Globus login). A token cannot upload local files: with --token, stage them "
               "first and pass --data-source.")
_STAGING_DOI = ("staging is MDF's beta service: it mints DataCite test DOIs (prefix 10.23677) "
                "that do not resolve on doi.org (mdf-cli's notice).")


@app.command("foundry-metadata")
def foundry_metadata(
    path: Annotated[Path, typer.Argument(help="Dataset file <preset>.h5 (its .manifest.json "
                                              "beside it).")],
    creator: Annotated[list[str] | None, typer.Option(
        help="Creator as 'Family, Given' or an organisation; repeat for several.")] = None,
    year: Annotated[int | None, typer.Option(help="Publication year (default: this year).")
                    ] = None,
) -> None:
    """Print the validated DataCite and Foundry blocks of a dataset file as JSON.

    Writes the Foundry array file <preset>.foundry.h5 beside the file when it is missing.
    """
    from stembench.dataset_publish.mdf.foundry_metadata import DEFAULT_CREATORS, dataset_metadata

    meta = dataset_metadata(path, creators=tuple(creator or DEFAULT_CREATORS), year=year)
    typer.echo(json.dumps({"source_name": meta.source_name, "dc": meta.dc,
                           "projects": {"foundry": meta.foundry}}, indent=1))


@app.command("publish")
def publish(
    path: Annotated[Path, typer.Argument(help="Dataset file <preset>.h5 to publish, with its "
                                              ".manifest.json; its Foundry array file is "
                                              "written beside it and published too.")],
    data_source: Annotated[list[str] | None, typer.Option(
        help="Where the four files are already staged (globus://<collection>/<folder>/ or "
             "https://); repeat for several. Default: mdf-cli uploads the local files.")
    ] = None,
    creator: Annotated[list[str] | None, typer.Option(
        help="Creator as 'Family, Given' or an organisation; repeat for several.")] = None,
    year: Annotated[int | None, typer.Option(help="Publication year (default: this year).")
                    ] = None,
    test: Annotated[bool, typer.Option(help="Submit to MDF's test resources (test DOI).")
                    ] = False,
    update: Annotated[str | None, typer.Option(
        help="source_id of the published dataset this submission is a new version of.")
    ] = None,
    service: Annotated[str | None, typer.Option(help=_SERVICE_HELP)] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the exact MDF v2 payload mdf-cli "
                                               "builds and stop (no login, no network), after "
                                               "a line on stderr naming the service; local "
                                               "files appear as paths, which mdf-cli replaces "
                                               "with their upload location.")] = False,
    no_browser: Annotated[bool, typer.Option(help="Log in without opening a browser: print "
                                                  "the URL and paste the code back.")] = False,
    token: Annotated[str | None, typer.Option(help=_TOKEN_HELP)] = None,
    organization: Annotated[str | None, typer.Option(
        help="MDF organisation to file the dataset under; sent only when given (mdf-cli's "
             "guidance).")] = None,
) -> None:
    """Submit a dataset file to MDF Connect v2 through mdf-cli, with its ml/Foundry block."""
    from stembench.dataset_publish.mdf.foundry_metadata import DEFAULT_CREATORS, dataset_metadata
    from stembench.dataset_publish.mdf.publish import build_payload, mdf_manifest, submit
    from stembench.dataset_publish.mdf.services import MDF_API_URLS, api_url, resolve_service

    service = resolve_service(service)
    meta = dataset_metadata(path, creators=tuple(creator or DEFAULT_CREATORS), year=year)
    manifest = mdf_manifest(meta, data_sources=data_source, organization=organization)
    if dry_run:
        payload = build_payload(manifest, test=test, update=update is not None,
                                source_id=update)
        typer.echo(f"dry run: would submit to MDF Connect v2 {service} ({api_url(service)})",
                   err=True)
        typer.echo(json.dumps(payload, indent=1))
        return
    result = submit(manifest, service=service, test=test, update=update is not None,
                    source_id=update, token=token, no_browser=no_browser)
    typer.echo(f"submitted {path} to MDF Connect v2 ({service}) as {result['source_id']} "
               f"version {result.get('version')}; follow it with `stembench dataset "
               f"publish-status {result['source_id']} --service {service}`")
    if api_url(service).rstrip("/") == MDF_API_URLS["staging"]:  # $MDF_API_URL counts
        typer.echo(_STAGING_DOI, err=True)


@app.command("publish-status")
def publish_status(
    source_id: Annotated[str, typer.Argument(help="source_id that publish printed.")],
    service: Annotated[str | None, typer.Option(help=_SERVICE_HELP)] = None,
    token: Annotated[str | None, typer.Option(help=_TOKEN_HELP)] = None,
    wait: Annotated[float, typer.Option(help="Keep polling up to this many seconds until the "
                                             "submission is published, rejected or failed.")
                    ] = 0.0,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 30.0,
) -> None:
    """Print the status of an MDF Connect v2 submission as JSON."""
    from stembench.dataset_publish.mdf.publish import follow_status

    status = follow_status(source_id, wait_s=wait, interval_s=interval, service=service,
                           token=token)
    typer.echo(json.dumps(status, indent=1))
