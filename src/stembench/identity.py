"""What a shard's results belong to: dataset content, scorer version and model identity.

A result is only comparable with results of the same identity. The client asks the endpoint
for the identity before it plans shards and folds it into each shard's id, so a rebuilt
dataset, a new scorer or an edited model gives new shard ids and nothing old is resumed;
the endpoint checks the identity again before it evaluates a shard and refuses a shard
planned for another one. The scoring options are part of every shard request, and hence of
its id, already. A model's identity is
:func:`stembench.endpoints.models.registry.model_identity`.

:func:`dataset_content_hash` is the one place that says how a dataset's content is hashed.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from stembench._moved import moved_names
from stembench.scoring import SCORER_VERSION

__all__ = ["dataset_content_hash", "file_sha256", "shard_identity"]


@lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file's bytes (cached per path, size and modification time)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, hex (cached while its size and modification time stay)."""
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
    return file_sha256(path) if path is not None and Path(path).is_file() else None


def shard_identity(dataset: Any, model: dict[str, Any]) -> dict[str, Any]:
    """Identity of the results of a model on ``dataset``.

    ``model`` is the model's identity,
    :func:`stembench.endpoints.models.registry.model_identity`.

    Returns
    -------
    dict
        ``{"dataset_sha256", "scorer_version", "model"}``; see :func:`dataset_content_hash`.
    """
    return {"dataset_sha256": dataset_content_hash(dataset), "scorer_version": SCORER_VERSION,
            "model": model}


__getattr__ = moved_names(__name__, {"model_identity": "stembench.endpoints.models.registry"})
