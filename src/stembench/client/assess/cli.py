"""``stembench assess IMAGE --pixel-size A``: which model for my image?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from numpy.typing import NDArray

from stembench.errors import InputError

__all__ = ["assess_command", "read_any_image", "read_image_and_pixel_size"]


def read_any_image(path: Path) -> NDArray[np.float64]:
    """Read a 2D image from ``.npy``, ``.png``, TIFF or a microscope format (rosettasciio).

    Raises
    ------
    InputError
        If the file is missing, unreadable, or not a 2D image (an RGB PNG is averaged).
    """
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise InputError(f"{path}: not a NumPy array file ({exc})") from exc
    elif suffix == ".png":
        from matplotlib.image import imread

        try:
            data = imread(path)
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for a corrupt file
            raise InputError(f"{path}: not a readable PNG image ({exc})") from exc
        if data.ndim == 3:
            data = data[..., :3].mean(axis=2)
    else:
        from stembench.dataset_publish.experimental.importer import read_image_file

        data = read_image_file(path)
    arr = np.squeeze(np.asarray(data))
    if arr.ndim != 2:
        raise InputError(f"{path}: expected a 2D image, got shape {arr.shape}")
    return arr.astype(np.float64) if np.issubdtype(arr.dtype, np.number) else arr


def read_image_and_pixel_size(path: Path, pixel_size: float | None
                              ) -> tuple[NDArray[np.float64], float]:
    """The image and its pixel size (A/px): ``pixel_size`` when given, else the file's.

    A microscope file (and a TIFF with the ``io`` extra) is read with its calibration, and
    what it holds is printed to stderr; an ``.npy`` or ``.png`` needs ``pixel_size``.

    Raises
    ------
    InputError
        If the image cannot be read, or no pixel size is given and the file has none.
    """
    from stembench.dataset_publish.experimental.microscope import (
        MICROSCOPE_READERS,
        read_microscope_image,
        resolve_pixel_size,
    )

    if path.suffix.lower() in MICROSCOPE_READERS and path.is_file():
        found = read_microscope_image(path)
        typer.echo(found.describe(), err=True)
        return found.image.astype(np.float64), resolve_pixel_size(found, pixel_size)
    if pixel_size is None:
        raise InputError(f"{path}: a {path.suffix} file carries no calibration; pass "
                         "--pixel-size in A/px")
    return read_any_image(path), pixel_size


def assess_command(
    image: Annotated[Path, typer.Argument(help="Image file: .npy, .png, .tif or a microscope "
                                               "format (rosettasciio).")],
    pixel_size: Annotated[float | None, typer.Option(
        "--pixel-size", help="Pixel size, A/px; default: the microscope file's "
                             "calibration.")] = None,
    results: Annotated[Path | None, typer.Option(
        help="Report JSON (or cutoffs JSON) of a benchmark run; default: the built-in "
             "models' cutoffs.")] = None,
    group: Annotated[str | None, typer.Option(
        help="Data group to compare with; default: the nearest group (lattice kind, column "
             "spacing, weakest column).")] = None,
    run: Annotated[str | None, typer.Option(
        "--run", help="Run this model on the image and draw its predictions ('best' = the "
                      "top recommendation).")] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("stembench-assess"),
    allow_unusual_pixel_size: Annotated[bool, typer.Option(
        "--allow-unusual-pixel-size", help="Accept a pixel size outside 0.005-5 A/px.")] = False,
) -> None:
    """Estimate the image's quality and say which models are reliable on it."""
    from stembench.client.assess.assessment import assess_image
    from stembench.client.assess.figures import plot_overview, plot_radar_with_image
    from stembench.client.assess.nearest import LatticeSignature
    from stembench.client.assess.recommend import (
        BUILTIN_CUTOFFS_PATH,
        choose_group,
        load_cutoffs,
        recommend,
        vouch,
    )
    from stembench.client.assess.report import summary_table, write_html, write_json
    from stembench.pixel_size import check_pixel_size

    data, pixel_size = read_image_and_pixel_size(image, pixel_size)
    check_pixel_size(pixel_size, where=str(image), allow_unusual=allow_unusual_pixel_size)
    assessment = assess_image(data, pixel_size_angstrom=pixel_size, name=image.name,
                              progress=lambda msg: typer.echo(f"assessing: {msg}", err=True))
    cutoffs = load_cutoffs(results)
    chosen, matches = choose_group(LatticeSignature.of(assessment.lattice, pixel_size), cutoffs,
                                   group=group)
    match = next(m for m in matches if m.group == chosen)
    verdicts = vouch(recommend(assessment.estimates, cutoffs, group=chosen), match)
    predictions = None
    predicted_by = model_error = None
    if run is not None:
        from stembench.endpoints.models.deadline import DEFAULT_IMAGE_TIMEOUT_S
        from stembench.endpoints.models.guard import run_model_safely
        from stembench.endpoints.models.registry import load_model

        predicted_by = verdicts[0].model if run == "best" else run
        output = run_model_safely(load_model(predicted_by), data, pixel_size,
                                  image_id=image.name, timeout_s=DEFAULT_IMAGE_TIMEOUT_S)
        predictions, model_error = output.coordinates, output.error
    out.mkdir(parents=True, exist_ok=True)
    figures = [plot_overview(data, assessment, verdicts, predictions=predictions,
                             predicted_by=predicted_by),
               plot_radar_with_image(cutoffs, assessment, group=chosen)]
    stem = image.stem
    for index, figure in enumerate(figures):
        figure.savefig(out / f"{stem}_assess_{index + 1}.png", dpi=100)
    source = str(results) if results is not None else str(BUILTIN_CUTOFFS_PATH.name)
    json_path = write_json(out / f"{stem}_assess.json", assessment, verdicts,
                           cutoffs_source=source, group_matches=matches,
                           predictions=None if predictions is None else {
                               "model": predicted_by, "xy_px": predictions.tolist()})
    html_path = write_html(out / f"{stem}_assess.html", assessment, verdicts, figures,
                           group_matches=matches)
    typer.echo(summary_table(assessment, verdicts, group_matches=matches))
    typer.echo(f"\nJSON: {json_path}\nHTML: {html_path}")
    if model_error is not None:  # the assessment is written; the predictions are refused
        typer.echo(f"stembench: error: {model_error}", err=True)
        raise typer.Exit(1)
