"""``stembench label IMAGE``: propose column labels for a person to review and correct."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["label_command"]


def label_command(
    image: Annotated[Path, typer.Argument(help="Image: a microscope file (.dm3, .dm4, .emd, "
                                               ".ser, .hspy, .mrc), .tif, .npy or .png.")],
    pixel_size: Annotated[float | None, typer.Option(
        "--pixel-size", help="Pixel size, A/px; default: the file's calibration.")] = None,
    output: Annotated[Path | None, typer.Option(
        help="CSV to write; default: <image stem>_labels.csv here. The review figure and "
             "HTML page are written beside it.")] = None,
    signal: Annotated[str | None, typer.Option(
        help="Signal of a multi-signal file (default: HAADF).")] = None,
    frame: Annotated[int | None, typer.Option(help="Frame of a stack (default 0).")] = None,
    min_spacing: Annotated[float, typer.Option(
        help="Smallest projected distance between columns to find, A.")] = 1.8,
    allow_unusual_pixel_size: Annotated[bool, typer.Option(
        "--allow-unusual-pixel-size", help="Accept a pixel size outside 0.005-5 A/px.")] = False,
) -> None:
    """Propose column positions (Atomap-style detector refined by 2D Gaussian fits), each
    marked sure or unsure, with an overlay figure and an HTML page to review them."""
    from stembench.dataset_publish.experimental.images import read_image_and_pixel_size
    from stembench.dataset_publish.labelling.propose import propose_labels
    from stembench.dataset_publish.labelling.review import plot_overlay, write_review_html
    from stembench.errors import InputError
    from stembench.pixel_size import check_pixel_size

    csv_path = output if output is not None else Path(f"{image.stem}_labels.csv")
    if csv_path.is_dir():
        raise InputError(f"--output {csv_path}: is a folder; expected the CSV file to write, "
                         f"e.g. {csv_path / (image.stem + '_labels.csv')}")
    data, pixel, found = read_image_and_pixel_size(image, pixel_size, signal=signal,
                                                   frame=frame)
    if found is not None:
        typer.echo(found, err=True)
    check_pixel_size(pixel, where=str(image), allow_unusual=allow_unusual_pixel_size)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    proposal = propose_labels(data, pixel_size=pixel, min_spacing_angstrom=min_spacing)
    proposal.write_csv(csv_path)
    stem = csv_path.stem
    figure = plot_overlay(data, proposal, csv_path.with_name(f"{stem}.png"), title=image.name)
    page = write_review_html(data, proposal, csv_path.parent, stem=stem, image_name=str(image),
                             csv_name=csv_path.name, overview=figure)
    n_unsure = int((~proposal.sure).sum())
    typer.echo(f"{len(proposal.coords)} columns proposed at {pixel:.4g} A/px: "
               f"{len(proposal.coords) - n_unsure} sure, {n_unsure} unsure\n"
               f"CSV: {csv_path}\nfigure: {figure}\nreview page: {page}\n"
               f"after correcting the CSV: {_import_command(image, data, pixel, csv_path)}")


def _import_command(image: Path, data: Any, pixel: float, csv_path: Path) -> str:
    """The ``dataset import`` command for the labelled image, in a format import reads.

    A PNG or NPY image is written beside the CSV as a float32 TIFF named like the CSV (import
    reads TIFF and microscope files); the pixel size is always passed.
    """
    import tifffile

    from stembench.dataset_publish.experimental.importer import IMAGE_SUFFIXES

    source = image
    if image.suffix.lower() not in IMAGE_SUFFIXES:
        source = csv_path.with_name(f"{csv_path.stem}.tif")
        tifffile.imwrite(source, data.astype("float32"))
    return (f"stembench dataset import {source} {csv_path} --pixel-size {pixel:.6g} "
            "--output labelled.h5")
