"""``stembench assess IMAGE --pixel-size A``: which model for my image?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stembench._moved import moved_names

__all__ = ["assess_command"]


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
    from stembench.dataset_publish.experimental.images import read_image_and_pixel_size
    from stembench.pixel_size import check_pixel_size

    data, pixel_size, found = read_image_and_pixel_size(image, pixel_size)
    if found is not None:
        typer.echo(found, err=True)
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


__getattr__ = moved_names(__name__, {
    "read_any_image": "stembench.dataset_publish.experimental.images",
    "read_image_and_pixel_size": "stembench.dataset_publish.experimental.images"})
