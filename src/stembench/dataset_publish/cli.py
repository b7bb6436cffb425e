"""``stembench dataset ...``: build the benchmark dataset and describe a built one."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    help="Build the atom-locating benchmark dataset (quality series of SrTiO3 [100] and WS2 "
         "plus an out-of-distribution generality set) and describe a built dataset.",
    no_args_is_help=True,
)


def _default_path(preset: str) -> Path:
    from stembench.dataset_publish.build import DATASET_NAME, DATASET_VERSION
    from stembench.dataset_publish.cache import cache_path

    return cache_path(DATASET_NAME, preset=preset, version=DATASET_VERSION)


@app.command()
def build(
    preset: Annotated[str, typer.Option(help="'mini' (seconds, for tests) or 'standard' "
                                             "(the full benchmark).")] = "standard",
    backend: Annotated[str, typer.Option(help="Image formation: 'fast' (incoherent HAADF) or "
                                              "'abtem' (multislice; needs the simulation "
                                              "extra).")] = "fast",
    output: Annotated[Path | None, typer.Option(help="Output .h5 file; default: the local "
                                                     "cache entry of this version.")] = None,
    seeds: Annotated[int | None, typer.Option(help="Realisations per step (default: the "
                                                   "preset's).")] = None,
) -> None:
    """Generate every image and write the HDF5 dataset with its manifest."""
    from stembench.dataset_publish.build import build_dataset

    path = output if output is not None else _default_path(preset)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = build_dataset(path, preset=preset, backend=backend,  # type: ignore[arg-type]
                            seeds=seeds, progress=True)
    typer.echo(f"wrote {written}")


@app.command()
def info(
    path: Annotated[Path | None, typer.Argument(help="Dataset .h5 file; default: the cached "
                                                     "build of --preset.")] = None,
    preset: Annotated[str, typer.Option(help="Which cached build to describe when no path "
                                             "is given.")] = "standard",
) -> None:
    """Print the dataset's version, where it is, and image counts per group and series."""
    from stembench.dataset_publish.storage import open_dataset

    target = path if path is not None else _default_path(preset)
    dataset = open_dataset(target)
    try:
        manifest = dataset.manifest
        if manifest is not None:
            typer.echo(f"dataset {manifest.name} version {manifest.version} "
                       f"(generator {manifest.generator_version})")
        typer.echo(f"file: {target.resolve()}")
        counts: Counter[tuple[str, str]] = Counter()
        for image_id in dataset.ids:
            meta = dataset.metadata(image_id)
            counts[(str(meta.get("group", "?")), str(meta.get("series", "?")))] += 1
        typer.echo(f"{len(dataset.ids)} images")
        for (group, series), n in sorted(counts.items()):
            typer.echo(f"  {group:22s} {series:12s} {n:5d}")
    finally:
        dataset.close()
