"""The functions that travel to a compute endpoint.

:func:`evaluate_shard` evaluates one model on some images of a dataset that lives on
the endpoint and returns JSON: coordinates, scores, timings and errors per image, plus
the provenance of every number. :func:`describe_dataset` lists a dataset's images and
their conditions so that a client can plan shards without the pixels.

Both take and return plain dicts, import the stembench installed on the endpoint, and
never raise for a problem with one image: a failing image is reported and the rest
of the shard goes on. An image the model fails on (it raised, or returned something
that is not a column map) is scored as if the model had found nothing, with the error
kept beside the score: a failure counts against the model, it is never left out.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from stembench._moved import moved_names
from stembench._version import __version__
from stembench.endpoints.expiry import ShardExpiredError, check_not_expired, expired_result
from stembench.endpoints.provenance import runtime_provenance
from stembench.endpoints.requests import (
    FEATURES,
    DatasetRef,
    ModelSpec,
    ShardRequest,
    check_compatible,
)
from stembench.endpoints.shard_scoring import (
    record_conditions,
    reported_coordinates,
    score_record,
)
from stembench.errors import StembenchError
from stembench.identity import dataset_content_hash, shard_identity

__all__ = ["TaskTimeLimitError", "describe_dataset", "describe_identity", "evaluate_shard"]

#: Open datasets by reference, with the file stamp they were opened at.
_OPEN_DATASETS: dict[str, tuple[Any, tuple[int, int, int] | None]] = {}


class TaskTimeLimitError(StembenchError):
    """The endpoint's per-task limit (``GC_TASK_TIMEOUT``) ended a shard before its end."""


def _file_stamp(path: Any) -> tuple[int, int, int] | None:
    try:
        stat = Path(path).stat()
    except (OSError, TypeError):
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _open_dataset(ref_json: str) -> Any:
    """The dataset a reference names, opened once per process and again if its file changed.

    A dataset file is verified as a whole first (every array and image's metadata against
    the manifest, every pixel size in range); a cached preset is verified by ``load``.
    """
    from stembench.dataset_publish.loading import load
    from stembench.dataset_publish.storage.stembench_layout import open_dataset
    from stembench.dataset_publish.storage.verified import verify_dataset_file
    from stembench.endpoints.twin_task import check_twin_file

    cached = _OPEN_DATASETS.get(ref_json)
    if cached is not None and _file_stamp(getattr(cached[0], "path", None)) == cached[1]:
        return cached[0]
    ref = DatasetRef.from_dict(json.loads(ref_json))
    if ref.source == "path":
        assert ref.path is not None
        check_twin_file(ref.path)  # a twin rendered where this worker cannot read: say where
        verify_dataset_file(ref.path)  # the whole file, once per content
        dataset = open_dataset(ref.path)
    else:
        cache_dir = Path(ref.cache_dir) if ref.cache_dir else None
        dataset = load(ref.name, preset=ref.preset, version=ref.version, cache_dir=cache_dir)
    _OPEN_DATASETS[ref_json] = (dataset, _file_stamp(getattr(dataset, "path", None)))
    return dataset


@lru_cache(maxsize=8)  # every built-in model (five) and a few more stay loaded
def _load_model(spec_json: str) -> tuple[Any, dict[str, Any]]:
    """The model a spec names and its identity, taken once when it is loaded."""
    from stembench.endpoints.models.registry import load_model, model_identity

    spec = ModelSpec.from_dict(json.loads(spec_json))
    model = load_model(spec.spec, **spec.options)
    return model, model_identity(model, spec.spec)


def _dataset_provenance(dataset: Any) -> dict[str, Any]:
    return {"name": dataset.name, "version": dataset.version,
            "manifest_sha256": dataset_content_hash(dataset)}


def _read_image(dataset: Any, image_id: str) -> tuple[Any, dict[str, Any]]:
    """The image and the start of its entry; the image is None when it cannot be read."""
    entry: dict[str, Any] = {"image_id": image_id, "error": None}
    try:
        image = dataset[image_id]
    except (KeyError, StembenchError) as exc:
        entry["error"] = f"cannot read image: {exc}"
        return None, entry
    entry["conditions"] = record_conditions(dict(image.metadata))
    return image, entry


