"""The results file: one JSON line per finished shard, appended as each shard finishes.

An interrupted run leaves every finished shard on disk; a new run with the same file
skips them. A line cut short by a crash is ignored (and reported), never half-read.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["ResultsFile", "records_from_shard"]

_MODEL_FIELDS = {"name": "model", "version": "model_version", "framework": "framework",
                 "weights_sha256": "weights_sha256"}


class ResultsFile:
    """Append-only JSON-lines file of shard results.

    Parameters
    ----------
    path : path-like
        The file; created with its parent folders on first append.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def shards(self) -> Iterator[dict[str, Any]]:
        """Yield every complete shard result in the file, in order."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    warnings.warn(
                        f"{self.path}: line {number} is incomplete (interrupted write); "
                        "its shard will be evaluated again",
                        stacklevel=2,
                    )

    def finished_shard_ids(self, model: dict[str, Any] | None = None) -> set[str]:
        """Ids of shards that finished successfully (with ``model``'s identity, if given).

        ``model`` is ``{"name", "version", "framework", "weights_sha256"}``: shards
        produced by another version or other weights of the model do not count as done.
        """
        return {s["shard_id"] for s in self.shards()
                if s.get("ok") and (model is None or _identity(s.get("model")) == _identity(model))}

    def stale_shards(self, model: dict[str, Any]) -> int:
        """How many finished shards of ``model``'s name came from another identity."""
        return sum(1 for s in self.shards() if s.get("ok")
                   and (s.get("model") or {}).get("name") == model.get("name")
                   and _identity(s.get("model")) != _identity(model))

    def append(self, shard_result: dict[str, Any]) -> None:
        """Append one shard result and flush it to disk before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(shard_result, separators=(",", ":")) + "\n"
        if self._ends_mid_line():  # a line cut short by a crash: start a fresh one
            line = "\n" + line
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def _ends_mid_line(self) -> bool:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return False
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"

    def current_shards(self) -> list[dict[str, Any]]:
        """Finished shards, keeping for each model name only its newest identity.

        A model evaluated again after its weights or version changed leaves its earlier
        shards in the file; they are history, not results of the model as it is now.
        """
        finished = [s for s in self.shards() if s.get("ok")]
        newest = {(s.get("model") or {}).get("name"): _identity(s.get("model")) for s in finished}
        return [s for s in finished
                if _identity(s.get("model")) == newest[(s.get("model") or {}).get("name")]]

    def records(self) -> list[dict[str, Any]]:
        """Score records of every scored image (no coordinates): what the analysis reads.

        Only each model's newest identity counts (see :meth:`current_shards`).
        """
        return [r for shard in self.current_shards() for r in records_from_shard(shard)]

    def image_errors(self) -> list[dict[str, str]]:
        """``{"image_id", "model", "error"}`` for every image a model failed on."""
        errors = []
        for shard in self.shards():
            model = shard.get("model", {}).get("name", "?")
            for entry in shard.get("images", []):
                if entry.get("error"):
                    errors.append({"image_id": entry["image_id"], "model": model,
                                   "error": entry["error"]})
        return errors


def _identity(model: dict[str, Any] | None) -> tuple[Any, ...]:
    model = model or {}
    return (model.get("name"), model.get("version"), model.get("weights_sha256") or None)


def records_from_shard(shard: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten a shard result into score records (scores + conditions + provenance)."""
    model = {_MODEL_FIELDS[k]: v for k, v in shard.get("model", {}).items() if k in _MODEL_FIELDS}
    model["weights_sha256"] = model.get("weights_sha256") or ""  # "" = a model without weights
    dataset = shard.get("dataset", {})
    runtime = shard.get("runtime", {})
    common = {
        **model,
        "dataset_name": dataset.get("name"),
        "dataset_version": dataset.get("version"),
        "dataset_manifest_sha256": dataset.get("manifest_sha256"),
        "host": runtime.get("host"),
        "device": runtime.get("device"),
        "stembench_version": runtime.get("stembench_version"),
    }
    records = []
    for entry in shard.get("images", []):
        if entry.get("score") is None:
            continue
        records.append({**entry["score"], **entry.get("conditions", {}), **common,
                        "image_id": entry["image_id"], "seconds": entry.get("seconds")})
    return records
