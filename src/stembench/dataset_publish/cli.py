"""``stembench dataset ...``: build the benchmark dataset and describe a built one."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

if TYPE_CHECKING:
    from stembench.datamodel import BenchmarkImage

__all__ = ["app"]

app = typer.Typer(
    help="Build the atom-locating benchmark dataset (quality series of SrTiO3 [100] and WS2 "
         "plus an out-of-distribution generality set) and describe a built dataset.",
    no_args_is_help=True,
)


def _default_path(preset: str) -> Path:
    from stembench.dataset_publish.simulate.build import DATASET_NAME, DATASET_VERSION
    from stembench.dataset_publish.storage.cache import cache_path

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
    experimental: Annotated[Path | None, typer.Option(
        help="Folder of labelled real images (image + <stem>.csv, optional <stem>.json) to "
             "add as experimental groups with quality series.")] = None,
) -> None:
    """Generate every image and write the HDF5 dataset with its manifest."""
    from stembench.dataset_publish.build import build_dataset

    path = output if output is not None else _default_path(preset)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = build_dataset(path, preset=preset, backend=backend,  # type: ignore[arg-type]
                            seeds=seeds, progress=True, experimental=experimental)
    typer.echo(f"wrote {written}")


@app.command()
def info(
    path: Annotated[Path | None, typer.Argument(help="Dataset .h5 file; default: the cached "
                                                     "build of --preset.")] = None,
    preset: Annotated[str, typer.Option(help="Which cached build to describe when no path "
                                             "is given.")] = "standard",
) -> None:
    """Print the dataset's version, where it is, and image counts per group and series."""
    from stembench.dataset_publish.storage.stembench_layout import open_dataset

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