def _finish_entry(entry: dict[str, Any], image: Any, output: Any,
                  request: ShardRequest) -> dict[str, Any]:
    """Score the model's output for one image (a failure is scored as finding nothing)."""
    entry["seconds"] = round(output.seconds, 6)
    image_id = entry["image_id"]
    reported: list[list[float]] = []
    if output.error is not None or output.coordinates is None:
        entry["error"] = output.error or "model returned no coordinates"
    else:
        reported = reported_coordinates(output.coordinates)
        try:
            entry["score"] = score_record(image, reported, request)
        except Exception as exc:  # a scorer error stays with its image, never the shard
            _reraise_time_limit(exc)
            entry["error"] = f"image {image_id!r}: scoring failed: {type(exc).__name__}: {exc}"
    if entry["error"] is not None:  # a failure is scored as finding nothing
        reported = []
        try:
            entry["score"] = score_record(image, reported, request)
        except Exception as exc:
            _reraise_time_limit(exc)
            entry["error"] += f"; it cannot be scored either: {type(exc).__name__}: {exc}"
            return entry
    if request.return_coordinates:
        entry["coordinates"] = reported
    return entry


def _evaluate_images(model: Any, dataset: Any, request: ShardRequest) -> list[dict[str, Any]]:
    """Every image of the shard, in order; consecutive same-shaped images run as one batch.

    At most ``model.batch_size`` images are held at a time; see
    :func:`~stembench.endpoints.models.guard.run_model_batch_safely` for how a failing batch
    is split so that each failure stays with its image. In a local worker, progress is
    logged per image (:class:`~stembench.endpoints.progress.ShardProgress`): after its
    worker was killed past the deadline, an attempt keeps the finished images, fails the
    image the worker was killed on and runs the rest one at a time.
    """
    from stembench.endpoints.models.guard import (
        ModelOutput,
        is_task_time_limit,
        run_model_batch_safely,
    )
    from stembench.endpoints.progress import ShardProgress

    progress = ShardProgress(request.shard_id)
    batch_size = 1 if progress.killed else max(1, int(getattr(model, "batch_size", 1)))
    entries: list[dict[str, Any]] = []
    waiting: list[tuple[Any, dict[str, Any]]] = []

    def run_waiting() -> None:
        check_not_expired(request.not_after_unix, n_images=len(request.image_ids),
                          finished=[e for e in entries  # run, or unreadable
                                    if "seconds" in e or e["error"] is not None])
        ids = [entry["image_id"] for _, entry in waiting]
        progress.started(ids, request.image_timeout_s)
        outputs = run_model_batch_safely(
            model, [image.image for image, _ in waiting],
            [image.pixel_size for image, _ in waiting], image_ids=ids,
            timeout_s=request.image_timeout_s)
        for (image, entry), output in zip(waiting, outputs, strict=True):
            progress.finished(_finish_entry(entry, image, output, request))
        waiting.clear()

    try:
        for image_id in request.image_ids:
            if image_id in progress.done:
                entries.append(progress.done[image_id])
                continue
            image, entry = _read_image(dataset, image_id)
            entries.append(entry)
            if image is None:
                continue
            if progress.killed == [image_id]:  # its worker was killed on it alone
                name = str(model.info.name)
                progress.finished(_finish_entry(entry, image, ModelOutput(
                    image_id, name, None, f"image {image_id!r}: model {name!r} ran past the "
                    f"{request.image_timeout_s:g} s deadline per image and did not stop; its "
                    "worker process was killed (raise it with --image-timeout)", 0.0), request))
                continue
            if waiting and (len(waiting) == batch_size or image.shape != waiting[0][0].shape):
                run_waiting()
            waiting.append((image, entry))
        if waiting:
            run_waiting()
    except Exception as exc:
        if not is_task_time_limit(exc):
            raise
        finished = [e["image_id"] for e in entries if "score" in e]
        raise TaskTimeLimitError(
            f"the endpoint's per-task limit (GC_TASK_TIMEOUT="
            f"{os.environ.get('GC_TASK_TIMEOUT', '?')} s) stopped the shard after "
            f"{len(finished)} of {len(request.image_ids)} images (finished: "
            f"{', '.join(finished) or 'none'}); the shard is failed as a whole") from exc
    progress.close()
    return entries


