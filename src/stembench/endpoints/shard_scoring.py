"""How a shard scores: the condition fields of a score record and stembench's one scoring path."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from stembench.endpoints.requests import ScoringOptions, ShardRequest
from stembench.errors import InputError

if TYPE_CHECKING:
    from stembench.scoring import ImageScore

__all__ = ["CONDITION_FIELDS", "check_benchmark_scoring", "record_conditions",
           "reported_coordinates", "score_prediction", "score_record"]

#: Metadata fields every score record carries so that the analysis needs no images.
CONDITION_FIELDS = (
    "group",
    "series",
    "step",
    "axis_value",
    "seed",
    "material",
    "type",
    "pixel_size_angstrom",
    "atoms_per_100px",
    "contrast",
    "psnr_db",
    "resolution_pm",
    "dose_e_per_A2",
    "flyback",
    "drift",
)


def record_conditions(metadata: dict[str, Any]) -> dict[str, Any]:
    """The :data:`CONDITION_FIELDS` of an image's metadata as JSON values (NaN as ``None``)."""
    out: dict[str, Any] = {}
    for key in CONDITION_FIELDS:
        value: Any = metadata.get(key)
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and value != value:  # NaN is not JSON
            value = None
        out[key] = value
    return out


def score_prediction(image: Any, coordinates: Any, *,
                     scoring: ScoringOptions | None = None) -> ImageScore:
    """Score predicted columns on one benchmark image: stembench's one scoring path.

    Every score stembench records goes through here: a shard's
    (:func:`stembench.endpoints.shard.evaluate_shard`) and the service's re-scoring of stored
    coordinates (:mod:`stembench.service.rescore`), so the same coordinates give the same
    score in both places.

    Parameters
    ----------
    image : BenchmarkImage
        The image with its ground truth: visible columns and their types, faint columns
        and their types; columns typed ``unsure`` are don't care.
    coordinates : array_like, shape (N, 2)
        Predicted x, y pixel positions.
    scoring : ScoringOptions, optional
        Radius, border and matching mode (default: the benchmark's).

    Returns
    -------
    ImageScore
    """
    from stembench.scoring import dont_care_mask, score_image

    options = scoring or ScoringOptions()
    return score_image(coordinates, image.coords, pixel_size=image.pixel_size,
                       image_shape=image.shape, image_id=image.image_id,
                       column_types=image.column_types or None,
                       faint=image.faint_coords, faint_types=image.faint_types or None,
                       dont_care=dont_care_mask(image.column_types), **asdict(options))


def reported_coordinates(coordinates: Any) -> list[list[float]]:
    """Positions as a result carries them: the model's exact values as float64 (x, y).

    These are scored, and JSON keeps every bit of a float64, so the service's re-scoring of
    a result (:mod:`stembench.service.rescore`) and :func:`stembench.scoring.score_image` on
    the model's own output give the same numbers, to the last digit.
    """
    return [[float(x), float(y)] for x, y in coordinates]


def score_record(image: Any, coordinates: list[list[float]],
                 request: ShardRequest) -> dict[str, Any]:
    """The JSON score record of ``coordinates`` on ``image`` under the request's options.

    Parameters
    ----------
    image : BenchmarkImage
        The benchmark image (ground truth in pixels, pixel size in angstrom per pixel).
    coordinates : list of list of float
        Predicted positions ``[[x, y], ...]`` in pixels (x = column, y = row).
    request : ShardRequest
        The shard request, whose scoring options apply.
    """
    import numpy as np

    predicted = np.asarray(coordinates, dtype=np.float64).reshape(-1, 2)
    score: dict[str, Any] = score_prediction(image, predicted, scoring=request.scoring).to_dict()
    return score


def check_benchmark_scoring(shards: Iterable[Mapping[str, Any]]) -> None:
    """Refuse results whose scores name scoring options other than the benchmark's.

    A leaderboard compares entries, so it scores every entry with the benchmark's
    :class:`~stembench.endpoints.requests.ScoringOptions` (match radius, border, mode) and
    refuses results evaluated with others rather than re-scoring them silently at the
    defaults: the numbers the user saw would not be the ones it shows.

    Raises
    ------
    InputError
        Naming the first image, the option, its value and the benchmark's.
    """
    benchmark = asdict(ScoringOptions())
    for shard in shards:
        for entry in shard.get("images") or []:
            score = entry.get("score") if isinstance(entry, Mapping) else None
            for name, value in benchmark.items():
                if isinstance(score, Mapping) and name in score and score[name] != value:
                    raise InputError(
                        f"image {entry.get('image_id')!r} was scored with {name} "
                        f"{score[name]!r}, not the benchmark's {value!r}: a leaderboard "
                        "scores every entry with the benchmark's scoring options, so that "
                        "entries compare; evaluate again with the default scoring options")
