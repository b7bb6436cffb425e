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

    def finished_shard_ids(self) -> set[str]:
        """Ids of shards that finished successfully."""
        return {s["shard_id"] for s in self.shards() if s.get("ok")}

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

    def records(self) -> list[dict[str, Any]]:
        """Score records of every scored image (no coordinates): what the analysis reads."""
        return [r for shard in self.shards() if shard.get("ok") for r in records_from_shard(shard)]

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