def _reraise_time_limit(exc: Exception) -> None:
    """Raise ``exc`` again when it is the endpoint's per-task limit (it ends the task)."""
    from stembench.endpoints.models.guard import is_task_time_limit

    if is_task_time_limit(exc):
        raise exc


def _fit_result(result: dict[str, Any], limit: int) -> dict[str, Any]:
    """Drop coordinates (keeping every score) until the JSON fits under ``limit`` bytes."""
    size = len(json.dumps(result))
    if size <= limit:
        return result
    for entry in result["images"]:
        entry.pop("coordinates", None)
    result["coordinates_dropped"] = True
    size = len(json.dumps(result))
    if size > limit:
        raise StembenchError(
            f"shard result is {size} bytes even without coordinates, over the {limit}-byte "
            "limit: use smaller shards"
        )
    return result


def evaluate_shard(request: dict[str, Any]) -> dict[str, Any]:
    """Evaluate one model on the images of one shard (runs on the endpoint).

    Parameters
    ----------
    request : dict
        A :class:`~stembench.endpoints.requests.ShardRequest` as a JSON dict.

    Returns
    -------
    dict
        ``{"shard_id", "ok", "error", "images": [{"image_id", "conditions", "score",
        "coordinates" (x, y pixels), "seconds", "error"}], "model", "dataset", "identity",
        "runtime", "coordinates_dropped"}``. An image with an ``error`` carries the score
        of an empty prediction. ``ok`` is false only when the whole shard could not run
        (incompatible versions, dataset or model not loadable, or an ``identity`` other
        than the request's); then ``error`` says why. A copy past the request's
        ``not_after_unix`` (:mod:`stembench.endpoints.expiry`) stops when it starts (before
        the dataset and model are opened) or before its next model call, with ``expired``
        true and only the images it finished.
    """
    parsed = ShardRequest.from_dict(request)
    result: dict[str, Any] = {
        "shard_id": parsed.shard_id,
        "protocol": parsed.protocol,
        "ok": True,
        "error": None,
        "images": [],
        "coordinates_dropped": False,
    }
    try:
        check_not_expired(parsed.not_after_unix, n_images=len(parsed.image_ids))
    except ShardExpiredError as exc:
        return expired_result(result, exc) | {"runtime": runtime_provenance()}
    try:
        check_compatible(parsed.client_version, __version__)
        dataset = _open_dataset(json.dumps(asdict(parsed.dataset), sort_keys=True))
        model, identity = _load_model(json.dumps(asdict(parsed.model), sort_keys=True))
        result["identity"] = shard_identity(dataset, identity)
    except (StembenchError, ImportError, OSError, SystemExit) as exc:
        result.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        result["runtime"] = runtime_provenance()
        return result
    result["dataset"] = _dataset_provenance(dataset)
    result["model"] = asdict(model.info)
    if parsed.identity and parsed.identity != result["identity"]:
        result.update(ok=False, runtime=runtime_provenance(), error=(
            f"the endpoint's dataset, scorer or model is not the one this shard was planned "
            f"for: planned {parsed.identity}, found {result['identity']}; plan the run again"))
        return result
    try:
        result["images"] = _evaluate_images(model, dataset, parsed)
    except ShardExpiredError as exc:
        result = expired_result(result, exc)
    result["runtime"] = runtime_provenance()
    return _fit_result(result, parsed.max_result_bytes)


