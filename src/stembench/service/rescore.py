"""Scores the service trusts: every stored result is scored again here, from coordinates.

Whatever produced a result (the service's own worker, a user's endpoint, an upload), the
service keeps only its coordinates, re-scores them with
:func:`stembench.endpoints.shard_scoring.score_prediction` (the function every shard scores with:
faint columns, their types and don't-care labels included) against its own copy of the
labels of the exact dataset version, and ignores every score field that arrived. The
dataset version is checked by content hash (the manifest's hash of every image, label and
metadata array, not its creation time); a result for another version is refused, naming
both hashes. A failed image (a model error, no coordinates) is a result: it is scored as
"found nothing" (recall 0, F1 0) and marked failed, and so are coordinates that
``evaluate`` would refuse from a model (NaN, far outside the image) and every image of a
shard that failed as a whole (``shard_failed``: its worker was killed, it ran past its
deadline), exactly as the local report counts them. An image with no entry at all is
refused by :func:`check_coverage`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stembench.endpoints.shard_scoring import CONDITION_FIELDS, check_benchmark_scoring
from stembench.errors import InputError

__all__ = [
    "DatasetIdentity",
    "check_coverage",
    "check_dataset",
    "counted",
    "dataset_identity",
    "image_entries",
    "rescore",
]

_MODEL_KEYS = {"name": "model", "version": "model_version", "framework": "framework",
               "weights_sha256": "weights_sha256"}
_SHOWN = 10


@dataclass(frozen=True)
class DatasetIdentity:
    """The service's copy of one dataset version: where it is, its content hash and image ids."""

    path: Path
    name: str
    version: str
    sha256: str
    image_ids: frozenset[str]


def dataset_identity(path: Path) -> DatasetIdentity:
    """Identity of a stembench dataset file, read from its manifest alone (no pixels).

    The content hash is the manifest's :meth:`~stembench.dataset_publish.storage.manifest.Manifest.
    content_hash` (arrays and metadata, not the creation time), as every shard result records
    it (``dataset.manifest_sha256``); image ids are those with a label array in the manifest.
    """
    from stembench.dataset_publish.storage.manifest import read_manifest

    manifest = read_manifest(path)
    ids = frozenset(key.removeprefix("/coords/") for key in manifest.arrays
                    if key.startswith("/coords/"))
    return DatasetIdentity(path, manifest.name, manifest.version, manifest.content_hash(), ids)


def check_dataset(shards: Sequence[Mapping[str, Any]], held: DatasetIdentity) -> None:
    """Refuse shards whose dataset content hash is not that of the service's copy."""
    for shard in shards:
        dataset = shard.get("dataset") or {}
        got = dataset.get("manifest_sha256")
        if got != held.sha256:
            raise InputError(
                f"results of shard {str(shard.get('shard_id'))[:16]} are for dataset "
                f"{dataset.get('name')!r} version {dataset.get('version')!r} with content hash "
                f"{got}, but this service scores {held.name!r} version {held.version!r} with "
                f"content hash {held.sha256}: evaluate on that exact dataset version")


def counted(shard: Mapping[str, Any]) -> bool:
    """Whether a shard result counts: it finished, or it failed as a whole (a failure is a
    result: each of its images failed, see :func:`stembench.endpoints.shard.score_failed_shard`)."""
    return bool(shard.get("ok") or shard.get("shard_failed"))


def image_entries(shards: Iterable[Mapping[str, Any]]) -> dict[str, tuple[Mapping[str, Any],
                                                                         Mapping[str, Any]]]:
    """``image_id -> (entry, its shard)`` over the shards that :func:`counted`; a later entry
    wins."""
    entries: dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
    for shard in shards:
        if not counted(shard):
            continue
        for entry in shard.get("images") or []:
            if isinstance(entry, Mapping) and isinstance(entry.get("image_id"), str):
                entries[entry["image_id"]] = (entry, shard)
    return entries


def _listed(ids: Iterable[str]) -> str:
    ordered = sorted(ids)
    more = f" and {len(ordered) - _SHOWN} more" if len(ordered) > _SHOWN else ""
    return ", ".join(ordered[:_SHOWN]) + more