def _label_axes(ax: Any, image: BenchmarkImage, title: str, crop: int = 10**9) -> None:
    """Show the central ``crop`` x ``crop`` pixels of an image (all by default), labelled."""
    rows, cols = image.shape
    r0, c0 = max((rows - crop) // 2, 0), max((cols - crop) // 2, 0)
    ax.imshow(image.image[r0:r0 + crop, c0:c0 + crop], cmap="gray")
    xy = image.coords - [c0, r0]
    inside = (xy >= -0.5).all(axis=1) & (xy[:, 0] < crop - 0.5) & (xy[:, 1] < crop - 0.5)
    ax.scatter(xy[inside, 0], xy[inside, 1], s=6, c="tab:red", marker="+", linewidths=0.6)
    ax.set_title(title, fontsize=6)
    ax.set_axis_off()


@app.command()
def figures(
    path: Annotated[Path, typer.Argument(help="A built dataset .h5 file (standard preset).")],
    output: Annotated[Path, typer.Option(help="Folder for dataset_<axis>.png.")] = Path(
        "docs/figures"),
    seed: Annotated[int, typer.Option(help="Which realisation to show.")] = 0,
) -> None:
    """Draw central crops of a few images per quality axis, and of the generality set, with
    their labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stembench.dataset_publish.storage.stembench_layout import open_dataset

    output.mkdir(parents=True, exist_ok=True)
    dataset = open_dataset(path)
    try:
        table = {i: dataset.metadata(i) for i in dataset.ids}
        axes = sorted({m["series"] for m in table.values()} - {"generality"})
        for axis in axes:
            rows = sorted({m["group"] for m in table.values() if m["series"] == axis})
            fig, grid = plt.subplots(len(rows), 4, figsize=(8, 2.1 * len(rows)), squeeze=False)
            for r, group in enumerate(rows):
                ids = sorted((m["step"], i) for i, m in table.items() if m["group"] == group
                             and m["series"] == axis and m["seed"] == seed)
                picks = [ids[k] for k in np.linspace(0, len(ids) - 1, 4).round().astype(int)]
                for c, (step, image_id) in enumerate(picks):
                    m = table[image_id]
                    _label_axes(grid[r, c], dataset[image_id],
                                f"{group} step {step}\n{axis} = {m['axis_value']:.3g}",
                                crop=96)
            fig.tight_layout()
            fig.savefig(output / f"dataset_{axis}.png", dpi=110)
            plt.close(fig)
        generality = sorted(i for i, m in table.items() if m["series"] == "generality")
        picks = generality[:: max(len(generality) // 12, 1)][:12]
        fig, grid = plt.subplots(3, 4, figsize=(8, 6.6), squeeze=False)
        for ax, image_id in zip(grid.ravel(), picks, strict=False):
            _label_axes(ax, dataset[image_id], table[image_id]["material"], crop=256)
        fig.tight_layout()
        fig.savefig(output / "dataset_generality.png", dpi=110)
        plt.close(fig)
    finally:
        dataset.close()
    typer.echo(f"figures written to {output}")


@app.command("import")
def import_images(
    image: Annotated[Path, typer.Argument(help="Image file: TIFF (or a microscope format "
                                          "with the 'io' extra).")],
    positions: Annotated[Path, typer.Argument(help="CSV with columns x,y in pixels "
                                              "(optional column_type).")],
    output: Annotated[Path, typer.Option(help="HDF5 file to write.")],
    pixel_size: Annotated[float | None, typer.Option(
        help="Pixel size in angstrom per pixel; default: the file's calibration.")] = None,
    signal: Annotated[str | None, typer.Option(
        help="Signal of a multi-signal file (default: HAADF).")] = None,
    frame: Annotated[int | None, typer.Option(help="Frame of a stack (default 0).")] = None,
    material: Annotated[str, typer.Option(help="Material name.")] = "unknown",
    group: Annotated[str, typer.Option(help="Data group, e.g. SrTiO3-experimental.")] = (
        "generality"),
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    allow_unusual_pixel_size: Annotated[bool, typer.Option(
        "--allow-unusual-pixel-size", help="Accept a pixel size outside 0.005-5 A/px.")] = False,
) -> None:
    """Import a labelled experimental image (image + CSV of x, y positions) as a dataset."""
    from stembench.dataset_publish.experimental.importer import (
        import_dataset,
        import_labelled_image,
    )

    labelled = import_labelled_image(image, positions, pixel_size=pixel_size, signal=signal,
                                     frame=frame, material=material, group=group,
                                     allow_unusual_pixel_size=allow_unusual_pixel_size)
    path = import_dataset([labelled], output, name=output.stem, overwrite=overwrite)
    unsure = sum(t == "unsure" for t in labelled.column_types)
    typer.echo(f"Wrote {path}: 1 image, {len(labelled.coords)} labelled columns "
               f"({unsure} unsure, not scored), {labelled.pixel_size:.4g} A/px")


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="Dataset .h5 file (stembench or published "
                                              "layout).")],
    verify: Annotated[bool, typer.Option(help="Verify arrays and metadata against the "
                                              "manifest while reading.")] = True,
    show: Annotated[int, typer.Option(help="Problems printed per image.")] = 3,
) -> None:
    """Compare every clean image's noise-free peaks with its labels; exit 1 on a disagreement.

    Fails on a visible peak without a visible label and on a visible label without a peak
    (rule: stembench.dataset_publish.simulate.visibility).
    """
    from stembench.dataset_publish.simulate.check import check_dataset
    from stembench.dataset_publish.simulate.visibility import CHECK_TOLERANCE, MIN_VISIBLE_CONTRAST

    report = check_dataset(path, verify=verify)
    for image_id, problems in report.problems.items():
        typer.echo(f"{image_id}: {len(problems)} problem(s)")
        for problem in problems[:show]:
            typer.echo(f"  {problem.describe()}")
    typer.echo(f"{len(report.checked)} clean image(s) checked, {len(report.problems)} flagged, "
               f"{report.skipped} skipped (degraded or without a noise-free image); faint "
               f"below {MIN_VISIBLE_CONTRAST} of the range, tolerance x{CHECK_TOLERANCE}")
    if not report.ok:
        raise typer.Exit(code=1)