def score_failed_shard(request: dict[str, Any], reason: str) -> dict[str, Any]:
    """The result of a shard that failed as a whole: each image scored as finding nothing.

    Runs on the endpoint without loading the model (the shard failed with it: its worker
    was killed, it kept raising, it ran past the task deadline), so that every image of a
    run is in its report with its conditions, the score of an empty prediction and why.

    Parameters
    ----------
    request : dict
        The :class:`~stembench.endpoints.requests.ShardRequest` that failed, as a JSON dict.
    reason : str
        Why it failed, kept in every image's ``error``.

    Returns
    -------
    dict
        :func:`evaluate_shard`'s result with ``ok`` false, ``shard_failed`` true and
        ``error`` the reason; ``model`` and ``identity`` are the ones the shard was planned
        with (``identity`` empty when it was planned without one).
    """
    from stembench.endpoints.models.guard import ModelOutput

    parsed = ShardRequest.from_dict(request)
    check_compatible(parsed.client_version, __version__)
    dataset = _open_dataset(json.dumps(asdict(parsed.dataset), sort_keys=True))
    planned = dict(parsed.identity.get("model") or {"name": parsed.model.spec})
    entries = []
    for image_id in parsed.image_ids:
        image, entry = _read_image(dataset, image_id)
        if image is not None:
            error = f"image {image_id!r}: its shard failed as a whole: {reason}"
            _finish_entry(entry, image, ModelOutput(image_id, str(planned.get("name")), None,
                                                    error, 0.0), parsed)
        entries.append(entry)
    return {"shard_id": parsed.shard_id, "protocol": parsed.protocol, "ok": False,
            "shard_failed": True, "error": reason, "images": entries,
            "coordinates_dropped": False, "dataset": _dataset_provenance(dataset),
            "model": {k: planned.get(k) for k in ("name", "version", "framework",
                                                  "weights_sha256")},
            "identity": parsed.identity, "runtime": runtime_provenance()}


def describe_dataset(reference: dict[str, Any], client_version: str) -> dict[str, Any]:
    """List a dataset's image ids and conditions (runs on the endpoint, reads no pixels).

    Parameters
    ----------
    reference : dict
        A :class:`~stembench.endpoints.requests.DatasetRef` as a JSON dict.
    client_version : str
        The client's stembench version, checked for compatibility.

    Returns
    -------
    dict
        ``{"dataset": {name, version, manifest_sha256}, "images": [{"image_id",
        **conditions}], "runtime": {...}, "features": [...]}``; ``features``: the
        request fields this endpoint understands (:data:`~.requests.FEATURES`).
    """
    check_compatible(client_version, __version__)
    ref = DatasetRef.from_dict(reference)
    dataset = _open_dataset(json.dumps(asdict(ref), sort_keys=True))
    images = [
        {"image_id": row["image_id"], **record_conditions(row)} for row in dataset.metadata_table()
    ]
    return {
        "dataset": _dataset_provenance(dataset),
        "images": images,
        "runtime": runtime_provenance(),
        "features": list(FEATURES),
    }


def describe_identity(dataset: dict[str, Any], model: dict[str, Any],
                      client_version: str) -> dict[str, Any]:
    """What results of a model on a dataset belong to (runs on the endpoint).

    Parameters
    ----------
    dataset : dict
        A :class:`~stembench.endpoints.requests.DatasetRef` as a JSON dict.
    model : dict
        A :class:`~stembench.endpoints.requests.ModelSpec` as a JSON dict.
    client_version : str
        The client's stembench version, checked for compatibility.

    Returns
    -------
    dict
        :func:`stembench.identity.shard_identity`: ``{"dataset_sha256", "scorer_version",
        "model": {"name", "version", "framework", "weights_sha256", "source_sha256"}}``,
        what every shard result of this model on this dataset will carry.
    """
    check_compatible(client_version, __version__)
    ref, spec = DatasetRef.from_dict(dataset), ModelSpec.from_dict(model)
    opened = _open_dataset(json.dumps(asdict(ref), sort_keys=True))
    return shard_identity(opened, _load_model(json.dumps(asdict(spec), sort_keys=True))[1])


__getattr__ = moved_names(__name__, {name: "stembench.endpoints.shard_scoring"
                                     for name in ("CONDITION_FIELDS", "score_prediction")})
