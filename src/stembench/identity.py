"""What a shard's results belong to: dataset content, scorer version and model identity.

A result is only comparable with results of the same identity. The client asks the endpoint
for the identity before it plans shards and folds it into each shard's id, so a rebuilt
dataset, a new scorer or an edited model gives new shard ids and nothing old is resumed;
the endpoint checks the identity again before it evaluates a shard and refuses a shard
planned for another one. The scoring options are part of every shard request, and hence of
its id, already.

:func:`dataset_content_hash` is the one place that says how a dataset's content is hashed.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from stembench.scoring import SCORER_VERSION

__all__ = ["dataset_content_hash", "model_identity", "shard_identity"]


@lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file's bytes (cached per path, size and modification time)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256_of_file(path: str | Path) -> str:
    stat = Path(path).stat()
    return _file_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def dataset_content_hash(dataset: Any) -> str | None:
    """SHA-256 that changes whenever the content of ``dataset`` changes.

    The dataset's own ``content_hash`` (a stembench file: its manifest's hash of every array
    and every image's metadata, not the creation time; the published layout: the file's
    bytes); for other objects without one, the file's bytes.

    Parameters
    ----------
    dataset : object
        An opened dataset with a ``content_hash`` or, failing that, a ``path``.

    Returns
    -------
    str or None
        64 hex digits; ``None`` only for a dataset that has neither.
    """
    content_hash = getattr(dataset, "content_hash", None)
    if isinstance(content_hash, str):
        return content_hash
    path = getattr(dataset, "path", None)
    return _sha256_of_file(path) if path is not None and Path(path).is_file() else None


def _source_sha256(spec: str) -> str | None:
    """SHA-256 of the file defining a ``module:object`` model, ``None`` if it has none."""
    from stembench.endpoints.models.loaders import import_object

    target = import_object(spec)
    owner = target if inspect.isfunction(target) or inspect.isclass(target) else type(target)
    try:
        source = inspect.getsourcefile(owner)
    except TypeError:  # a built-in or C extension object
        return None
    return _sha256_of_file(source) if source and Path(source).is_file() else None


def model_identity(model: Any, spec: str) -> dict[str, Any]:
    """Identity of a loaded model: its info, plus its source's hash for ``module:object``.

    A file model's info already carries its file's SHA-256 (``weights_sha256``); a
    registered model is identified by its name, version and weights hash.

    Parameters
    ----------
    model : Model
        The loaded model.
    spec : str
        The spec it was loaded from (registry name, file path or ``module:object``).

    Returns
    -------
    dict
        ``{"name", "version", "framework", "weights_sha256", "source_sha256"}``.
    """
    from stembench.endpoints.models.registry import available_models

    identity = asdict(model.info)
    is_object = ":" in spec and not Path(spec).exists() and spec not in {
        entry.name for entry in available_models()}
    identity["source_sha256"] = _source_sha256(spec) if is_object else None
    return identity


def shard_identity(dataset: Any, model: dict[str, Any]) -> dict[str, Any]:
    """Identity of the results of a model (its :func:`model_identity`) on ``dataset``.

    Returns
    -------
    dict
        ``{"dataset_sha256", "scorer_version", "model"}``; see :func:`dataset_content_hash`.
    """
    return {"dataset_sha256": dataset_content_hash(dataset), "scorer_version": SCORER_VERSION,
            "model": model}