def check_coverage(image_ids: Iterable[str], held: DatasetIdentity) -> None:
    """Refuse results that miss images of the dataset version, or name images it lacks."""
    found = set(image_ids)
    missing, unknown = held.image_ids - found, found - held.image_ids
    if missing:
        raise InputError(f"results cover {len(found & held.image_ids)} of the "
                         f"{len(held.image_ids)} images of {held.name!r} version "
                         f"{held.version!r}; missing {len(missing)}: {_listed(missing)}")
    if unknown:
        raise InputError(f"results name {len(unknown)} image(s) that dataset {held.name!r} "
                         f"version {held.version!r} does not hold: {_listed(unknown)}")


def _coordinates(entry: Mapping[str, Any], image_id: str,
                 image_shape: tuple[int, int]) -> tuple[np.ndarray | None, str | None]:
    """The entry's predicted (x, y) pixels, or None and why the image failed.

    Coordinates are checked as :mod:`stembench.endpoints.models.guard` checks a model's
    output in ``evaluate`` (finite, at most 0.5 px outside the image, not more than one
    per 4 pixels): coordinates that fail the check fail their image, never dropped.
    """
    from stembench.endpoints.models.guard import check_output

    if entry.get("error"):
        return None, str(entry["error"])[:2000]
    raw = entry.get("coordinates")
    if raw is None:
        raise InputError(f"image {image_id!r}: no coordinates in the result (a score alone is "
                         "not accepted: the service scores coordinates itself)")
    if not isinstance(raw, list):
        raise InputError(f"image {image_id!r}: coordinates are not a list of (x, y) numbers")
    array, problem = check_output(raw, image_shape)
    if problem is not None:
        return None, f"image {image_id!r}: the uploaded coordinates {problem}"
    return array, None


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _model(shards: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The model fields of every record: those of a finished shard (a shard that failed as a
    whole names only the model it was planned with, often without its version)."""
    finished = [s for s in shards if s.get("ok")] or list(shards)
    model = {_MODEL_KEYS[k]: v for k, v in (finished[0].get("model") or {}).items()
             if k in _MODEL_KEYS}
    model["weights_sha256"] = model.get("weights_sha256") or ""
    return model


def _provenance(shard: Mapping[str, Any]) -> dict[str, Any]:
    dataset, runtime = shard.get("dataset") or {}, shard.get("runtime") or {}
    return {"dataset_name": dataset.get("name"),
            "dataset_version": dataset.get("version"),
            "dataset_manifest_sha256": dataset.get("manifest_sha256"),
            "host": runtime.get("host"), "device": runtime.get("device"),
            "stembench_version": runtime.get("stembench_version")}


def rescore(shards: Sequence[Mapping[str, Any]], dataset: Any,
            held: DatasetIdentity) -> list[dict[str, Any]]:
    """Score records of every image, computed here from the shards' coordinates.

    Parameters
    ----------
    shards : sequence of dict
        Shard results (results-file lines) of one model on ``held``'s dataset version.
    dataset : H5ImageSet
        The service's copy of that dataset (labels read and verified from it).
    held : DatasetIdentity
        Its identity; the shards must carry its content hash and cover all its images.

    Returns
    -------
    list of dict
        One record per image, shaped like :func:`stembench.client.results_file.records_from_shard`
        output: ``failed`` and ``error`` (the failure, or None), conditions from the service's
        dataset, scores from :func:`stembench.endpoints.shard_scoring.score_prediction` (the
        function every shard scores with) with the benchmark's scoring options. Coordinates
        that a model's output would be refused for (non-finite, outside the image) fail their
        image.

    Raises
    ------
    InputError
        Another dataset version, missing or unknown images, an image without coordinates,
        or scores that name other scoring options than the benchmark's (the message names
        the image).
    """
    from stembench.endpoints.shard_scoring import score_prediction

    check_dataset(shards, held)
    check_benchmark_scoring(shards)
    entries = image_entries(shards)
    check_coverage(entries, held)
    model, records = _model(shards), []
    for image_id in sorted(entries):
        entry, shard = entries[image_id]
        image = dataset[image_id]
        predicted, error = _coordinates(entry, image_id, image.shape)
        score = score_prediction(image, np.zeros((0, 2)) if predicted is None else predicted)
        conditions = {key: _plain(image.metadata.get(key)) for key in CONDITION_FIELDS}
        seconds = entry.get("seconds")
        records.append({**score.to_dict(), **conditions, **model, **_provenance(shard),
                        "image_id": image_id, "failed": error is not None, "error": error,
                        "seconds": seconds if isinstance(seconds, int | float) else None})
    return records
