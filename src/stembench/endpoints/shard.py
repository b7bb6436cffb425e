"""The functions that travel to a compute endpoint.

:func:`evaluate_shard` evaluates one model on some images of a dataset that lives on
the endpoint and returns JSON: coordinates, scores, timings and errors per image, plus
the provenance of every number. :func:`describe_dataset` lists a dataset's images and
their conditions so that a client can plan shards without the pixels.

Both take and return plain dicts, import the stembench installed on the endpoint, and
never raise for a problem with one image: a failing image is reported and the rest
of the shard goes on.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from stembench._version import __version__
from stembench.endpoints.provenance import runtime_provenance
from stembench.endpoints.requests import (
    DatasetRef,
    ModelSpec,
    ShardRequest,
    check_compatible,
)
from stembench.errors import StembenchError

__all__ = ["CONDITION_FIELDS", "describe_dataset", "describe_model", "evaluate_shard"]

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


@lru_cache(maxsize=4)
def _open_dataset(ref_json: str) -> Any:
    from stembench.dataset_publish.cache import load
    from stembench.dataset_publish.storage import open_dataset

    ref = DatasetRef.from_dict(json.loads(ref_json))
    if ref.source == "path":
        assert ref.path is not None
        return open_dataset(ref.path)
    cache_dir = Path(ref.cache_dir) if ref.cache_dir else None
    return load(ref.name, preset=ref.preset, version=ref.version, cache_dir=cache_dir)


@lru_cache(maxsize=4)
def _load_model(spec_json: str) -> Any:
    from stembench.endpoints.models.registry import load_model

    spec = ModelSpec.from_dict(json.loads(spec_json))
    return load_model(spec.spec, **spec.options)


def _dataset_provenance(dataset: Any) -> dict[str, Any]:
    manifest = getattr(dataset, "manifest", None)
    manifest_json = manifest.to_json() if manifest is not None else ""
    return {
        "name": dataset.name,
        "version": dataset.version,
        "manifest_sha256": hashlib.sha256(manifest_json.encode()).hexdigest()
        if manifest_json
        else None,
    }


def _conditions(metadata: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in CONDITION_FIELDS:
        value: Any = metadata.get(key)
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and value != value:  # NaN is not JSON
            value = None
        out[key] = value
    return out


def _evaluate_image(model: Any, dataset: Any, image_id: str, request: ShardRequest) -> dict:
    from stembench.endpoints.models.guard import run_model_safely
    from stembench.scoring import score_image

    entry: dict[str, Any] = {"image_id": image_id, "error": None}
    try:
        image = dataset[image_id]
    except (KeyError, StembenchError) as exc:
        entry["error"] = f"cannot read image: {exc}"
        return entry
    entry["conditions"] = _conditions(dict(image.metadata))
    start = time.perf_counter()
    output = run_model_safely(model, image.image, image.pixel_size, image_id=image_id)
    entry["seconds"] = round(time.perf_counter() - start, 6)
    if output.error is not None or output.coordinates is None:
        entry["error"] = output.error or "model returned no coordinates"
        return entry
    coordinates = output.coordinates
    score = score_image(
        coordinates,
        image.coords,
        pixel_size=image.pixel_size,
        image_shape=image.shape,
        image_id=image_id,
        column_types=image.column_types or None,
        faint=image.faint_coords,
        faint_types=image.faint_types or None,
        **asdict(request.scoring),
    )
    entry["score"] = score.to_dict()
    if request.return_coordinates:
        entry["coordinates"] = [[round(float(x), 3), round(float(y), 3)] for x, y in
                                coordinates]
    return entry


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
        "coordinates" (x, y pixels), "seconds", "error"}], "model", "dataset",
        "runtime", "coordinates_dropped"}``. ``ok`` is false only when the whole shard
        could not run (incompatible versions, dataset or model not loadable); then
        ``error`` says why.
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
        check_compatible(parsed.client_version, __version__)
        dataset = _open_dataset(json.dumps(asdict(parsed.dataset), sort_keys=True))
        model = _load_model(json.dumps(asdict(parsed.model), sort_keys=True))
    except (StembenchError, ImportError, OSError) as exc:
        result.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        result["runtime"] = runtime_provenance()
        return result
    result["dataset"] = _dataset_provenance(dataset)
    result["model"] = asdict(model.info)
    result["images"] = [_evaluate_image(model, dataset, i, parsed) for i in parsed.image_ids]
    result["runtime"] = runtime_provenance()
    return _fit_result(result, parsed.max_result_bytes)


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
        **conditions}], "runtime": {...}}``.
    """
    check_compatible(client_version, __version__)
    ref = DatasetRef.from_dict(reference)
    dataset = _open_dataset(json.dumps(asdict(ref), sort_keys=True))
    images = [
        {"image_id": row["image_id"], **_conditions(row)} for row in dataset.metadata_table()
    ]
    return {
        "dataset": _dataset_provenance(dataset),
        "images": images,
        "runtime": runtime_provenance(),
    }


def describe_model(model: dict[str, Any], client_version: str) -> dict[str, Any]:
    """Load a model on the endpoint and return its identity (runs on the endpoint).

    Parameters
    ----------
    model : dict
        A :class:`~stembench.endpoints.requests.ModelSpec` as a JSON dict.
    client_version : str
        The client's stembench version, checked for compatibility.

    Returns
    -------
    dict
        ``{"name", "version", "framework", "weights_sha256"}``: what every result of this
        model will carry, so that a client can tell results of another version apart.
    """
    check_compatible(client_version, __version__)
    spec = ModelSpec.from_dict(model)
    return asdict(_load_model(json.dumps(asdict(spec), sort_keys=True)).info)
