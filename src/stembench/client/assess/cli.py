"""``stembench assess IMAGE --pixel-size A``: which model for my image?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from stembench._moved import moved_names
from stembench.client.endpoint_options import (
    AmqpPort,
    EndpointOption,
    EndpointSchema,
    HttpsOnly,
    RemoteSettings,
    StatusInterval,
    TaskDeadline,
)
from stembench.client.endpoint_watch import DEFAULT_STATUS_INTERVAL_S
from stembench.client.target_calls import DEFAULT_TASK_DEADLINE_S
from stembench.endpoints.models.deadline import DEFAULT_IMAGE_TIMEOUT_S

__all__ = ["assess_command"]


def _likeness(data: Any, result: Any) -> Any:
    from stembench.client.assess.twin.report import plot_likeness

    return plot_likeness(data, result)


def _published() -> set[str]:
    from stembench.endpoints.models.published import PUBLISHED

    return {entry.name for entry in PUBLISHED}


def _twin_html(result: Any) -> str:
    if result is None:
        return ""
    from stembench.client.assess.twin.report import twin_html

    return twin_html(result)


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
    image_timeout: Annotated[float, typer.Option(
        min=0.001, help="With --run: seconds the model may take on the image.")] = (
        DEFAULT_IMAGE_TIMEOUT_S),
    allow_unusual_pixel_size: Annotated[bool, typer.Option(
        "--allow-unusual-pixel-size", help="Accept a pixel size outside 0.005-5 A/px.")] = False,
    twin: Annotated[bool, typer.Option(
        "--twin/--no-twin", help="Fit a twin of the image and score every model on it (the "
                                 "group verdicts stay as a second opinion).")] = True,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="Also score this model (registry name, file or "
                              "module:function; repeat).")] = None,
    weights: Annotated[list[str] | None, typer.Option(
        "--weights", help="Also score NAME with the weights file PATH, as NAME=PATH (e.g. "
                          "the published atomnet-cubic weights; repeat).")] = None,
    endpoint: Annotated[str | None, typer.Option(
        help="Render and score the twins on this Globus Compute endpoint (UUID).")] = None,
    https_only: HttpsOnly = False,
    amqp_port: AmqpPort = None,
    endpoint_option: EndpointOption = None,
    endpoint_schema: EndpointSchema = None,
    task_deadline: TaskDeadline = DEFAULT_TASK_DEADLINE_S,
    status_interval: StatusInterval = DEFAULT_STATUS_INTERVAL_S,
    workers: Annotated[int, typer.Option(min=1, help="Local worker processes.")] = 2,
    twins: Annotated[int, typer.Option(min=1, help="Twins at the estimated quality.")] = 4,
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
    from stembench.errors import InputError
    from stembench.pixel_size import check_pixel_size

    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file; expected the folder to write the "
                         "assessment to")
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
    twin_result = None
    left_out: list[str] = []  # published models twin mode could not include
    if twin:
        from stembench.client.assess.twin.command import model_choices, run_twin_mode

        choices, left_out = model_choices(model or [], weights or [])
        for line in left_out:  # as `stembench run` says it
            typer.echo(f"Published model not included: {line}", err=True)
        if endpoint and (published := [c.spec for c in choices if c.spec in _published()]):
            typer.echo(f"Note: {', '.join(published)} chosen as fetched here; on the endpoint "
                       "they load from the endpoint's own weights cache (one not fetched there "
                       "is listed as not scored, with how to fetch it)", err=True)
        twin_result = run_twin_mode(
            data, pixel_size=pixel_size, assessment=assessment,
            choices=choices, out=out, endpoint=endpoint,
            remote=RemoteSettings(https_only=https_only, amqp_port=amqp_port,
                                  options=tuple(endpoint_option or ()), schema=endpoint_schema,
                                  task_deadline_s=task_deadline,
                                  status_interval_s=status_interval),
            workers=workers, n_twins=twins,
            progress=lambda msg: typer.echo(f"assessing: {msg}", err=True))
    predictions = None
    predicted_by = model_error = None
    if run is not None:
        from stembench.endpoints.models.guard import run_model_safely
        from stembench.endpoints.models.registry import load_model

        predicted_by = verdicts[0].model if run == "best" else run
        output = run_model_safely(load_model(predicted_by), data, pixel_size,
                                  image_id=image.name, timeout_s=image_timeout)
        predictions, model_error = output.coordinates, output.error
    out.mkdir(parents=True, exist_ok=True)
    figures = [] if twin_result is None else [_likeness(data, twin_result)]
    figures += [plot_overview(data, assessment, verdicts, predictions=predictions,
                             predicted_by=predicted_by),
               plot_radar_with_image(cutoffs, assessment, group=chosen)]
    stem = image.stem
    for index, figure in enumerate(figures):
        figure.savefig(out / f"{stem}_assess_{index + 1}.png", dpi=100)
    source = str(results) if results is not None else str(BUILTIN_CUTOFFS_PATH.name)
    json_path = write_json(out / f"{stem}_assess.json", assessment, verdicts,
                           cutoffs_source=source, group_matches=matches,
                           predictions=None if predictions is None else {
                               "model": predicted_by, "xy_px": predictions.tolist()},
                           twin=None if twin_result is None else {
                               **twin_result.to_dict(), "published_not_included": left_out})
    html_path = write_html(out / f"{stem}_assess.html", assessment, verdicts, figures,
                           group_matches=matches, twin_section=_twin_html(twin_result))
    if twin_result is not None:
        from stembench.client.assess.twin.report import twin_summary

        typer.echo(twin_summary(twin_result) + "\n")
        typer.echo("Second opinion, from the benchmark groups' cutoffs"
                   + ("" if match.close_enough else " (no group is close: for orientation "
                      "only)") + ":")
    typer.echo(summary_table(assessment, verdicts, group_matches=matches))
    typer.echo(f"\nJSON: {json_path}\nHTML: {html_path}")
    if twin_result is not None and twin_result.none_scored:  # a failed run, never a verdict
        model_name, reason = next(iter(twin_result.not_scored.items()))
        typer.echo(f"stembench: error: no model could be scored on the twins ({model_name}: "
                   f"{reason})", err=True)
        raise typer.Exit(2)
    if model_error is not None:  # the assessment is written; the predictions are refused
        typer.echo(f"stembench: error: {model_error}", err=True)
        raise typer.Exit(1)


__getattr__ = moved_names(__name__, {
    "read_any_image": "stembench.dataset_publish.experimental.images",
    "read_image_and_pixel_size": "stembench.dataset_publish.experimental.images"})
